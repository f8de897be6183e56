"""The rhythmic grid: where a bar and a 16th step fall in time, with swing
and humanised timing, and the step-pattern notation the genre table uses.

Pattern notation, one character per 16th note: ``X`` accent, ``x`` normal,
``o`` soft, ``.`` ghost, ``-`` rest, ``_`` holds the previous note. Bass
patterns use ``r`` root, ``o`` octave, ``5`` fifth, ``3`` third, ``7``
seventh, ``b`` a passing note a step below the next root, and ``-``/``_``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

VELOCITY = {"X": 1.0, "x": 0.8, "o": 0.6, ".": 0.32}


@dataclass(frozen=True)
class Step:
    """One note of a pattern: its 16th index, velocity, length and symbol."""

    index: int
    velocity: float
    length: int
    symbol: str


def parse_pattern(pattern: str) -> list[Step]:
    """Steps of a pattern string; ``_`` extends the previous note's length."""
    steps: list[Step] = []
    for i, ch in enumerate(pattern):
        if ch == "_" and steps:
            last = steps[-1]
            steps[-1] = Step(last.index, last.velocity, last.length + 1, last.symbol)
        elif ch not in "-_ ":
            steps.append(Step(i, VELOCITY.get(ch, 0.85), 1, ch))
    return steps


class Grid:
    """Time of every 16th step of the track at a fixed tempo."""

    def __init__(
        self,
        *,
        bpm: float,
        sr: int,
        swing: float,
        humanise_s: float,
        rng: np.random.Generator,
    ) -> None:
        self.bpm = bpm
        self.sr = sr
        self.swing = swing
        self.humanise_s = humanise_s
        self.rng = rng
        self.step_s = 60.0 / bpm / 4.0
        self.beat_s = 60.0 / bpm
        self.bar_s = 4.0 * self.beat_s

    def time(self, bar: int, step: float) -> float:
        """Seconds at ``step`` (16ths, may be fractional) of ``bar``, swung.

        Swing delays every odd 16th: at 0.58 the first 16th of a pair lasts
        58 % of the pair, the MPC convention.
        """
        t = (bar * 16 + step) * self.step_s
        if self.swing != 0.5 and float(step).is_integer() and int(step) % 2 == 1:
            t += (self.swing - 0.5) * 2.0 * self.step_s
        return t

    def jitter(self, scale: float = 1.0) -> float:
        """A humanising offset: normal, clipped to ±``humanise_s``."""
        if self.humanise_s <= 0.0 or scale <= 0.0:
            return 0.0
        limit = self.humanise_s * scale
        return min(max(float(self.rng.normal(0.0, limit / 2.0)), -limit), limit)

    def velocity(self, velocity: float, spread: float = 0.08) -> float:
        """A humanised velocity around ``velocity``."""
        return min(max(velocity * (1.0 + float(self.rng.normal(0.0, spread))), 0.05), 1.2)

    def sample(self, seconds: float) -> int:
        return round(seconds * self.sr)

    def samples(self, steps: float) -> int:
        """Length of ``steps`` 16ths in samples."""
        return max(1, round(steps * self.step_s * self.sr))
