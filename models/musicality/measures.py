"""Mix measures a genre target is checked against: the tonal-balance curve
by octave band, low-end mono compatibility, stereo width and onset density.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.signal as sps

from models.features import OCTAVE_CENTRES_HZ, SpectralFeatures

LOW_END_HZ = 120.0
#: Onset strength a hit must reach (drums read 10-30, soft pad swells 2-7).
ONSET_FLOOR = 5.0


@dataclass(frozen=True)
class MixMeasures:
    """``balance_db``: each octave band's share of the power, dB (sums to
    0 dB in power). ``low_side_db``: side over mid power below 120 Hz, dB
    (−30 mono lows, 0 as wide as the mid). ``width``: side over mid power,
    full band (0 mono, 1 uncorrelated). ``onsets_per_s``: onsets per second
    of sounding audio."""

    balance_db: tuple[float, ...]
    low_side_db: float
    width: float
    onsets_per_s: float


def tonal_balance(spectral: SpectralFeatures) -> tuple[float, ...]:
    frames = spectral.band_frames.astype(np.float64)
    if frames.size == 0:
        return tuple(-60.0 for _ in OCTAVE_CENTRES_HZ)
    total = frames.sum(axis=1)
    loud = total > 1e-6
    if not loud.any():
        return tuple(-60.0 for _ in OCTAVE_CENTRES_HZ)
    mean = frames[loud].mean(axis=0)
    share = mean / mean.sum()
    return tuple(float(max(10.0 * np.log10(v + 1e-12), -60.0)) for v in share)


def stereo_measures(low_rate: np.ndarray, sr_low: float, x: np.ndarray) -> tuple[float, float]:
    """(low side/mid dB, full-band side/mid power) of stereo audio; mono
    input reads (-60, 0)."""
    if x.shape[0] < 2:
        return -60.0, 0.0
    mid = 0.5 * (x[0] + x[1])
    side = 0.5 * (x[0] - x[1])
    mm, ss = float(mid @ mid), float(side @ side)
    width = ss / mm if mm > 0 else 0.0
    sos = sps.butter(4, LOW_END_HZ, "lowpass", fs=sr_low, output="sos")
    low = sps.sosfilt(sos, low_rate, axis=-1)
    lm = 0.5 * (low[0] + low[1])
    ls = 0.5 * (low[0] - low[1])
    lmm, lss = float(lm @ lm), float(ls @ ls)
    low_side = 10.0 * np.log10((lss + 1e-12) / (lmm + 1e-12)) if lmm > 0 else -60.0
    return float(np.clip(low_side, -60.0, 20.0)), float(width)


def onset_density(spectral: SpectralFeatures) -> float:
    env = spectral.onset_envelope
    fps = spectral.frames_per_s
    if env.size < 3 or float(env.max()) <= 0:
        return 0.0
    # An absolute floor: a track of nothing but soft swells has few onsets,
    # however its own loudest moment compares.
    ref = float(np.percentile(env, 99.5))
    height = max(0.2 * ref, ONSET_FLOOR)
    peaks, _ = sps.find_peaks(env, height=height, distance=max(1, round(0.06 * fps)))
    sounding = (
        float(np.mean(spectral.band_frames.sum(axis=1) > 1e-6))
        if spectral.band_frames.size
        else 1.0
    )
    seconds = max(env.size / fps * sounding, 1.0)
    return float(peaks.size / seconds)
