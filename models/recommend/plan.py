"""The generation plan: what the station makes next, steered by demand.

Plan arms are the values of four dimensions: genre, tempo band (the low,
middle or high third of the genre's tempo range), key and prompt mood. Each
arm keeps a Beta posterior of "a listener was happy with a track like this"
from demand - completed plays and skips, votes, requests - decayed with a
half-life so that tastes can move. Thompson sampling gives each genre the
probability that it is the best one; an exploration share is spread evenly
on top, so every genre keeps at least ``exploration / len(genres)`` of the
plan and the station keeps learning about what it plays less.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np

from models.recommend.features import GENRES

TEMPO_BANDS = ("low", "mid", "high")
MOODS = ("warm", "dark", "euphoric", "mellow", "energetic", "dreamy")
#: Tempo range and keys per genre, as the generator's prompt template has them.
GENRE_TEMPO: dict[str, tuple[float, float]] = {
    "house": (120, 128),
    "techno": (125, 135),
    "trance": (136, 140),
    "drum_and_bass": (170, 176),
    "lofi_hip_hop": (70, 90),
    "ambient": (60, 90),
}
GENRE_KEYS: dict[str, tuple[str, ...]] = {
    "house": ("A minor", "F minor", "G minor", "D minor"),
    "techno": ("A minor", "F# minor", "E minor"),
    "trance": ("A minor", "C# minor", "F minor"),
    "drum_and_bass": ("F minor", "D minor", "G minor"),
    "lofi_hip_hop": ("D minor", "F major", "Bb major", "E minor"),
    "ambient": ("C major", "D dorian", "E minor"),
}


@dataclass(frozen=True)
class Feedback:
    """One piece of demand for a track with these attributes: ``reward`` in
    [0, 1] (1: completed, up-voted, requested; 0: skipped, down-voted),
    counted ``weight`` times, at ``ts``."""

    genre: str
    reward: float
    weight: float = 1.0
    bpm: float | None = None
    musical_key: str | None = None
    mood: str | None = None
    ts: datetime | None = None


def tempo_band(genre: str, bpm: float | None) -> str | None:
    """Which third of the genre's tempo range ``bpm`` falls in."""
    if bpm is None or bpm <= 0 or genre not in GENRE_TEMPO:
        return None
    lo, hi = GENRE_TEMPO[genre]
    x = (bpm - lo) / max(hi - lo, 1e-9)
    return TEMPO_BANDS[min(2, max(0, int(x * 3)))]


def mood_of(prompt: str | None) -> str | None:
    """The first plan mood named in a prompt."""
    text = (prompt or "").lower()
    return next((m for m in MOODS if m in text), None)


@dataclass
class Posterior:
    alpha: float = 1.0
    beta: float = 1.0

    @property
    def n(self) -> float:
        return self.alpha + self.beta - 2.0

    @property
    def mean(self) -> float:
        return self.alpha / (self.alpha + self.beta)


@dataclass
class Demand:
    """Beta posteriors per (dimension, value)."""

    arms: dict[tuple[str, str], Posterior] = field(default_factory=dict)

    def arm(self, dimension: str, value: str) -> Posterior:
        return self.arms.setdefault((dimension, value), Posterior())

    @classmethod
    def from_feedback(
        cls,
        feedback: Iterable[Feedback],
        *,
        now: datetime | None = None,
        half_life_days: float = 14.0,
    ) -> Demand:
        demand = cls()
        now = now or datetime.now(UTC)
        for f in feedback:
            if f.genre not in GENRE_TEMPO:
                continue
            decay = 1.0
            if f.ts is not None and half_life_days > 0:
                age = max(0.0, (now - f.ts).total_seconds() / 86_400)
                decay = 0.5 ** (age / half_life_days)
            w = f.weight * decay
            r = min(1.0, max(0.0, f.reward))
            values = [
                ("genre", f.genre),
                (
                    "tempo",
                    f"{f.genre}:{tempo_band(f.genre, f.bpm)}"
                    if tempo_band(f.genre, f.bpm)
                    else None,
                ),
                ("key", f.musical_key),
                ("mood", f.mood),
            ]
            for dim, value in values:
                if value:
                    post = demand.arm(dim, value)
                    post.alpha += w * r
                    post.beta += w * (1.0 - r)
        return demand


@dataclass(frozen=True)
class PlanConfig:
    exploration: float = 0.2  # share of the plan spread evenly over genres
    draws: int = 4000  # Thompson draws per allocation
    genres: tuple[str, ...] = GENRES
    seed: int = 0

    def __post_init__(self) -> None:
        if not 0.0 <= self.exploration <= 1.0:
            raise ValueError(f"value {self.exploration} for 'exploration' is out of range [0, 1]")


def thompson_shares(
    posteriors: Sequence[Posterior], *, draws: int, rng: np.random.Generator
) -> np.ndarray:
    """P(arm is best) under independent Beta posteriors, by Monte Carlo."""
    a = np.array([p.alpha for p in posteriors])
    b = np.array([p.beta for p in posteriors])
    samples = rng.beta(a, b, size=(draws, len(posteriors)))
    wins = np.bincount(samples.argmax(axis=1), minlength=len(posteriors))
    return wins / draws


