"""Tempo measured from the audio alone, with its confidence and stability.

The estimate never sees the intended tempo. Tempo is ambiguous by octaves
(a beat at 174 BPM also repeats at 87; a listener may tap either), so the
estimate is taken as the onset spectrum's strongest candidate under a mild
perceptual prior centred on 120 BPM (one octave wide, as tempo trackers
use), and a comparison with an intended tempo is made *octave-equivalent*:
``tempo_error`` is the smallest relative distance between the intended bpm
and the estimate times 1/2, 1 or 2, and says which factor it used. A wrong
tempo is still caught: 120 BPM measured for 170 intended is 29 % off under
every octave.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from models.features import (
    _EDGE_S,
    MIN_BEAT_SALIENCE,
    MIN_ONSET_STRENGTH,
    SpectralFeatures,
    tempo_spectrum,
)

PRIOR_CENTRE_BPM = 120.0
PRIOR_OCTAVES = 1.0
#: Salience at which the confidence reaches 1 (steady drums read 7 to 30).
FULL_CONFIDENCE_SALIENCE = 8.0
OCTAVE_FACTORS = (0.5, 1.0, 2.0)
_WINDOW_S = 30.0
_WINDOW_HOP_S = 15.0
_AGREE = 0.02  # windows within 2 % (octave-equivalent) agree with the track


@dataclass(frozen=True)
class TempoEstimate:
    """A blind tempo estimate: ``bpm`` 0.0 when no beat is found.

    ``confidence`` 0..1 from the salience (best candidate over the mean
    candidate); ``stability`` the share of 30 s windows with a beat whose own
    estimate agrees (octave-equivalent, within 2 %) with ``bpm``; ``drift``
    the spread (std / mean) of those windows' tempi at ``bpm``'s octave.
    """

    bpm: float
    salience: float
    confidence: float
    stability: float
    drift: float
    windows: int


def _best(onset: np.ndarray, frames_per_s: float) -> tuple[float, float]:
    """(bpm, salience) of one stretch of onset envelope; bpm 0.0 for no beat."""
    if onset.size == 0 or float(onset.mean()) < MIN_ONSET_STRENGTH:
        return 0.0, 0.0
    bpms, scores = tempo_spectrum(onset, frames_per_s)
    if not np.any(scores > 0.0):
        return 0.0, 0.0
    salience = float(scores.max() / (scores.mean() + 1e-12))
    if salience < MIN_BEAT_SALIENCE:
        return 0.0, salience
    prior = np.exp(-0.5 * (np.log2(bpms / PRIOR_CENTRE_BPM) / PRIOR_OCTAVES) ** 2)
    weighted = scores * prior
    # Only octaves of a real peak compete: the prior picks among 1/2, 1, 2
    # of the strongest candidate, it never invents a tempo of its own.
    top = float(bpms[int(np.argmax(scores))])
    best, best_w = top, -1.0
    for f in OCTAVE_FACTORS:
        cand = top * f
        if not bpms[0] <= cand <= bpms[-1]:
            continue
        near = np.abs(bpms - cand) <= max(0.01 * cand, 0.1)
        i = int(np.flatnonzero(near)[np.argmax(weighted[near])])
        if weighted[i] > best_w and scores[i] >= 0.35 * scores.max():
            best, best_w = float(bpms[i]), float(weighted[i])
    return best, salience


def octave_equivalent_error(measured: float, intended: float) -> tuple[float, float]:
    """(relative error, factor): the smallest ``|measured * f - intended| /
    intended`` over f in 1/2, 1, 2, and the f that gave it. A measurement of
    0.0 (no beat) is a 100 % error."""
    if measured <= 0.0 or intended <= 0.0:
        return 1.0, 1.0
    errors = [(abs(measured * f - intended) / intended, f) for f in OCTAVE_FACTORS]
    return min(errors)


def at_octave(bpm: float, lo: float, hi: float) -> float:
    """``bpm`` times 1/2, 1 or 2, whichever lies nearest the range [lo, hi]
    (on a log scale): the octave a genre's patterns are read at."""
    if bpm <= 0.0:
        return 0.0

    def dist(b: float) -> float:
        if lo <= b <= hi:
            return 0.0
        return min(abs(math.log(b / lo)), abs(math.log(b / hi)))

    return min((bpm * f for f in OCTAVE_FACTORS), key=dist)


def estimate_tempo(features: SpectralFeatures) -> TempoEstimate:
    """The track's tempo from its onset envelope, blind to any intended bpm."""
    fps = features.frames_per_s
    edge = int(_EDGE_S * fps)  # the file's own start and end are not beats
    onset = features.onset_envelope[edge : max(edge, features.onset_envelope.size - edge)]
    bpm, salience = _best(onset, fps)
    confidence = float(
        np.clip(
            (salience - MIN_BEAT_SALIENCE) / (FULL_CONFIDENCE_SALIENCE - MIN_BEAT_SALIENCE), 0, 1
        )
    )
    if bpm == 0.0:
        confidence = 0.0
    win, hop = int(_WINDOW_S * fps), int(_WINDOW_HOP_S * fps)
    local: list[float] = []
    if bpm > 0.0 and onset.size >= 2 * win:
        for start in range(0, onset.size - win + 1, hop):
            b, _ = _best(onset[start : start + win], fps)
            if b > 0.0:
                local.append(b)
    if local:
        errors = [octave_equivalent_error(b, bpm) for b in local]
        stability = float(np.mean([e < _AGREE for e, _ in errors]))
        folded = np.array([b * f for b, (_, f) in zip(local, errors, strict=True)])
        drift = float(folded.std() / folded.mean())
    else:
        stability, drift = (1.0 if bpm > 0.0 else 0.0), 0.0
    return TempoEstimate(
        bpm=round(bpm, 2),
        salience=salience,
        confidence=confidence,
        stability=stability,
        drift=drift,
        windows=len(local),
    )
