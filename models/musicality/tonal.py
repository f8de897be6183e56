"""Pitch content: a fine spectrogram at a quarter of the sample rate, the
chromagram, the tuning reference and the key.

The key is estimated with the Krumhansl–Kessler and Temperley (Kostka–Payne)
profiles correlated with the track's mean chroma, the Krumhansl–Schmuckler
method, over the 24 major and minor keys. The chroma is read on the
standard A440 grid, so a track detuned against its label spreads its energy
between two pitch classes and the tuning estimate says by how much.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import scipy.fft
import scipy.signal as sps
from numpy.lib.stride_tricks import sliding_window_view

from models.generation.procedural.theory import SCALES, parse_key

PITCH_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
#: Krumhansl & Kessler (1982) probe-tone ratings, C major and C minor.
KK_MAJOR = (6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88)
KK_MINOR = (6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17)
#: Temperley (1999/2007) Kostka–Payne profiles.
TEMPERLEY_MAJOR = (5.0, 2.0, 3.5, 2.0, 4.5, 4.0, 2.0, 4.5, 2.0, 3.5, 1.5, 4.0)
TEMPERLEY_MINOR = (5.0, 2.0, 3.5, 4.5, 2.0, 4.0, 2.0, 4.5, 3.5, 2.0, 1.5, 4.0)
#: Modes whose third is major read as major keys, the others as minor.
MAJOR_MODES = frozenset({"major", "lydian", "mixolydian"})
DECIMATE = 4
FINE_FRAME_S = 0.1
#: Below 100 Hz a 2.7 Hz bin is more than a semitone apart from the next
#: note's (E1 to F1 is 2.4 Hz): bass fundamentals would smear across pitch
#: classes, so the chroma starts above them (their harmonics still count).
CHROMA_LOW_HZ, CHROMA_HIGH_HZ = 100.0, 2500.0


@dataclass(frozen=True)
class FineSpectrogram:
    """Power spectra (frames, bins) of the mono mix at ``sr / 4``, 0.1 s hop."""

    power: np.ndarray
    freqs: np.ndarray
    frames_per_s: float


@dataclass(frozen=True)
class KeyEstimate:
    """The estimated key, how clearly it stands out, and how the labelled key
    fits what plays.

    ``confidence``: the best key's profile correlation minus the runner-up's
    (0 ambiguous, ~0.1 and more clear). ``scale_fit``: the share of chroma
    energy on the labelled key's seven pitch classes (7/12 = 0.58 for noise).
    ``scale_rank``: how the labelled scale's fit compares with the best
    transposition of the same scale, (fit - 7/12) / (best - 7/12): 1.0 when
    the label is the best-fitting transposition, whatever drums and noise
    add evenly to every pitch class. ``label_relation``: "same", "relative" (same pitch set, another tonic,
    e.g. A minor for C major), "fifth" (a neighbour on the circle of
    fifths), "parallel" (same tonic, other mode), "other", or "unlabelled".
    ``tuning_cents``: the offset of the partials from the A440 grid, -50..50.
    """

    key: str
    tonic: int
    mode: str
    correlation: float
    confidence: float
    tuning_cents: float
    tuning_strength: float
    scale_fit: float
    scale_rank: float
    label_relation: str
    mean_chroma: tuple[float, ...]


def fine_spectrogram(x: np.ndarray, sample_rate: int) -> FineSpectrogram:
    """A 4096-point spectrogram of the mono mix at a quarter of the rate
    (2.7 Hz bins at 44.1 kHz): fine enough for the chroma of bass notes."""
    mono = x.mean(axis=0) if x.shape[0] > 1 else x[0]
    low = sps.resample_poly(mono, 1, DECIMATE).astype(np.float32)
    return fine_spectrogram_of_mono(low, sample_rate / DECIMATE)


def fine_spectrogram_of_mono(low: np.ndarray, sr: float) -> FineSpectrogram:
    """``fine_spectrogram`` of a mono signal already at the quarter rate."""
    n_fft = 4096
    hop = max(1, round(FINE_FRAME_S * sr))
    if low.size < n_fft:
        low = np.pad(low, (0, n_fft - low.size))
    frames = sliding_window_view(low, n_fft)[::hop]
    win = _hann(n_fft)
    power = np.empty((frames.shape[0], n_fft // 2 + 1), dtype=np.float32)
    for start in range(0, frames.shape[0], 512):
        spec = scipy.fft.rfft(frames[start : start + 512] * win, axis=-1, workers=1)
        power[start : start + 512] = (spec.real**2 + spec.imag**2).astype(np.float32)
    return FineSpectrogram(power, np.fft.rfftfreq(n_fft, 1.0 / sr).astype(np.float32), sr / hop)


@lru_cache(maxsize=4)
def _hann(n: int) -> np.ndarray:
    w = np.hanning(n + 1)[:-1]
    return (w / w.sum()).astype(np.float32)


@lru_cache(maxsize=8)
def _chroma_matrix(freqs_key: tuple[float, float, int]) -> np.ndarray:
    """(bins, 12) weights: each bin between 100 Hz and 2.5 kHz shares itself
    between the two nearest A440 semitones (triangular, by cents)."""
    step, _, count = freqs_key
    freqs = np.arange(count) * step
    out = np.zeros((count, 12), dtype=np.float32)
    ok = (freqs >= CHROMA_LOW_HZ) & (freqs <= CHROMA_HIGH_HZ)
    midi = 69.0 + 12.0 * np.log2(np.maximum(freqs[ok], 1e-6) / 440.0)
    lo = np.floor(midi).astype(np.int64)
    frac = (midi - lo).astype(np.float32)
    idx = np.flatnonzero(ok)
    out[idx, lo % 12] += 1.0 - frac
    out[idx, (lo + 1) % 12] += frac
    return out


def chromagram(spec: FineSpectrogram) -> np.ndarray:
    """(frames, 12) chroma, each frame scaled to sum 1 (silent frames 0)."""
    step = float(spec.freqs[1] - spec.freqs[0])
    m = _chroma_matrix((step, 0.0, spec.freqs.size))
    # Square-root magnitude: loud bass notes do not drown the harmony.
    chroma = np.sqrt(spec.power) @ m
    total = chroma.sum(axis=1, keepdims=True)
    loud = total[:, 0] > 1e-4 * max(float(total.max()), 1e-12)
    out = np.zeros_like(chroma)
    out[loud] = chroma[loud] / total[loud]
    return out


def tuning(spec: FineSpectrogram) -> tuple[float, float]:
    """(cents, strength): the circular mean of the spectral peaks' offsets
    from the A440 semitone grid, weighted by magnitude, and its resultant
    length (0 none .. 1 every partial on one offset)."""
    mag = np.sqrt(spec.power)
    sel = slice(int(np.searchsorted(spec.freqs, 80.0)), int(np.searchsorted(spec.freqs, 2000.0)))
    m = mag[:, sel]
    # Local maxima well above the frame's median: the partials.
    peak = (m[:, 1:-1] > m[:, :-2]) & (m[:, 1:-1] >= m[:, 2:])
    peak &= m[:, 1:-1] > 8.0 * (np.median(m, axis=1, keepdims=True) + 1e-12)
    rows, cols = np.nonzero(peak)
    if rows.size < 10:
        return 0.0, 0.0
    a, b, c = m[rows, cols], m[rows, cols + 1], m[rows, cols + 2]
    denom = a - 2 * b + c
    offset = np.where(np.abs(denom) > 1e-12, 0.5 * (a - c) / np.where(denom == 0, 1, denom), 0.0)
    step = float(spec.freqs[1] - spec.freqs[0])
    f = (sel.start + cols + 1 + np.clip(offset, -0.5, 0.5)) * step
    cents = 1200.0 * np.log2(f / 440.0)
    angle = 2 * np.pi * cents / 100.0
    w = b.astype(np.float64)
    z = np.sum(w * np.exp(1j * angle)) / (np.sum(w) + 1e-12)
    return float(np.angle(z) / (2 * np.pi) * 100.0), float(np.abs(z))


def _zscore(p: tuple[float, ...]) -> np.ndarray:
    a = np.asarray(p, dtype=np.float64)
    return (a - a.mean()) / a.std()


_PROFILES = {
    "major": (_zscore(KK_MAJOR) + _zscore(TEMPERLEY_MAJOR)) / 2.0,
    "minor": (_zscore(KK_MINOR) + _zscore(TEMPERLEY_MINOR)) / 2.0,
}


def key_correlations(mean_chroma: np.ndarray) -> dict[tuple[int, str], float]:
    """Pearson correlation of the chroma with every major and minor key."""
    c = np.asarray(mean_chroma, dtype=np.float64)
    if c.std() == 0:
        return {(t, m): 0.0 for t in range(12) for m in _PROFILES}
    cz = (c - c.mean()) / c.std()
    return {
        (t, m): float(np.mean(cz * np.roll(p, t))) for t in range(12) for m, p in _PROFILES.items()
    }


def _relation(tonic: int, mode: str, label: str | None) -> tuple[str, frozenset[int] | None]:
    if not label:
        return "unlabelled", None
    key = parse_key(label)
    pcs = frozenset((key.tonic + i) % 12 for i in SCALES[key.scale])
    label_mode = "major" if key.scale in MAJOR_MODES else "minor"
    if tonic == key.tonic and mode == label_mode:
        return "same", pcs
    est_pcs = frozenset((tonic + i) % 12 for i in SCALES["major" if mode == "major" else "minor"])
    if est_pcs == pcs:
        return "relative", pcs
    if tonic == key.tonic:
        return "parallel", pcs
    if len(est_pcs & pcs) == 6:
        return "fifth", pcs
    return "other", pcs


def estimate_key(chroma: np.ndarray, spec: FineSpectrogram, *, label: str | None) -> KeyEstimate:
    """The key of ``chroma`` frames and how ``label`` fits it."""
    mean = chroma.mean(axis=0) if chroma.size else np.zeros(12)
    corr = key_correlations(mean)
    ranked = sorted(corr.items(), key=lambda kv: -kv[1])
    (tonic, mode), best = ranked[0]
    runner = ranked[1][1]
    cents, strength = tuning(spec)
    relation, pcs = _relation(tonic, mode, label)
    total = float(mean.sum())
    scale_fit = scale_rank = 0.0
    if pcs is not None and total > 0:
        scale_fit = float(sum(mean[p] for p in pcs) / total)
        fits = [sum(mean[(p + k) % 12] for p in pcs) / total for k in range(12)]
        top = max(fits) - 7.0 / 12.0
        scale_rank = float(max(scale_fit - 7.0 / 12.0, 0.0) / top) if top > 1e-6 else 0.0
    return KeyEstimate(
        key=f"{PITCH_NAMES[tonic]} {mode}",
        tonic=tonic,
        mode=mode,
        correlation=best,
        confidence=best - runner,
        tuning_cents=cents,
        tuning_strength=strength,
        scale_fit=scale_fit,
        scale_rank=scale_rank,
        label_relation=relation,
        mean_chroma=tuple(float(v) for v in mean),
    )