def allocate(shares: Mapping[str, float], count: int) -> list[str]:
    """``count`` slots apportioned by largest remainder, interleaved."""
    raw = {k: v * count for k, v in shares.items()}
    slots = {k: math.floor(v) for k, v in raw.items()}
    for k in sorted(raw, key=lambda k: raw[k] - slots[k], reverse=True)[
        : count - sum(slots.values())
    ]:
        slots[k] += 1
    out: list[str] = []
    while len(out) < count:
        for k in sorted(slots, key=lambda k: -shares[k]):
            if slots[k] > 0:
                out.append(k)
                slots[k] -= 1
    return out[:count]


def _pick(
    demand: Demand, dimension: str, values: Sequence[str], rng: np.random.Generator, eps: float
) -> str:
    if rng.random() < eps:
        return values[int(rng.integers(len(values)))]
    draws = [
        rng.beta(demand.arm(dimension, v).alpha, demand.arm(dimension, v).beta) for v in values
    ]
    return values[int(np.argmax(draws))]


def make_plan(demand: Demand, count: int, config: PlanConfig | None = None) -> dict[str, Any]:
    """The next ``count`` tracks: genre shares by Thompson sampling with the
    exploration floor, and per track a tempo, key and mood drawn the same
    way. Each arm comes with the reason for its share."""
    config = config or PlanConfig()
    if count < 1:
        raise ValueError(f"value {count} for 'count' must be at least 1")
    rng = np.random.default_rng(config.seed)
    genres = list(config.genres)
    posts = [demand.arm("genre", g) for g in genres]
    ts = thompson_shares(posts, draws=config.draws, rng=rng)
    floor = config.exploration / len(genres)
    shares = {g: float((1 - config.exploration) * ts[n] + floor) for n, g in enumerate(genres)}
    specs = []
    for genre in allocate(shares, count):
        band = _pick(
            demand, "tempo", [f"{genre}:{b}" for b in TEMPO_BANDS], rng, config.exploration
        )
        lo, hi = GENRE_TEMPO[genre]
        third = (hi - lo) / 3
        b = TEMPO_BANDS.index(band.split(":")[1])
        bpm = float(round(lo + third * b + rng.random() * third))
        specs.append(
            {
                "genre": genre,
                "bpm": bpm,
                "musical_key": _pick(demand, "key", GENRE_KEYS[genre], rng, config.exploration),
                "mood": _pick(demand, "mood", MOODS, rng, config.exploration),
            }
        )
    arms = []
    for n, g in enumerate(genres):
        p = posts[n]
        arms.append(
            {
                "dimension": "genre",
                "value": g,
                "share": shares[g],
                "p_best": float(ts[n]),
                "alpha": p.alpha,
                "beta": p.beta,
                "mean": p.mean,
                "n": p.n,
                "reason": _reason(g, p, float(ts[n]), shares[g], floor),
            }
        )
    for (dim, value), p in sorted(demand.arms.items()):
        if dim != "genre":
            arms.append(
                {
                    "dimension": dim,
                    "value": value,
                    "share": float(sum(1 for s in specs if _matches(s, dim, value)) / count),
                    "alpha": p.alpha,
                    "beta": p.beta,
                    "mean": p.mean,
                    "n": p.n,
                    "reason": f"{p.mean:.0%} liked over {p.n:.0f} weighted listens",
                }
            )
    return {
        "created_at": datetime.now(UTC).isoformat(),
        "params": {"exploration": config.exploration, "draws": config.draws, "count": count},
        "genre_shares": shares,
        "arms": arms,
        "specs": specs,
    }


def _matches(spec: Mapping[str, Any], dim: str, value: str) -> bool:
    if dim == "tempo":
        return f"{spec['genre']}:{tempo_band(spec['genre'], spec['bpm'])}" == value
    if dim == "key":
        return bool(spec["musical_key"] == value)
    return bool(spec.get(dim) == value)


def _reason(genre: str, p: Posterior, p_best: float, share: float, floor: float) -> str:
    if p.n < 1:
        return f"no demand measured yet: explored at {share:.0%}"
    liked = f"{p.mean:.0%} liked over {p.n:.0f} weighted listens"
    if share <= floor + 1e-9 or p_best < 0.01:
        return f"{liked}; kept at the exploration floor ({floor:.0%})"
    return f"{liked}; best genre in {p_best:.0%} of Thompson draws"


def uniform_plan(
    count: int, genres: Sequence[str] = GENRES, *, seed: int = 0
) -> list[dict[str, Any]]:
    """A plan that ignores demand (the comparison in tests and the benchmark)."""
    r = random.Random(seed)
    out = []
    for n in range(count):
        g = genres[n % len(genres)]
        lo, hi = GENRE_TEMPO[g]
        out.append(
            {
                "genre": g,
                "bpm": float(round(r.uniform(lo, hi))),
                "musical_key": r.choice(GENRE_KEYS[g]),
                "mood": r.choice(MOODS),
            }
        )
    return out
