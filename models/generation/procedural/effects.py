"""Fast effects over whole stems: filters, convolution reverb, tempo delay,
side-chain pumping, lo-fi wear (crackle, wow) and the mix-bus helpers.

Audio is float32 ``(channels, samples)``. Filters run as one ``sosfilt`` over
a stem; time-varying sweeps change coefficients once per block.
"""

from __future__ import annotations

import functools
from typing import Literal

import numpy as np
import scipy.signal as sps

FilterKind = Literal["lowpass", "highpass", "bandpass"]


@functools.lru_cache(maxsize=512)
def _sos(kind: FilterKind, low: float, high: float, sr: int, order: int) -> np.ndarray:
    nyq = 0.49 * sr
    if kind == "bandpass":
        return np.asarray(
            sps.butter(
                order, [min(low, nyq * 0.9), min(high, nyq)], "bandpass", fs=sr, output="sos"
            )
        )
    return np.asarray(sps.butter(order, min(low, nyq), kind, fs=sr, output="sos"))


_CHUNK = 1 << 18


def filt(
    x: np.ndarray,
    kind: FilterKind,
    cutoff: float,
    *,
    sr: int,
    order: int = 2,
    high: float = 0.0,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Butterworth filter along the last axis; ``high`` is the band-pass top edge.

    Runs in chunks with the state carried over, so a long stem never needs a
    float64 copy of itself; ``out`` may be ``x`` to filter in place.
    """
    sos = _sos(kind, float(cutoff), float(high), sr, order)
    x = np.asarray(x)
    if out is None:
        out = np.empty(x.shape, dtype=np.float32)
    zi = np.zeros((sos.shape[0], *x.shape[:-1], 2))
    for start in range(0, x.shape[-1], _CHUNK):
        seg = slice(start, start + _CHUNK)
        y, zi = sps.sosfilt(sos, x[..., seg], axis=-1, zi=zi)
        out[..., seg] = y
    return out


def _biquads(kind: FilterKind, cutoffs: np.ndarray, sr: int) -> np.ndarray:
    """Second-order Butterworth sections (n, 1, 6) for many cutoffs at once
    (RBJ cookbook formulas), so a sweep costs no per-block filter design."""
    w = 2.0 * np.pi * np.clip(cutoffs, 10.0, 0.45 * sr) / sr
    cos, alpha = np.cos(w), np.sin(w) / np.sqrt(2.0)
    a0 = 1.0 + alpha
    if kind == "lowpass":
        b0 = (1.0 - cos) / 2.0
        b1 = 1.0 - cos
    else:
        b0 = (1.0 + cos) / 2.0
        b1 = -(1.0 + cos)
    sos = np.stack([b0, b1, b0, a0, -2.0 * cos, 1.0 - alpha], axis=-1) / a0[:, None]
    return sos[:, None, :]


def sweep_filter(
    x: np.ndarray,
    kind: FilterKind,
    start_hz: float,
    end_hz: float,
    *,
    sr: int,
    block: int = 2048,
) -> np.ndarray:
    """A 12 dB/oct filter whose cutoff glides exponentially from ``start_hz``
    to ``end_hz``. Coefficients change once per block with the state carried
    over; ~46 ms steps of a fraction of a semitone are inaudible."""
    n = x.shape[-1]
    n_blocks = max(1, -(-n // block))
    cutoffs = start_hz * (end_hz / start_hz) ** (np.arange(n_blocks) / max(n_blocks - 1, 1))
    all_sos = _biquads(kind, cutoffs, sr)
    out = np.empty(x.shape, dtype=np.float32)
    zi = np.zeros((1, *x.shape[:-1], 2))
    for i in range(n_blocks):
        seg = slice(i * block, min((i + 1) * block, n))
        y, zi = sps.sosfilt(all_sos[i], x[..., seg], axis=-1, zi=zi)
        out[..., seg] = y
    return out


@functools.lru_cache(maxsize=16)
def reverb_ir(sr: int, seconds: float, damping_hz: float, predelay_s: float) -> np.ndarray:
    """A stereo impulse response (2, L): decorrelated noise under an exponential
    decay whose highs die faster (damping), with a short pre-delay."""
    rng = np.random.Generator(np.random.PCG64(1234))
    n = int(seconds * sr)
    t = np.arange(n) / sr
    noise = rng.standard_normal((2, n))
    dark = np.asarray(sps.sosfilt(_sos("lowpass", damping_hz, 0.0, sr, 2), noise, axis=-1))
    decay = np.exp(-6.9 * t / seconds)
    # Bright early energy fades into a darker tail.
    ir = decay * (dark + noise * np.exp(-t / (0.08 * seconds)))
    ir = np.asarray(sps.sosfilt(_sos("highpass", 180.0, 0.0, sr, 2), ir, axis=-1))
    ir /= np.sqrt(np.sum(ir * ir, axis=-1, keepdims=True))
    pre = int(predelay_s * sr)
    return np.pad(ir, ((0, 0), (pre, 0))).astype(np.float32)


def reverb(mono: np.ndarray, ir: np.ndarray, *, sr: int) -> np.ndarray:
    """The stereo wet signal (2, N) of the mono send ``mono`` through ``ir``.

    Reverberant tails carry no useful panning, so the send is mono, and the
    convolution runs at half the sample rate: the damped tail has nothing
    above ~8 kHz, and the FFT work halves.
    """
    n = mono.shape[-1]
    lowered = filt(mono, "lowpass", 9000.0, sr=sr, order=2)
    m = ir.shape[-1] // 2 * 2
    ir_half = ir[:, 0:m:2] + ir[:, 1:m:2]
    half_n = (n + 1) // 2
    wet = sps.oaconvolve(lowered[None, 0::2], ir_half, axes=-1)[:, :half_n]
    out = np.empty((2, n), dtype=np.float32)
    out[:, 0::2] = wet
    # Linear interpolation back to the full rate.
    out[:, 1 : 2 * (half_n - 1) : 2] = 0.5 * (wet[:, :-1] + wet[:, 1:])[:, : n // 2]
    if n % 2 == 0:
        out[:, -1] = wet[:, -1]
    return out


def add_delay(
    x: np.ndarray, *, delay_samples: int, feedback: float, send: float, taps: int = 4
) -> None:
    """Add ping-pong echoes of stereo ``x`` to itself, in place: ``taps``
    repeats ``delay_samples`` apart, each ``feedback`` quieter, alternating
    sides, starting ``send`` below the dry level."""
    n = x.shape[-1]
    mid = x[0] + x[1]
    mid *= np.float32(0.5 * send)
    for k in range(1, taps + 1):
        d = k * delay_samples
        if d >= n:
            break
        g = np.float32(feedback ** (k - 1))
        ch = (k + 1) % 2
        x[ch, d:] += g * mid[: n - d]
        x[1 - ch, d:] += np.float32(0.25) * g * mid[: n - d]


def sidechain_gain(
    n: int, positions: np.ndarray, *, depth: float, release_s: float, sr: int
) -> np.ndarray:
    """A gain curve (n,) that ducks by ``depth`` at each kick and recovers
    smoothly over ``release_s``: the pumping of side-chain compression."""
    gain = np.ones(n, dtype=np.float32)
    if depth <= 0.0 or len(positions) == 0:
        return gain
    rel = max(int(release_s * sr), 16)
    attack = max(int(0.003 * sr), 1)
    t = np.arange(rel, dtype=np.float64)
    duck = 0.5 * (1.0 + np.cos(np.pi * t / rel))
    duck[:attack] *= np.linspace(0.0, 1.0, attack)
    shape = (1.0 - depth * duck).astype(np.float32)
    for p in positions:
        p = int(p)
        start, end = max(p, 0), min(p + rel, n)
        if end <= start:
            continue
        np.minimum(gain[start:end], shape[start - p : end - p], out=gain[start:end])
    return gain


def vinyl_crackle(
    n: int, *, sr: int, rng: np.random.Generator, clicks_per_s: float, level: float
) -> np.ndarray:
    """Vinyl surface noise (2, n): sparse band-passed clicks over a soft hiss."""
    out = np.zeros((2, n), dtype=np.float32)
    count = int(clicks_per_s * n / sr)
    pos = rng.integers(0, n, size=(2, count))
    amp = (rng.pareto(3.0, size=(2, count)) + 0.2) * rng.choice([-1.0, 1.0], size=(2, count))
    for ch in range(2):
        np.add.at(out[ch], pos[ch], amp[ch].astype(np.float32))
    filt(out, "bandpass", 900.0, sr=sr, high=7000.0, out=out)
    out *= np.float32(level / (float(np.max(np.abs(out))) or 1.0))
    hiss = rng.standard_normal((2, n), dtype=np.float32)
    filt(hiss, "lowpass", 5000.0, sr=sr, out=hiss)
    hiss *= np.float32(0.04 * level)
    out += hiss
    return out


def tape_wow(
    x: np.ndarray, *, sr: int, rng: np.random.Generator, wow_ms: float, flutter_ms: float
) -> np.ndarray:
    """Slow pitch wobble of a worn tape: read ``x`` at a time offset that drifts
    (wow ~0.5 Hz, flutter ~6 Hz), by linear interpolation, chunk by chunk."""
    n = x.shape[-1]
    wow_hz = rng.uniform(0.35, 0.7)
    flutter_hz = rng.uniform(5.0, 7.0)
    wow_phase = rng.uniform(0, 6)
    out = np.empty_like(x)
    for start in range(0, n, _CHUNK):
        t = np.arange(start, min(start + _CHUNK, n), dtype=np.float64)
        offset = wow_ms * 1e-3 * sr * (1.0 + np.sin(2 * np.pi * wow_hz * t / sr + wow_phase))
        offset += flutter_ms * 1e-3 * sr * np.sin(2 * np.pi * flutter_hz * t / sr)
        read = np.clip(t - offset, 0.0, n - 1.0)
        i0 = read.astype(np.int64)
        frac = (read - i0).astype(np.float32)
        i1 = np.minimum(i0 + 1, n - 1)
        out[:, start : start + t.size] = x[:, i0] + frac * (x[:, i1] - x[:, i0])
    return out


def mono_low_end(x: np.ndarray, *, sr: int, cutoff_hz: float = 120.0) -> np.ndarray:
    """Remove the stereo difference below ``cutoff_hz`` (in place) so bass and
    kick are mono: the low-passed side signal is taken out of both channels."""
    side = x[0] - x[1]
    side *= np.float32(0.5)
    low_side = filt(side, "lowpass", cutoff_hz, sr=sr, order=2)
    x[0] -= low_side
    x[1] += low_side
    return x


def pan(mono: np.ndarray, position: float) -> np.ndarray:
    """Constant-power pan of a mono signal: -1 left, +1 right."""
    angle = (position + 1.0) * np.pi / 4.0
    return np.stack([mono * np.cos(angle), mono * np.sin(angle)]).astype(np.float32)


def saturate(x: np.ndarray, drive: float) -> np.ndarray:
    """Soft clipping, normalised so small signals keep their level."""
    return (np.tanh(drive * x) / np.float32(drive)).astype(np.float32, copy=False)


def fades(x: np.ndarray, *, sr: int, fade_in_s: float, fade_out_s: float) -> np.ndarray:
    """Raised-cosine fade in and out, in place; returns ``x``."""
    n = x.shape[-1]
    for length, rising in ((int(fade_in_s * sr), True), (int(fade_out_s * sr), False)):
        length = min(length, n)
        if length <= 1:
            continue
        ramp = (0.5 - 0.5 * np.cos(np.linspace(0.0, np.pi, length))).astype(np.float32)
        if rising:
            x[..., :length] *= ramp
        else:
            x[..., n - length :] *= ramp[::-1]
    return x


def normalize_peak(x: np.ndarray, *, peak_dbfs: float) -> np.ndarray:
    """Scale (in place) so the sample peak sits at ``peak_dbfs``."""
    peak = float(np.max(np.abs(x)))
    if not np.isfinite(peak) or peak <= 0.0:
        return x
    x *= np.float32(10.0 ** (peak_dbfs / 20.0) / peak)
    return x
