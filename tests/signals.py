"""Deterministic synthetic music for DSP tests and benchmarks.

One generator, so the scorer, the mastering chain and their benchmark are
all measured on the same kind of signal.
"""

from __future__ import annotations

import numpy as np


def dance_mix(
    sample_rate: int, seconds: float, *, bpm: float = 128.0, seed: int = 0, hat_gain: float = 0.25
) -> np.ndarray:
    """A dance-like stereo mix, float64 ``(2, samples)``, not normalised: a
    pitch-dropping kick on every beat, a noise hat on every off-beat, an
    off-beat bass and a detuned pad chord (slightly different per side)."""
    rng = np.random.default_rng(seed)
    n = int(sample_rate * seconds)
    t = np.arange(n) / sample_rate
    beat = 60.0 / bpm
    out = np.zeros((2, n))
    kt = np.arange(int(0.35 * sample_rate)) / sample_rate
    kick = np.sin(2 * np.pi * (45 * kt + (110 / 25) * (1 - np.exp(-25 * kt)))) * np.exp(-9 * kt)
    hat = np.diff(rng.standard_normal(int(0.05 * sample_rate)), prepend=0.0)
    hat *= np.exp(-np.arange(hat.size) / (0.01 * sample_rate))
    for start in np.arange(0.0, seconds, beat):
        for at, sound, gain in ((start, kick, 0.9), (start + beat / 2, hat, hat_gain)):
            i = round(at * sample_rate)
            piece = sound[: max(0, min(sound.size, n - i))]
            out[:, i : i + piece.size] += gain * piece
    bass = sum(np.sin(2 * np.pi * 55.0 * k * t) / k for k in range(1, 6)) * 0.25
    out += bass * ((t / beat) % 1 > 0.5)
    for hz in (220.0, 261.6, 329.6):
        out[0] += 0.06 * np.sin(2 * np.pi * hz * 1.002 * t)
        out[1] += 0.06 * np.sin(2 * np.pi * hz * 0.998 * t + 0.3)
    return out
