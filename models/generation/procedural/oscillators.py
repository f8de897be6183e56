"""Band-limited oscillators: sine, PolyBLEP saw/square, wavetables built from
harmonic spectra (static or changing frame by frame), and PADsynth loops.

Every waveform with edges is band-limited, because aliasing sounds harsh and
reads as noise to a listener or a tagger. Everything is vectorised: a note is
a handful of numpy passes, never a per-sample Python loop.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import scipy.fft as sp_fft

TABLE_SIZE = 2048
# Harmonics stop a little below Nyquist so that linear table interpolation
# and later resampling (tape wow) never fold them back.
NYQUIST_MARGIN = 0.45

Shape = Literal["saw", "square", "triangle", "sine"]


def phase_cycles(freq: float | np.ndarray, n: int, *, sr: int, phase: float = 0.0) -> np.ndarray:
    """Running phase in cycles (float64) for a fixed or per-sample frequency."""
    if np.ndim(freq) == 0:
        return phase + np.arange(n, dtype=np.float64) * (float(freq) / sr)
    inc = np.asarray(freq, dtype=np.float64)[:n] / sr
    out = np.empty(n, dtype=np.float64)
    out[0] = phase
    np.cumsum(inc[:-1], out=out[1:])
    out[1:] += phase
    return out


def sine(freq: float | np.ndarray, n: int, *, sr: int, phase: float = 0.0) -> np.ndarray:
    """A sine of ``n`` samples (float32)."""
    return np.sin(2.0 * np.pi * phase_cycles(freq, n, sr=sr, phase=phase)).astype(np.float32)


def _polyblep(t: np.ndarray, dt: float) -> np.ndarray:
    """The PolyBLEP residual that rounds a unit step at phase 0."""
    out = np.zeros_like(t)
    lo = t < dt
    x = t[lo] / dt
    out[lo] = x + x - x * x - 1.0
    hi = t > 1.0 - dt
    x = (t[hi] - 1.0) / dt
    out[hi] = x * x + x + x + 1.0
    return out


def polyblep_saw(freq: float, n: int, *, sr: int, phase: float = 0.0) -> np.ndarray:
    """A rising sawtooth in [-1, 1] with PolyBLEP-corrected edges."""
    dt = freq / sr
    t = np.mod(phase_cycles(freq, n, sr=sr, phase=phase), 1.0)
    return (2.0 * t - 1.0 - _polyblep(t, dt)).astype(np.float32)


def polyblep_square(
    freq: float, n: int, *, sr: int, phase: float = 0.0, width: float = 0.5
) -> np.ndarray:
    """A pulse wave as the difference of two PolyBLEP saws (band-limited)."""
    a = polyblep_saw(freq, n, sr=sr, phase=phase)
    b = polyblep_saw(freq, n, sr=sr, phase=phase + width)
    return (0.5 * (a - b) + (2.0 * width - 1.0) * 0.5).astype(np.float32)


def harmonic_amplitudes(shape: Shape, f0: float, *, sr: int, max_hz: float = 20000.0) -> np.ndarray:
    """Amplitudes of harmonics 1..K of ``shape`` that lie below ``max_hz`` and Nyquist."""
    k_max = max(1, int(min(max_hz, NYQUIST_MARGIN * sr) // f0))
    k_max = min(k_max, TABLE_SIZE // 2 - 1)
    k = np.arange(1, k_max + 1, dtype=np.float64)
    if shape == "saw":
        return 1.0 / k
    if shape == "square":
        return np.where(k % 2 == 1, 1.0 / k, 0.0)
    if shape == "triangle":
        return np.where(k % 2 == 1, ((-1.0) ** ((k - 1) // 2)) / (k * k), 0.0)
    return (k == 1).astype(np.float64)


def lowpass_response(
    freqs: np.ndarray, cutoff: np.ndarray | float, *, q: float = 0.707, order: float = 2.0
) -> np.ndarray:
    """Magnitude of a resonant low-pass (2-pole response raised to order/2).

    Used to shape harmonic spectra directly, so filter sweeps and resonance
    cost nothing per sample.
    """
    r = freqs / np.asarray(cutoff, dtype=np.float64)
    mag2 = 1.0 / np.sqrt((1.0 - r * r) ** 2 + (r / q) ** 2)
    return np.asarray(mag2 ** (order / 2.0))


def tables_from_harmonics(amps: np.ndarray) -> np.ndarray:
    """Single-cycle tables (…, TABLE_SIZE) whose harmonic k has amplitude amps[…, k-1]."""
    amps = np.atleast_2d(amps)
    spec = np.zeros((amps.shape[0], TABLE_SIZE // 2 + 1), dtype=np.complex128)
    k = min(amps.shape[1], TABLE_SIZE // 2 - 1)
    # Sine phase: harmonic k contributes amps[k] * sin(2*pi*k*t).
    spec[:, 1 : k + 1] = -0.5j * TABLE_SIZE * amps[:, :k]
    return np.fft.irfft(spec, n=TABLE_SIZE, axis=-1)


def wavetable(
    tables: np.ndarray,
    f0: float | np.ndarray,
    n: int,
    *,
    sr: int,
    phase: float = 0.0,
    hop: int = 256,
) -> np.ndarray:
    """Play single-cycle ``tables`` (F, T) at ``f0``, moving from frame to frame
    every ``hop`` samples with linear crossfades (float32)."""
    tables = np.atleast_2d(tables)
    n_frames, size = tables.shape
    pos = np.mod(phase_cycles(f0, n, sr=sr, phase=phase), 1.0) * size
    i0 = pos.astype(np.int64)
    frac = pos - i0
    i0 %= size
    i1 = (i0 + 1) % size
    flat = np.concatenate([tables.ravel(), tables[-1]])
    if n_frames == 1:
        out = flat[i0] * (1.0 - frac) + flat[i1] * frac
        return out.astype(np.float32)
    fpos = np.minimum(np.arange(n, dtype=np.float64) / hop, n_frames - 1.0)
    fa = fpos.astype(np.int64)
    w = fpos - fa
    fb = np.minimum(fa + 1, n_frames - 1)
    base_a = fa * size
    base_b = fb * size
    va = flat[base_a + i0] * (1.0 - frac) + flat[base_a + i1] * frac
    vb = flat[base_b + i0] * (1.0 - frac) + flat[base_b + i1] * frac
    return (va + w * (vb - va)).astype(np.float32)


def padsynth(
    freqs: np.ndarray,
    amps: np.ndarray,
    *,
    n: int,
    sr: int,
    bandwidth_cents: float,
    rng: np.random.Generator,
    mono_below_hz: float = 160.0,
    width: float = 1.0,
) -> np.ndarray:
    """A seamless stereo loop (2, n) of partials smeared into Gaussian bands.

    This is Nasca's PADsynth: each partial becomes a band ``bandwidth_cents``
    wide with random phases, which sounds like a detuned ensemble (chorused
    saws, strings, choirs) from a single inverse FFT. Low bins share their
    phase across channels so the low end stays mono.

    ``amps`` of shape (V, P) gives V loops (V, 2, n) with the same phases,
    e.g. a dark and a bright version to crossfade as a filter sweep.
    """
    amps2 = np.atleast_2d(np.asarray(amps, dtype=np.float64))
    bins = n // 2 + 1
    mag = np.zeros((amps2.shape[0], bins), dtype=np.float64)
    hz_per_bin = sr / n
    for i, f in enumerate(freqs):
        a = amps2[:, i]
        if not np.any(a > 0.0) or f >= NYQUIST_MARGIN * sr:
            continue
        bw = max((2.0 ** (bandwidth_cents / 1200.0) - 1.0) * f / hz_per_bin, 1.0)
        centre = f / hz_per_bin
        lo = max(int(centre - 3.0 * bw), 1)
        hi = min(int(centre + 3.0 * bw) + 2, bins)
        x = (np.arange(lo, hi) - centre) / bw
        mag[:, lo:hi] += a[:, None] * (np.exp(-x * x) / np.sqrt(bw))[None, :]
    phase = rng.uniform(0.0, 2.0 * np.pi, (2, bins)).astype(np.float32)
    rot = np.cos(phase) + 1j * np.sin(phase)
    mono = int(mono_below_hz / hz_per_bin)
    rot[1, :mono] = rot[0, :mono]
    if width < 1.0:
        # Partly shared phases narrow the image (1.0: independent channels).
        mixed = width * rot[1] + (1.0 - width) * rot[0]
        rot[1] = mixed / np.maximum(np.abs(mixed), 1e-6)
    spec = mag.astype(np.float32)[:, None, :] * rot.astype(np.complex64)[None, :, :]
    out = np.asarray(sp_fft.irfft(spec, n=n, axis=-1), dtype=np.float32)
    rms = np.sqrt(np.mean(out * out, axis=(1, 2), keepdims=True)) + 1e-12
    out *= (0.25 / rms).astype(np.float32)
    return out if np.ndim(amps) == 2 else out[0]
