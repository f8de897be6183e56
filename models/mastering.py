"""Mastering: a per-genre pedalboard chain, then loudness and true-peak targets.

``master_audio`` brings the track to a reference level, runs the genre's
chain (high-pass, glue compressor, EQ shelves and peaks, pedalboard's
limiter for density), then sets the final gain and a true-peak ceiling with
its own lookahead limiter, measuring loudness (``models.loudness``, the
scorer's meter) and true peak after every pass until both meet the
targets. pedalboard's ``Limiter`` adds make-up gain and hard-clips at
±1.0, so it cannot be the last stage: the ceiling is enforced after it.

The ceiling is held on ``true_peak_precise`` (8x, flat to 0.97 of Nyquist),
with a margin: BS.1770's 4x meter read -1.1 dBTP on masters that FFmpeg's
``ebur128`` read at -0.6 to -0.9, because bright, limited dance masters
peak between the 4x points. The limiter's gain comes from 8x block peaks
too (an oversampled limiter); a pass that still reads over lowers its aim.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np
import pedalboard
from scipy.ndimage import minimum_filter1d, uniform_filter1d

from models.audio_io import as_float32_audio
from models.errors import ModelsError
from models.loudness import (
    LUFS_FLOOR,
    integrated_loudness,
    to_dbtp,
    true_peak_blocks,
    true_peak_precise,
)

CHAIN_VERSION = "master-1.0.0"

#: The chains' compressor thresholds assume a programme at this loudness.
REFERENCE_LUFS = -20.0
LUFS_TOLERANCE = 0.5  # the contract: |lufs_after - target| <= 0.5 LU
_AIM_TOLERANCE = 0.1  # what the passes aim for, well inside the contract
_MAX_PASSES = 8
_CEILING_MARGIN_DB = 0.15  # the block limiter aims this far under the ceiling
#: The 8x reading must hold this far under the ceiling: another meter's
#: filter (FFmpeg's resampler, a DAC's) reads a few hundredths either way.
HOLD_MARGIN_DB = 0.1
_BLOCK = 16  # samples per limiter gain step (the true-peak block size)
_ATTACK_MS = 1.5
_RELEASE_MS = 40.0
_MAX_STEP_DB = 12.0  # per pass, so a wild secant step cannot overflow float32
_MIN_SLOPE = 0.05  # LU of loudness per dB of gain below which limiting eats the gain


class MasteringError(ModelsError, RuntimeError):
    """A track cannot be mastered to the requested loudness and ceiling."""


@dataclass(frozen=True)
class ChainSettings:
    """One genre's chain. Levels assume a programme at ``REFERENCE_LUFS``;
    EQ entries are ``(hz, gain_db, q)``."""

    highpass_hz: float
    comp_threshold_db: float
    comp_ratio: float
    comp_attack_ms: float
    comp_release_ms: float
    low_shelf: tuple[float, float, float]
    peaks: tuple[tuple[float, float, float], ...]
    high_shelf: tuple[float, float, float]
    drive_db: float  # gain into pedalboard's limiter: how dense the master is
    limiter_threshold_db: float
    limiter_release_ms: float


# Why each differs: dance genres want a tight low end and density (faster,
# harder compression, more drive); lo-fi stays warm and dark (low shelf up,
# highs down); ambient keeps its dynamics (gentle ratio, slow release, no drive).
GENRE_CHAINS: MappingProxyType[str, ChainSettings] = MappingProxyType(
    {
        "drum_and_bass": ChainSettings(
            highpass_hz=30.0,
            comp_threshold_db=-18.0,
            comp_ratio=3.0,
            comp_attack_ms=10.0,
            comp_release_ms=100.0,
            low_shelf=(80.0, 1.0, 0.7),
            peaks=((300.0, -1.0, 1.0),),
            high_shelf=(10000.0, 1.5, 0.7),
            drive_db=3.0,
            limiter_threshold_db=-2.0,
            limiter_release_ms=60.0,
        ),
        "trance": ChainSettings(
            highpass_hz=30.0,
            comp_threshold_db=-20.0,
            comp_ratio=2.5,
            comp_attack_ms=20.0,
            comp_release_ms=150.0,
            low_shelf=(100.0, 0.5, 0.7),
            peaks=((400.0, -1.0, 1.0),),
            high_shelf=(8000.0, 1.5, 0.7),
            drive_db=2.0,
            limiter_threshold_db=-2.0,
            limiter_release_ms=80.0,
        ),
        "house": ChainSettings(
            highpass_hz=30.0,
            comp_threshold_db=-18.0,
            comp_ratio=2.0,
            comp_attack_ms=20.0,
            comp_release_ms=120.0,
            low_shelf=(90.0, 1.0, 0.7),
            peaks=((250.0, -1.0, 1.0),),
            high_shelf=(9000.0, 1.0, 0.7),
            drive_db=2.0,
            limiter_threshold_db=-2.0,
            limiter_release_ms=80.0,
        ),
        "techno": ChainSettings(
            highpass_hz=28.0,
            comp_threshold_db=-16.0,
            comp_ratio=3.0,
            comp_attack_ms=15.0,
            comp_release_ms=100.0,
            low_shelf=(70.0, 1.0, 0.7),
            peaks=((350.0, -1.5, 1.0),),
            high_shelf=(10000.0, 0.5, 0.7),
            drive_db=3.0,
            limiter_threshold_db=-2.0,
            limiter_release_ms=60.0,
        ),
        "lofi_hip_hop": ChainSettings(
            highpass_hz=35.0,
            comp_threshold_db=-22.0,
            comp_ratio=2.0,
            comp_attack_ms=30.0,
            comp_release_ms=200.0,
            low_shelf=(120.0, 1.5, 0.7),
            peaks=((3000.0, -1.0, 0.8),),
            high_shelf=(8000.0, -1.5, 0.7),
            drive_db=1.0,
            limiter_threshold_db=-1.0,
            limiter_release_ms=120.0,
        ),
        "ambient": ChainSettings(
            highpass_hz=25.0,
            comp_threshold_db=-24.0,
            comp_ratio=1.5,
            comp_attack_ms=50.0,
            comp_release_ms=300.0,
            low_shelf=(100.0, 0.0, 0.7),
            peaks=((500.0, -0.5, 0.7),),
            high_shelf=(10000.0, 1.0, 0.7),
            drive_db=0.0,
            limiter_threshold_db=-0.5,
            limiter_release_ms=200.0,
        ),
    }
)
DEFAULT_CHAIN = ChainSettings(
    highpass_hz=30.0,
    comp_threshold_db=-18.0,
    comp_ratio=2.0,
    comp_attack_ms=20.0,
    comp_release_ms=150.0,
    low_shelf=(100.0, 0.0, 0.7),
    peaks=((300.0, -0.5, 1.0),),
    high_shelf=(10000.0, 0.5, 0.7),
    drive_db=1.0,
    limiter_threshold_db=-1.0,
    limiter_release_ms=100.0,
)


@dataclass(frozen=True)
class MasterResult:
    """Mastered audio and the loudness and true peak measured on it."""

    audio: np.ndarray  # float32 (channels, samples)
    sample_rate: int
    lufs_before: float
    lufs_after: float
    true_peak_after: float  # dBTP
    chain_version: str


def chain_settings(genre: str) -> ChainSettings:
    """The genre's chain settings; ``DEFAULT_CHAIN`` for unknown genres.
    Names are matched case-insensitively, spaces and dashes as underscores."""
    key = genre.strip().lower().replace("-", "_").replace(" ", "_").replace("&", "and")
    return GENRE_CHAINS.get(key, DEFAULT_CHAIN)


def build_chain(genre: str) -> pedalboard.Pedalboard:
    """The genre's pedalboard chain (expects a programme at ``REFERENCE_LUFS``)."""
    s = chain_settings(genre)
    plugins: list[pedalboard.Plugin] = [
        pedalboard.HighpassFilter(cutoff_frequency_hz=s.highpass_hz),
        pedalboard.Compressor(
            threshold_db=s.comp_threshold_db,
            ratio=s.comp_ratio,
            attack_ms=s.comp_attack_ms,
            release_ms=s.comp_release_ms,
        ),
        pedalboard.LowShelfFilter(
            cutoff_frequency_hz=s.low_shelf[0], gain_db=s.low_shelf[1], q=s.low_shelf[2]
        ),
        *(pedalboard.PeakFilter(cutoff_frequency_hz=f, gain_db=g, q=q) for f, g, q in s.peaks),
        pedalboard.HighShelfFilter(
            cutoff_frequency_hz=s.high_shelf[0], gain_db=s.high_shelf[1], q=s.high_shelf[2]
        ),
        pedalboard.Gain(gain_db=s.drive_db),
        pedalboard.Limiter(threshold_db=s.limiter_threshold_db, release_ms=s.limiter_release_ms),
    ]
    return pedalboard.Pedalboard(plugins)


