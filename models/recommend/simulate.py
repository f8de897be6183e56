"""A listener simulator with known tastes, for tests, the benchmark and demos.

Every listener has latent tastes over genre (a peaked preference), tempo (a
preferred bpm and a tolerance), key (major or minor), energy, and novelty
(how much they are drawn to new tracks), plus an activity level. Tracks
have a genre, bpm, key, energy, a latent quality and a release time; the
catalog grows every day, as an AI radio's does. Each simulated event is a
listener hearing a track: how much of it they play (and whether they skip)
follows their utility for it with noise; some vote (stars or thumbs) with a
propensity that grows with how strongly they feel; a few share.

Everything it writes is labelled: ids start with ``sim_``, every row has
``simulated = true`` and the scenario's name, and its tables are named
``simulated_*``. Nothing here touches real listeners' data.

Run ``python -m models.recommend.simulate --help`` to write a scenario into
the lakehouse for a demo.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np

from models.recommend.data import US_PER_DAY, Dataset
from models.recommend.features import GENRES, PITCH_CLASSES, feature_matrix

SIM_PREFIX = "sim_"
#: Each genre's tempo range (bpm), as the generator keeps it; ambient is beatless.
GENRE_BPM: dict[str, tuple[float, float]] = {
    "house": (120, 128),
    "techno": (125, 135),
    "trance": (136, 140),
    "drum_and_bass": (170, 176),
    "lofi_hip_hop": (70, 90),
    "ambient": (0, 0),
}
GENRE_ENERGY = {
    "house": 0.65,
    "techno": 0.8,
    "trance": 0.75,
    "drum_and_bass": 0.85,
    "lofi_hip_hop": 0.35,
    "ambient": 0.15,
}
#: The tempo a beatless track is felt at, for tempo tastes.
BEATLESS_FEEL_BPM = 70.0
EVENT_KINDS = ("play", "vote", "share")


@dataclass(frozen=True)
class SimConfig:
    """One scenario: its size, its time span and its seed."""

    listeners: int = 2_000
    tracks: int = 1_000
    plays: int = 100_000
    days: int = 28
    #: Share of the catalog already released when the span starts.
    initial_catalog: float = 0.35
    #: Share of plays a listener chooses by taste (the rest: the radio, any genre).
    taste_share: float = 0.65
    vote_rate: float = 0.12
    share_rate: float = 0.01
    seed: int = 0
    start: datetime = datetime(2026, 11, 1, tzinfo=UTC)
    scenario: str = "default"

    def __post_init__(self) -> None:
        for name in ("listeners", "tracks", "plays", "days"):
            if getattr(self, name) < 1:
                raise ValueError(f"value {getattr(self, name)} for {name!r} must be at least 1")


@dataclass
class World:
    """The latent truth of a scenario (tracks and listener tastes)."""

    config: SimConfig
    # tracks
    track_ids: np.ndarray
    genre: np.ndarray  # int index into GENRES
    bpm: np.ndarray
    key_root: np.ndarray
    minor: np.ndarray  # bool
    energy: np.ndarray
    quality: np.ndarray
    released_us: np.ndarray  # int64
    # listeners
    user_ids: np.ndarray
    genre_pref: np.ndarray  # (n_users, n_genres), rows sum to 1
    tempo_mu: np.ndarray
    tempo_sigma: np.ndarray
    minor_pref: np.ndarray  # -1 (major) .. 1 (minor)
    energy_pref: np.ndarray
    novelty: np.ndarray  # 0..1
    activity: np.ndarray

    def utility(self, users: np.ndarray, tracks: np.ndarray) -> np.ndarray:
        """How much each listener likes each track (pairwise arrays), noise-free."""
        g = self.genre[tracks]
        pref = self.genre_pref[users, g]
        bpm = np.where(self.bpm[tracks] > 0, self.bpm[tracks], BEATLESS_FEEL_BPM)
        tempo = np.exp(-0.5 * ((bpm - self.tempo_mu[users]) / self.tempo_sigma[users]) ** 2)
        key = np.where(self.minor[tracks], 1.0, -1.0) * self.minor_pref[users]
        energy = (self.energy[tracks] - self.energy_pref[users]) ** 2
        return (
            1.6 * np.log(pref * len(GENRES))
            + 1.4 * (tempo - 0.5)
            + 0.35 * key
            - 2.5 * energy
            + 1.2 * (self.quality[tracks] - 0.5)
        ).astype(np.float32)

    def track_rows(self) -> list[dict[str, Any]]:
        """``simulated_tracks`` rows (and the input of ``feature_vector``)."""
        rows = []
        for t in range(len(self.track_ids)):
            genre = GENRES[int(self.genre[t])]
            rows.append(
                {
                    "track_id": str(self.track_ids[t]),
                    "genre": genre,
                    "bpm": float(self.bpm[t]),
                    "musical_key": (
                        f"{PITCH_CLASSES[int(self.key_root[t])]} "
                        f"{'minor' if self.minor[t] else 'major'}"
                    ),
                    "energy": float(self.energy[t]),
                    "quality_score": float(100 * self.quality[t]),
                    "released_at": _dt(int(self.released_us[t])),
                    "simulated": True,
                    "scenario": self.config.scenario,
                }
            )
        return rows


def _dt(us: int) -> datetime:
    return datetime.fromtimestamp(us / 1e6, tz=UTC)


def _us(dt: datetime) -> int:
    return int(dt.timestamp() * 1_000_000)


def make_world(config: SimConfig) -> World:
    """Tracks and listeners with tastes drawn from ``config.seed``."""
    rng = np.random.default_rng(config.seed)
    n_t, n_u, n_g = config.tracks, config.listeners, len(GENRES)
    genre = rng.integers(0, n_g, n_t)
    lo = np.array([GENRE_BPM[g][0] for g in GENRES])[genre]
    hi = np.array([GENRE_BPM[g][1] for g in GENRES])[genre]
    bpm = np.round(lo + (hi - lo) * rng.random(n_t))
    energy = np.clip(
        np.array([GENRE_ENERGY[g] for g in GENRES])[genre] + rng.normal(0, 0.12, n_t), 0.02, 0.98
    )
    start = _us(config.start)
    span = config.days * US_PER_DAY
    released = np.where(
        rng.random(n_t) < config.initial_catalog,
        start - rng.integers(0, 30 * US_PER_DAY, n_t),
        start + (rng.random(n_t) * span).astype(np.int64),
    ).astype(np.int64)
    # Every genre has something on air from the first day.
    for g in range(n_g):
        first = np.flatnonzero(genre == g)
        if len(first):
            released[first[0]] = min(released[first[0]], start)
    # Listeners: a peaked genre taste, a tempo they like, major or minor,
    # an energy level, and how much they chase new releases.
    genre_pref = rng.dirichlet(np.full(n_g, 0.35), n_u) * 0.9 + 0.1 / n_g
    fav = genre_pref.argmax(axis=1)
    fav_bpm = np.array(
        [np.mean(GENRE_BPM[g]) if GENRE_BPM[g][1] else BEATLESS_FEEL_BPM for g in GENRES]
    )[fav]
    return World(
        config=config,
        track_ids=np.array([f"{SIM_PREFIX}trk_{t:07d}" for t in range(n_t)], dtype=object),
        genre=genre.astype(np.int32),
        bpm=bpm.astype(np.float32),
        key_root=rng.integers(0, 12, n_t).astype(np.int32),
        minor=rng.random(n_t) < 0.6,
        energy=energy.astype(np.float32),
        quality=rng.beta(4, 3, n_t).astype(np.float32),
        released_us=released,
        user_ids=np.array([f"{SIM_PREFIX}usr_{u:07d}" for u in range(n_u)], dtype=object),
        genre_pref=genre_pref.astype(np.float32),
        tempo_mu=(fav_bpm + rng.normal(0, 8, n_u)).astype(np.float32),
        tempo_sigma=rng.uniform(6, 25, n_u).astype(np.float32),
        minor_pref=rng.uniform(-1, 1, n_u).astype(np.float32),
        energy_pref=np.clip(
            np.array([GENRE_ENERGY[g] for g in GENRES])[fav] + rng.normal(0, 0.15, n_u), 0, 1
        ).astype(np.float32),
        novelty=rng.beta(2, 3, n_u).astype(np.float32),
        activity=rng.lognormal(0, 1.0, n_u).astype(np.float32),
    )


@dataclass
class Events:
    """Simulated events as columns (one row per play, vote or share)."""

    user: np.ndarray  # int32
    track: np.ndarray  # int32
    kind: np.ndarray  # int8 index into EVENT_KINDS
    completion: np.ndarray  # float32, plays (NaN otherwise)
    skipped: np.ndarray  # bool, plays
    stars: np.ndarray  # int8, 0 = none
    direction: np.ndarray  # int8, -1 / 0 / 1
    ts: np.ndarray  # int64 us

    def __len__(self) -> int:
        return len(self.user)


def _pick_tracks(
    world: World, genre: np.ndarray, ts: np.ndarray, novelty: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """A released track of each event's genre, newer ones likelier for
    listeners who chase novelty."""
    out = np.empty(len(genre), dtype=np.int32)
    for g in range(len(GENRES)):
        sel = np.flatnonzero(genre == g)
        if not len(sel):
            continue
        pool = np.flatnonzero(world.genre == g)
        pool = pool[np.argsort(world.released_us[pool], kind="stable")]
        released = world.released_us[pool]
        avail = np.maximum(np.searchsorted(released, ts[sel], side="right"), 1)
        r = rng.random(len(sel)) ** (1.0 + 3.0 * novelty[sel])  # skewed to 0 = newest
        pos = avail - 1 - np.minimum((r * avail).astype(np.int64), avail - 1)
        out[sel] = pool[pos]
    return out


def simulate(config: SimConfig, world: World | None = None) -> tuple[World, Events]:
    """A scenario's world and ``config.plays`` plays with their votes and shares."""
    world = world or make_world(config)
    rng = np.random.default_rng(config.seed + 1)
    n = config.plays
    p_user = world.activity / world.activity.sum()
    user = rng.choice(len(world.user_ids), n, p=p_user).astype(np.int32)
    ts = _us(config.start) + (rng.random(n) * config.days * US_PER_DAY).astype(np.int64)
    taste = rng.random(n) < config.taste_share
    # By taste: a genre from the listener's (sharpened) preference.
    pref = world.genre_pref[user] ** 1.5
    cum = np.cumsum(pref / pref.sum(axis=1, keepdims=True), axis=1)
    by_taste = (rng.random(n)[:, None] > cum).sum(axis=1)
    genre = np.where(taste, by_taste, rng.integers(0, len(GENRES), n)).astype(np.int32)
    track = _pick_tracks(world, genre, ts, world.novelty[user], rng)
    # A track can't be heard before it is released.
    ts = np.maximum(ts, world.released_us[track] + 60_000_000)
    util = world.utility(user, track) + rng.normal(0, 0.6, n).astype(np.float32)
    completion = (1.0 / (1.0 + np.exp(-2.0 * util))).astype(np.float32)
    skipped = completion < 0.35
    # Votes: more likely the stronger the feeling; stars or thumbs.
    votes = rng.random(n) < config.vote_rate * (0.3 + np.tanh(np.abs(util)))
    stars_way = rng.random(n) < 0.5
    stars = np.clip(np.round(3 + 1.3 * util + rng.normal(0, 0.4, n)), 1, 5).astype(np.int8)
    direction = np.where(util > 0, 1, -1).astype(np.int8)
    shares = rng.random(n) < config.share_rate * (1 + np.tanh(util)) * (util > 0.5)
    v, s = np.flatnonzero(votes), np.flatnonzero(shares)
    nan = np.full(len(v) + len(s), np.nan, dtype=np.float32)
    later = lambda idx: ts[idx] + 30_000_000  # noqa: E731  # after the play
    events = Events(
        user=np.concatenate([user, user[v], user[s]]),
        track=np.concatenate([track, track[v], track[s]]),
        kind=np.concatenate(
            [np.zeros(n, np.int8), np.ones(len(v), np.int8), np.full(len(s), 2, np.int8)]
        ),
        completion=np.concatenate([completion, nan]),
        skipped=np.concatenate([skipped, np.zeros(len(v) + len(s), bool)]),
        stars=np.concatenate(
            [np.zeros(n, np.int8), np.where(stars_way[v], stars[v], 0), np.zeros(len(s), np.int8)]
        ).astype(np.int8),
        direction=np.concatenate(
            [
                np.zeros(n, np.int8),
                np.where(stars_way[v], 0, direction[v]),
                np.zeros(len(s), np.int8),
            ]
        ).astype(np.int8),
        ts=np.concatenate([ts, later(v), later(s)]),
    )
    return world, events


