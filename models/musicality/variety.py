"""How far apart two tracks sound: a fingerprint of pitch and timbre
statistics, and the distance between fingerprints.

The fingerprint is the mean chroma (12 values summing to 1, times 10: a
new key or chord vocabulary moves it by several units), the tonal-balance
curve in units of 3 dB (a new sound palette), and the onset rate and swing
(the groove). Two tracks of one genre are "told apart" when their distance
is larger than the distance between the two halves of either track: they
differ more than a track differs from itself.
"""

from __future__ import annotations

import numpy as np

from models.musicality.analysis import MusicalAnalysis


def fingerprint(a: MusicalAnalysis) -> np.ndarray:
    chroma = np.asarray(a.key.mean_chroma, dtype=np.float64)
    chroma = chroma / chroma.sum() if chroma.sum() > 0 else chroma
    balance = np.asarray(a.mix.balance_db, dtype=np.float64) / 3.0
    groove = np.array([np.log1p(a.mix.onsets_per_s), 10.0 * (a.pattern.swing - 0.5)])
    return np.concatenate([10.0 * chroma, balance, groove])


def distance(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a - b))