def _db(gain_db: float) -> float:
    return float(10.0 ** (gain_db / 20.0))


def _limiter_gain(peaks: np.ndarray, ceiling: float, n: int, sample_rate: int) -> np.ndarray | None:
    """A smooth per-sample gain that keeps every block's true peak (channels
    linked) at or under ``ceiling``; None when no block is over.

    Offline, so the lookahead is free: each smoothing stage is a minimum
    filter followed by a moving average of the same centred width, which
    can only lower the gain below what every sample needs. Two stages: a
    fast one (attack) and a slow one (release, no pumping between peaks).
    """
    need = np.minimum(1.0, ceiling / np.maximum(peaks, 1e-12)).astype(np.float32)
    if need.min() >= 1.0:
        return None
    per_ms = sample_rate / 1000.0 / _BLOCK
    gain: np.ndarray = need
    for ms in (_ATTACK_MS, _RELEASE_MS):
        width = 2 * max(1, round(ms * per_ms)) + 1
        gain = uniform_filter1d(
            minimum_filter1d(gain, width, mode="nearest"), width, mode="nearest"
        )
    # Linear interpolation between block centres mixes a block with its
    # neighbours: take their minimum first so no sample exceeds its block's need.
    gain = minimum_filter1d(gain, 3, mode="nearest")
    centres = np.arange(gain.shape[0]) * _BLOCK + (_BLOCK - 1) / 2.0
    return np.interp(np.arange(n), centres, gain).astype(np.float32)