@dataclass(frozen=True)
class Weights:
    """How much each kind of feedback counts (settings ``recommend_weight_*``)."""

    play: float = 1.0  # times the share of the track played
    skip: float = -1.0
    star: float = 0.75  # per star above (or below) 3
    upvote: float = 1.5
    downvote: float = -1.5
    share: float = 2.0
    request: float = 3.0


def event_weights(events: Events, weights: Weights) -> np.ndarray:
    """The signed weight of each event."""
    w = np.zeros(len(events), dtype=np.float32)
    play = events.kind == 0
    w[play] = np.where(events.skipped[play], weights.skip, weights.play * events.completion[play])
    vote = events.kind == 1
    stars = events.stars[vote].astype(np.float32)
    w[vote] = np.where(
        stars > 0,
        (stars - 3.0) * weights.star,
        np.where(events.direction[vote] > 0, weights.upvote, weights.downvote),
    )
    w[events.kind == 2] = weights.share
    return w


def to_dataset(world: World, events: Events, weights: Weights | None = None) -> Dataset:
    """The scenario as the recommender's ``Dataset`` (one row per event)."""
    rows = world.track_rows()
    return Dataset(
        user_ids=world.user_ids,
        item_ids=world.track_ids,
        u=events.user,
        i=events.track,
        w=event_weights(events, weights or Weights()),
        ts=events.ts,
        item_features=feature_matrix(rows),
        item_meta=[{k: r[k] for k in ("track_id", "genre", "bpm", "musical_key")} for r in rows],
        item_created_us=world.released_us,
    )


