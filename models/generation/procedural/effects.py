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
            sps.butter(order, [min(low, nyq * 0.9), min(high, nyq)], "bandpass", fs=sr, output="sos")
        )
    return np.asarray(sps.butter(order, min(low, nyq), kind, fs=sr, output="sos"))


def filt(
    x: np.ndarray, kind: FilterKind, cutoff: float, *, sr: int, order: int = 2, high: float = 0.0
) -> np.ndarray:
    """Butterworth filter along the last axis; ``high`` is the band-pass top edge."""
    out = sps.sosfilt(_sos(kind, float(cutoff), float(high), sr, order), x, axis=-1)
    return np.asarray(out, dtype=np.float32)


def sweep_filter(
    x: np.ndarray,
    kind: FilterKind,
    start_hz: float,
    end_hz: float,
    *,
    sr: int,
    block: int = 1024,
    order: int = 2,
) -> np.ndarray:
    """A filter whose cutoff glides exponentially from ``start_hz`` to ``end_hz``.

    Coefficients change once per block with the filter state carried over;
    blocks of ~23 ms are short enough that the steps are inaudible.
    """
    n = x.shape[-1]
    n_blocks = max(1, -(-n // block))
    cutoffs = start_hz * (end_hz / start_hz) ** (np.arange(n_blocks) / max(n_blocks - 1, 1))
    out = np.empty(x.shape, dtype=np.float32)
    zi: np.ndarray | None = None
    for b in range(n_blocks):
        # Round cutoffs so the coefficient cache is reused across tracks.
        sos = _sos(kind, float(np.round(cutoffs[b], 0)), 0.0, sr, order)
        if zi is None:
            zi = np.zeros((sos.shape[0], *x.shape[:-1], 2))
        seg = slice(b * block, min((b + 1) * block, n))
        y, zi = sps.sosfilt(sos, x[..., seg], axis=-1, zi=zi)
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


def reverb(x: np.ndarray, ir: np.ndarray) -> np.ndarray:
    """The wet signal (2, N) of stereo ``x`` through ``ir``, cut to ``x``'s length.

    The input is summed to mono first: one convolution per output channel,
    and reverberant tails carry no useful panning anyway.
    """
    mid = 0.5 * (x[0] + x[1])
    wet = sps.oaconvolve(mid[None, :], ir, axes=-1)[:, : x.shape[-1]]
    return np.asarray(wet, dtype=np.float32)


def delay(
    x: np.ndarray, *, delay_samples: int, feedback: float, taps: int = 4, ping_pong: bool = True
) -> np.ndarray:
    """Wet echoes of stereo ``x``: ``taps`` repeats ``delay_samples`` apart,
    each ``feedback`` quieter, alternating sides when ``ping_pong``."""
    n = x.shape[-1]
    wet = np.zeros_like(x)
    mid = 0.5 * (x[0] + x[1])
    for k in range(1, taps + 1):
        d = k * delay_samples
        if d >= n:
            break
        g = feedback ** (k - 1)
        if ping_pong:
            ch = (k + 1) % 2
            wet[ch, d:] += g * mid[: n - d]
            wet[1 - ch, d:] += 0.25 * g * mid[: n - d]
        else:
            wet[:, d:] += g * x[:, : n - d]
    return wet


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
        if p >= n:
            continue
        end = min(p + rel, n)
        np.minimum(gain[p:end], shape[: end - p], out=gain[p:end])
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
    out = filt(out, "bandpass", 900.0, sr=sr, high=7000.0)
    hiss = filt(rng.standard_normal((2, n)).astype(np.float32), "lowpass", 5000.0, sr=sr)
    peak = float(np.max(np.abs(out))) or 1.0
    return (out * (level / peak) + hiss * (0.04 * level)).astype(np.float32)


def tape_wow(
    x: np.ndarray, *, sr: int, rng: np.random.Generator, wow_ms: float, flutter_ms: float
) -> np.ndarray:
    """Slow pitch wobble of a worn tape: read ``x`` at a time offset that drifts
    (wow ~0.5 Hz, flutter ~6 Hz), by linear interpolation."""
    n = x.shape[-1]
    t = np.arange(n, dtype=np.float64)
    wow_hz = rng.uniform(0.35, 0.7)
    flutter_hz = rng.uniform(5.0, 7.0)
    offset = wow_ms * 1e-3 * sr * (1.0 + np.sin(2 * np.pi * wow_hz * t / sr + rng.uniform(0, 6)))
    offset += flutter_ms * 1e-3 * sr * np.sin(2 * np.pi * flutter_hz * t / sr)
    read = np.clip(t - offset, 0.0, n - 1.0)
    return np.stack([np.interp(read, t, ch) for ch in x]).astype(np.float32)


def mono_low_end(x: np.ndarray, *, sr: int, cutoff_hz: float = 120.0) -> np.ndarray:
    """Remove stereo difference below ``cutoff_hz`` so bass and kick are mono."""
    mid = 0.5 * (x[0] + x[1])
    side = filt(0.5 * (x[0] - x[1]), "highpass", cutoff_hz, sr=sr, order=2)
    return np.stack([mid + side, mid - side]).astype(np.float32)


def pan(mono: np.ndarray, position: float) -> np.ndarray:
    """Constant-power pan of a mono signal: -1 left, +1 right."""
    angle = (position + 1.0) * np.pi / 4.0
    return np.stack([mono * np.cos(angle), mono * np.sin(angle)]).astype(np.float32)


def saturate(x: np.ndarray, drive: float) -> np.ndarray:
    """Soft clipping, normalised so small signals keep their level."""
    return (np.tanh(drive * x) / drive).astype(np.float32)


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
    """Scale so the sample peak sits at ``peak_dbfs``."""
    peak = float(np.max(np.abs(x)))
    if not np.isfinite(peak) or peak <= 0.0:
        return x
    return (x * (10.0 ** (peak_dbfs / 20.0) / peak)).astype(np.float32)