def master_audio(
    audio: np.ndarray,
    sample_rate: int,
    *,
    genre: str,
    target_lufs: float = -14.0,
    ceiling_dbtp: float = -1.0,
) -> MasterResult:
    """Master one track to ``target_lufs`` (±0.5 LU) under ``ceiling_dbtp``.

    Raises ``MasteringError`` for silent or non-finite input, and when the
    passes cannot meet both targets (very sparse, peaky material).
    """
    x = as_float32_audio(audio)
    if not np.isfinite(x).all():
        raise MasteringError("audio contains NaN or inf samples; score and reject it instead")
    lufs_before = integrated_loudness(x, sample_rate)
    if lufs_before <= LUFS_FLOOR:
        raise MasteringError(
            f"input is silent or shorter than one 0.4 s block: integrated loudness is at the "
            f"{LUFS_FLOOR:.0f} LUFS gate, so there is nothing to raise to {target_lufs} LUFS"
        )

    chained = build_chain(genre)(x * np.float32(_db(REFERENCE_LUFS - lufs_before)), sample_rate)
    chained = np.ascontiguousarray(chained, dtype=np.float32)
    lufs_chain = integrated_loudness(chained, sample_rate)
    if lufs_chain <= LUFS_FLOOR:
        raise MasteringError(f"the {genre!r} chain left the track silent; check its settings")
    peaks = true_peak_blocks(chained, block=_BLOCK, precise=True).max(axis=0)  # channels linked
    hold = _db(ceiling_dbtp - HOLD_MARGIN_DB)
    aim = _db(ceiling_dbtp - _CEILING_MARGIN_DB)

    gain_db = target_lufs - lufs_chain  # exact if nothing needs limiting
    tried: list[tuple[float, float]] = []  # (gain_db, lufs) for the secant steps
    lufs_after, peak_after = lufs_chain, math.inf
    out: np.ndarray = chained
    passes = 0
    while passes < _MAX_PASSES:
        passes += 1
        g = _db(gain_db)
        curve = _limiter_gain(peaks * g, aim, chained.shape[1], sample_rate)
        out = chained * np.float32(g) if curve is None else chained * (curve * np.float32(g))
        lufs_after = integrated_loudness(out, sample_rate)
        peak_after = true_peak_precise(out)
        error = target_lufs - lufs_after
        if abs(error) <= _AIM_TOLERANCE and peak_after <= hold:
            break
        if peak_after > hold:  # the 4x block gain let an inter-sample peak through
            aim *= hold / peak_after * _db(-0.05)
            tried.clear()  # a new aim is a new loudness curve: no secant across it
        else:
            tried.append((gain_db, lufs_after))
        step = error
        if len(tried) >= 2 and tried[-1][0] != tried[-2][0]:
            (g0, l0), (g1, l1) = tried[-2], tried[-1]
            slope = (l1 - l0) / (g1 - g0)
            if slope < _MIN_SLOPE and error > 0:
                break  # more gain only feeds the limiter: the material cannot get louder
            # Limiting makes loudness grow slower than gain; a secant step
            # converges in 2-3 passes where plain fixed-point steps crawl.
            step = error / min(max(slope, _MIN_SLOPE), 1.0)
        gain_db += float(np.clip(step, -_MAX_STEP_DB, _MAX_STEP_DB))

    if abs(lufs_after - target_lufs) > LUFS_TOLERANCE or peak_after > hold:
        why = (
            "the material is too sparse or peaky to raise that far"
            if lufs_after < target_lufs
            else "the limiter could not hold the peaks"
        )
        raise MasteringError(
            f"could not master to {target_lufs} LUFS under {ceiling_dbtp} dBTP ({genre!r} chain): "
            f"after {passes} passes loudness is {lufs_after:.2f} LUFS and true peak "
            f"{to_dbtp(peak_after):.2f} dBTP; {why}"
        )
    return MasterResult(
        audio=out,
        sample_rate=int(sample_rate),
        lufs_before=lufs_before,
        lufs_after=lufs_after,
        true_peak_after=to_dbtp(peak_after),
        chain_version=CHAIN_VERSION,
    )