def event_rows(
    world: World, events: Events, *, chunk: int = 100_000
) -> Iterator[list[dict[str, Any]]]:
    """``simulated_events`` rows in chunks, each labelled simulated."""
    scenario = world.config.scenario
    for lo in range(0, len(events), chunk):
        out = []
        for j in range(lo, min(lo + chunk, len(events))):
            kind = EVENT_KINDS[int(events.kind[j])]
            comp = float(events.completion[j])
            out.append(
                {
                    "event_id": f"{SIM_PREFIX}{scenario}_{world.config.seed}_{j:09d}",
                    "user_id": str(world.user_ids[events.user[j]]),
                    "track_id": str(world.track_ids[events.track[j]]),
                    "type": kind,
                    "completion": None if comp != comp else comp,
                    "skipped": bool(events.skipped[j]) if kind == "play" else None,
                    "stars": int(events.stars[j]) or None,
                    "direction": int(events.direction[j]) or None,
                    "ts": _dt(int(events.ts[j])),
                    "simulated": True,
                    "scenario": scenario,
                }
            )
        yield out


def write_scenario(lakehouse: Any, config: SimConfig) -> dict[str, int]:
    """Write a scenario to the ``simulated_tracks`` and ``simulated_events``
    tables of ``lakehouse`` (idempotent: ids are stable per scenario and seed)."""
    world, events = simulate(config)
    tracks = lakehouse.insert_new("simulated_tracks", world.track_rows())
    written = sum(
        lakehouse.insert_new("simulated_events", rows) for rows in event_rows(world, events)
    )
    return {"tracks": tracks, "events": written}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m models.recommend.simulate",
        description="Write simulated listeners' events (labelled simulated) into the lakehouse.",
    )
    defaults = SimConfig()
    parser.add_argument("--listeners", type=int, default=defaults.listeners)
    parser.add_argument("--tracks", type=int, default=defaults.tracks)
    parser.add_argument("--plays", type=int, default=defaults.plays)
    parser.add_argument("--days", type=int, default=defaults.days)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--scenario", default=defaults.scenario)
    args = parser.parse_args(argv)
    from sonicforge.lakehouse import Lakehouse
    from sonicforge.settings import get_settings

    config = SimConfig(
        listeners=args.listeners,
        tracks=args.tracks,
        plays=args.plays,
        days=args.days,
        seed=args.seed,
        scenario=args.scenario,
    )
    lh = Lakehouse.from_settings(get_settings())
    counts = write_scenario(lh, config)
    print(f"simulated scenario {config.scenario!r}: {counts} ({asdict(config)})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
