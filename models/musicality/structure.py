"""Form: a self-similarity matrix of half-second blocks, section boundaries
from a checkerboard novelty (Foote 2000), the contrast between sections,
how much material comes back, and whether the track is a literal loop.

Block features are on absolute scales, not normalised per track, so a
track that never changes stays flat instead of having its noise magnified:
octave-band levels in units of 6 dB, chroma (summing to 1) times 5, and the
onset rate.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import uniform_filter1d

BLOCK_S = 0.5
SMOOTH_S = 4.0
EDGE_S = 8.0  # a turn this near either end is the fade, not a section
KERNEL_S = 8.0  # each side of the novelty kernel: about 4 bars at 120 BPM
MIN_SECTION_S = 12.0
NOVELTY_PEAK = 0.12
RECURRENCE_GAP_S = 20.0
SIMILARITY_SCALE = 1.2  # feature distance at which similarity is exp(-1/2)
LOOP_TOLERANCE_DB = 1.0


@dataclass(frozen=True)
class Structure:
    """What the form analysis found.

    ``boundaries_s``: section starts after the first (novelty peaks of 0.12
    or more, 12 s apart at least). ``contrast``: the mean novelty of the
    three strongest turns (0 nothing changes, 0.2 and more clear sections; a
    third of the strongest when there is only one). ``recurrence``: mean over blocks of the best
    similarity to any block 20 s or more away (material that comes back);
    ``homogeneity``: the mean similarity of all such pairs (1: the same
    thing all along). ``loop_share``: the share of the track that repeats
    the moment one loop-length earlier within 1 dB in every octave band, at
    the best loop length ``loop_s``. ``harmonic_change``: mean chroma change
    from bar to bar (0 one chord throughout).
    """

    boundaries_s: tuple[float, ...]
    sections: int
    contrast: float
    recurrence: float
    homogeneity: float
    loop_share: float
    loop_s: float
    harmonic_change: float
    #: Level of the loudest 15 s stretch over the quietest, dB, the first and
    #: last 10 s (fades) left out: the arc of builds, drops and breakdowns.
    arc_db: float
    novelty: np.ndarray
    similarity: np.ndarray
    block_s: float


def _blocks(values: np.ndarray, fps: float, block_s: float) -> np.ndarray:
    """Mean of ``values`` (frames, d) over consecutive blocks of ``block_s``."""
    per = max(1, round(block_s * fps))
    count = values.shape[0] // per
    if count == 0:
        return values.mean(axis=0, keepdims=True)
    return values[: count * per].reshape(count, per, -1).mean(axis=1)


def block_features(
    band_frames: np.ndarray,
    band_fps: float,
    chroma: np.ndarray,
    chroma_fps: float,
    onset: np.ndarray,
) -> np.ndarray:
    """(blocks, 23) features: 10 band levels, 12 chroma, 1 onset rate."""
    level = _blocks(band_frames.astype(np.float64), band_fps, BLOCK_S)
    timbre = 10.0 * np.log10(level + 1e-10) / 6.0
    timbre = np.maximum(timbre, -90.0 / 6.0)
    ch = _blocks(chroma.astype(np.float64), chroma_fps, BLOCK_S) * 5.0
    on = _blocks(onset.astype(np.float64)[:, None], band_fps, BLOCK_S)
    on = np.log1p(on * 4.0)
    n = min(timbre.shape[0], ch.shape[0], on.shape[0])
    return np.hstack([timbre[:n], ch[:n], on[:n]])


def similarity_matrix(features: np.ndarray) -> np.ndarray:
    sq = np.sum(features * features, axis=1)
    d2 = np.maximum(sq[:, None] + sq[None, :] - 2.0 * features @ features.T, 0.0)
    return np.exp(-0.5 * d2 / SIMILARITY_SCALE**2)


def novelty_curve(sim: np.ndarray, half: int) -> np.ndarray:
    """Foote's checkerboard novelty with a Gaussian taper, in -1..1: mean
    similarity within each side minus across the two sides."""
    n = sim.shape[0]
    if n < 2 * half + 1 or half < 1:
        return np.zeros(n)
    idx = np.arange(-half, half)
    taper = np.exp(-0.5 * ((idx + 0.5) / (0.5 * half)) ** 2)
    sign = np.where(idx < 0, -1.0, 1.0)
    kernel = np.outer(sign * taper, sign * taper)
    weight = np.abs(kernel).sum() / 2.0
    padded = np.pad(sim, half, mode="edge")
    out = np.zeros(n)
    for i in range(n):
        win = padded[i : i + 2 * half, i : i + 2 * half]
        out[i] = float(np.sum(kernel * win)) / weight / 2.0
    return out


def _peaks(curve: np.ndarray, *, min_gap: int, height: float, edge: int) -> list[int]:
    order = np.argsort(curve)[::-1]
    chosen: list[int] = []
    for i in order:
        if curve[i] < height:
            break
        if i < edge or i > curve.size - edge:
            continue
        if all(abs(int(i) - j) >= min_gap for j in chosen):
            chosen.append(int(i))
    return sorted(chosen)


def _loop(band_frames: np.ndarray, fps: float, beat_s: float) -> tuple[float, float]:
    """(share, seconds): how much of the track repeats its own past exactly
    at the best loop length (whole bars when there is a beat)."""
    smooth = uniform_filter1d(band_frames.astype(np.float64), size=max(1, round(0.1 * fps)), axis=0)
    level = 10.0 * np.log10(smooth + 1e-10)
    # Sounding frames only (above -70 dB in some band): silence is no loop.
    loud = (level.max(axis=1) > -70.0) & (level.max(axis=1) > level.max() - 50.0)
    # Whole bars (1, 2, 4, 8) when there is a beat, else half-second steps.
    beats = (4, 8, 16, 32)
    lags_s = [beat_s * k for k in beats] if beat_s > 0 else list(np.arange(2.0, 16.5, 0.5))
    best = (0.0, 0.0)
    for lag_s in lags_s:
        base = lag_s * fps
        for lag in {int(np.floor(base)), int(np.ceil(base))}:
            if lag < 1 or lag >= level.shape[0] // 2:
                continue
            diff = np.abs(level[lag:] - level[:-lag]).max(axis=1)
            both = loud[lag:] & loud[:-lag]
            if not both.any():
                continue
            share = float(np.mean(diff[both] < LOOP_TOLERANCE_DB))
            if share > best[0]:
                best = (share, lag / fps)
    return best


def _arc(band_frames: np.ndarray, fps: float) -> float:
    power = band_frames.astype(np.float64).sum(axis=1)
    edge = round(10.0 * fps)
    inner = power[edge:-edge] if power.size > 2 * edge + round(15 * fps) else power
    if inner.size < 2:
        return 0.0
    level = 10.0 * np.log10(uniform_filter1d(inner, size=max(1, round(15.0 * fps))) + 1e-10)
    return float(np.percentile(level, 97) - np.percentile(level, 3))


def analyse_structure(
    band_frames: np.ndarray,
    band_fps: float,
    chroma: np.ndarray,
    chroma_fps: float,
    onset: np.ndarray,
    *,
    beat_s: float,
) -> Structure:
    """Sections, contrast, recurrence and loops of one track."""
    # Smoothed over 4 s: a bar's chord change or fill is not a new section;
    # what stays changed for several bars is.
    feats = uniform_filter1d(
        block_features(band_frames, band_fps, chroma, chroma_fps, onset),
        size=round(SMOOTH_S / BLOCK_S),
        axis=0,
        mode="nearest",
    )
    n = feats.shape[0]
    sim = similarity_matrix(feats)
    half = max(1, round(KERNEL_S / BLOCK_S))
    nov = novelty_curve(sim, half)
    peaks = _peaks(
        nov,
        min_gap=round(MIN_SECTION_S / BLOCK_S),
        height=NOVELTY_PEAK,
        edge=round(EDGE_S / BLOCK_S),
    )
    # Contrast: how strongly the three clearest turns stand out.
    turns = _peaks(
        nov, min_gap=round(MIN_SECTION_S / BLOCK_S), height=0.0, edge=round(EDGE_S / BLOCK_S)
    )
    top = sorted((float(nov[i]) for i in turns), reverse=True)[:3]
    contrast = float(sum(top) / 3.0) if top else 0.0
    gap = round(RECURRENCE_GAP_S / BLOCK_S)
    far = np.abs(np.arange(n)[:, None] - np.arange(n)[None, :]) >= gap
    if far.any():
        masked = np.where(far, sim, -np.inf)
        best = masked.max(axis=1)
        recurrence = float(np.mean(best[np.isfinite(best)]))
        homogeneity = float(sim[far].mean())
    else:
        recurrence = homogeneity = 0.0
    share, loop_s = _loop(band_frames, band_fps, beat_s)
    # Harmonic rhythm: chroma change from one bar (or 2 s) to the next.
    bar_s = 4.0 * beat_s if beat_s > 0 else 2.0
    bars = _blocks(chroma.astype(np.float64), chroma_fps, bar_s)
    active = bars.sum(axis=1) > 0.5
    changes = np.abs(np.diff(bars, axis=0)).sum(axis=1)[active[1:] & active[:-1]]
    harmonic_change = float(changes.mean()) if changes.size else 0.0
    return Structure(
        arc_db=_arc(band_frames, band_fps),
        boundaries_s=tuple(round(p * BLOCK_S, 1) for p in peaks),
        sections=len(peaks) + 1,
        contrast=contrast,
        recurrence=recurrence,
        homogeneity=homogeneity,
        loop_share=share,
        loop_s=loop_s,
        harmonic_change=harmonic_change,
        novelty=nov,
        similarity=sim.astype(np.float32),
        block_s=BLOCK_S,
    )
