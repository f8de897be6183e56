"""Where feedback comes from, read tolerantly, and the tables built from it.

Listener feedback arrives as the ``events`` table (plays, shares and
requests from the app outbox), the ``votes`` table (or the app database's
current votes before that table exists), and - for demos only - the
simulator's ``simulated_events``. Readers look for the contract's columns
and skip what is not there yet, so the recommender runs on whatever part
of the lakehouse exists.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from models.recommend.data import Dataset, encode
from models.recommend.features import FEATURE_VERSION, canonical_genre, feature_vector, parse_key
from models.recommend.simulate import Weights

PLAY_EVENTS = frozenset({"play", "track_played", "play_completed", "play_ended", "listen"})
SKIP_EVENTS = frozenset({"skip", "track_skipped", "play_skipped"})
SHARE_EVENTS = frozenset({"share", "share_created", "track_shared"})
REQUEST_EVENTS = frozenset({"request", "track_requested", "request_created", "request_aired"})


@dataclass(frozen=True)
class Feedback:
    """One listener's signal on one track."""

    user_id: str
    track_id: str
    kind: str  # play, skip, vote, share, request
    weight: float
    ts: datetime
    simulated: bool = False


def weights_from_settings(settings: Any) -> Weights:
    return Weights(
        play=settings.recommend_weight_play,
        skip=settings.recommend_weight_skip,
        star=settings.recommend_weight_star,
        upvote=settings.recommend_weight_upvote,
        downvote=settings.recommend_weight_downvote,
        share=settings.recommend_weight_share,
        request=settings.recommend_weight_request,
    )


def read_table(lakehouse: Any, name: str, columns: Iterable[str]) -> pa.Table | None:
    """The columns of ``name`` that exist (None when the table does not)."""
    from deltalake import DeltaTable
    from deltalake.exceptions import TableNotFoundError

    try:
        dt = DeltaTable(
            f"{lakehouse.root_uri}/{name}", storage_options=lakehouse.storage_options or None
        )
    except (TableNotFoundError, OSError):
        return None
    present = [c for c in columns if c in {f.name for f in dt.schema().fields}]
    return dt.to_pyarrow_dataset().to_table(columns=present)


def _props(text: Any) -> dict[str, Any]:
    if isinstance(text, dict):
        return text
    try:
        value = json.loads(text) if text else {}
    except (TypeError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def _completion(props: Mapping[str, Any]) -> float | None:
    for key in ("completion", "completion_share", "played_share"):
        if isinstance(props.get(key), int | float):
            return float(min(1.0, max(0.0, props[key])))
    listened, duration = props.get("listened_s"), props.get("duration_s")
    if isinstance(listened, int | float) and isinstance(duration, int | float) and duration > 0:
        return float(min(1.0, max(0.0, listened / duration)))
    return None


def play_weight(
    completion: float | None, skipped: bool | None, w: Weights, *, skip_below: float
) -> tuple[str, float]:
    if skipped or (completion is not None and completion < skip_below):
        return "skip", w.skip
    return "play", w.play * (1.0 if completion is None else completion)


def vote_weight(stars: int | None, direction: int | None, w: Weights) -> float:
    if stars:
        return (stars - 3.0) * w.star
    if direction:
        return w.upvote if direction > 0 else w.downvote
    return 0.0


def event_feedback(lakehouse: Any, w: Weights, *, skip_below: float) -> list[Feedback]:
    """Plays, skips, shares and requests from the ``events`` table."""
    t = read_table(
        lakehouse, "events", ["type", "event", "user_id", "track_id", "properties", "ts"]
    )
    if t is None or t.num_rows == 0 or not {"user_id", "track_id"} <= set(t.column_names):
        return []
    t = t.filter(pc.and_(pc.is_valid(t["user_id"]), pc.is_valid(t["track_id"])))
    out = []
    for r in t.to_pylist():
        name = str(r.get("event") or r.get("type") or "").lower()
        kind_type = str(r.get("type") or "").lower()
        props = _props(r.get("properties"))
        ts = r.get("ts") or datetime.now(UTC)
        if name in SKIP_EVENTS:
            out.append(Feedback(r["user_id"], r["track_id"], "skip", w.skip, ts))
        elif name in PLAY_EVENTS or kind_type == "play":
            kind, weight = play_weight(
                _completion(props), props.get("skipped"), w, skip_below=skip_below
            )
            out.append(Feedback(r["user_id"], r["track_id"], kind, weight, ts))
        elif name in SHARE_EVENTS or kind_type in SHARE_EVENTS:
            out.append(Feedback(r["user_id"], r["track_id"], "share", w.share, ts))
        elif name in REQUEST_EVENTS or kind_type in REQUEST_EVENTS:
            out.append(Feedback(r["user_id"], r["track_id"], "request", w.request, ts))
    return out


def vote_feedback(lakehouse: Any, w: Weights, *, app_database_url: str | None) -> list[Feedback]:
    """Each listener's current vote per track: the ``votes`` table's last
    action, or the app database's votes while that table does not exist."""
    t = read_table(
        lakehouse, "votes", ["user_id", "track_id", "stars", "direction", "action", "ts"]
    )
    rows: list[dict[str, Any]]
    if t is not None:
        latest: dict[tuple[str, str], dict[str, Any]] = {}
        for r in sorted(t.to_pylist(), key=lambda r: r["ts"]):
            latest[(r["user_id"], r["track_id"])] = r
        rows = [r for r in latest.values() if (r.get("action") or "cast") == "cast"]
    elif app_database_url:
        rows = app_db_votes(app_database_url)
    else:
        rows = []
    out = []
    for r in rows:
        weight = vote_weight(r.get("stars"), r.get("direction"), w)
        if weight:
            out.append(Feedback(r["user_id"], r["track_id"], "vote", weight, r["ts"]))
    return out


def app_db_votes(url: str) -> list[dict[str, Any]]:
    """Current votes from the app database (SQLite or PostgreSQL)."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.exc import SQLAlchemyError

    engine = create_engine(url)
    try:
        with engine.connect() as con:
            result = con.execute(
                text("select user_id, track_id, stars, direction, updated_at from votes")
            )
            rows = []
            for user_id, track_id, stars, direction, updated_at in result:
                ts = updated_at if isinstance(updated_at, datetime) else datetime.now(UTC)
                if ts.tzinfo is None:
                    ts = ts.replace(tzinfo=UTC)
                rows.append(
                    {
                        "user_id": user_id,
                        "track_id": track_id,
                        "stars": stars,
                        "direction": direction,
                        "ts": ts,
                    }
                )
            return rows
    except SQLAlchemyError:
        return []  # no app database or no votes table yet: nothing voted
    finally:
        engine.dispose()


def simulated_feedback(lakehouse: Any, w: Weights, *, skip_below: float) -> list[Feedback]:
    t = read_table(
        lakehouse,
        "simulated_events",
        ["user_id", "track_id", "type", "completion", "skipped", "stars", "direction", "ts"],
    )
    if t is None:
        return []
    out = []
    for r in t.to_pylist():
        if r["type"] == "play":
            kind, weight = play_weight(r["completion"], r["skipped"], w, skip_below=skip_below)
        elif r["type"] == "vote":
            kind, weight = "vote", vote_weight(r["stars"], r["direction"], w)
        else:
            kind, weight = "share", w.share
        out.append(Feedback(r["user_id"], r["track_id"], kind, weight, r["ts"], simulated=True))
    return out


def interaction_rows(
    feedback: Iterable[Feedback], *, now: datetime | None = None
) -> list[dict[str, Any]]:
    """``listener_interactions`` rows: feedback summed per listener and track."""
    now = now or datetime.now(UTC)
    acc: dict[tuple[str, str], dict[str, Any]] = {}
    for f in feedback:
        row = acc.get((f.user_id, f.track_id))
        if row is None:
            row = acc[(f.user_id, f.track_id)] = {
                "user_id": f.user_id,
                "track_id": f.track_id,
                "weight": 0.0,
                "plays": 0,
                "skips": 0,
                "votes": 0,
                "shares": 0,
                "requests": 0,
                "first_ts": f.ts,
                "ts": f.ts,
                "simulated": f.simulated,
                "computed_at": now,
            }
        row["weight"] += f.weight
        column = {
            "play": "plays",
            "skip": "skips",
            "vote": "votes",
            "share": "shares",
            "request": "requests",
        }[f.kind]
        row[column] += 1
        if f.kind == "skip":
            row["plays"] += 1
        row["first_ts"] = min(row["first_ts"], f.ts)
        row["ts"] = max(row["ts"], f.ts)
        row["simulated"] = row["simulated"] or f.simulated
    return list(acc.values())


def feature_rows(
    tracks: Iterable[Mapping[str, Any]],
    scores: Mapping[str, Mapping[str, Any]],
    *,
    simulated: bool = False,
    now: datetime | None = None,
) -> list[dict[str, Any]]:
    """``track_features`` rows from ``tracks`` rows and their ``track_scores``."""
    from models.recommend.features import energy_from_loudness

    now = now or datetime.now(UTC)
    out = []
    for t in tracks:
        s = dict(scores.get(t["track_id"], {}))
        merged = {**s, **{k: v for k, v in t.items() if v is not None}}
        key = parse_key(t.get("musical_key"))
        vec = feature_vector(merged)
        energy = t.get("energy")
        if energy is None:
            energy = energy_from_loudness(s.get("integrated_lufs"), s.get("spectral_centroid_hz"))
        out.append(
            {
                "track_id": t["track_id"],
                "genre": canonical_genre(t.get("genre")),
                "bpm": float(t.get("bpm") or 0.0),
                "musical_key": t.get("musical_key"),
                "key_root": key.root if key else None,
                "minor": key.minor if key else None,
                "energy": float(energy if energy is not None else vec[-6]),
                "integrated_lufs": s.get("integrated_lufs"),
                "spectral_centroid_hz": s.get("spectral_centroid_hz"),
                "spectral_flatness": s.get("spectral_flatness"),
                "quality_score": merged.get("quality_score"),
                "features": vec.tolist(),
                "feature_version": FEATURE_VERSION,
                "created_at": t.get("created_at") or t.get("released_at") or now,
                "simulated": simulated,
                "computed_at": now,
            }
        )
    return out


def dataset_from_tables(interactions: pa.Table, features: pa.Table) -> Dataset:
    """The recommender's ``Dataset`` from ``listener_interactions`` and
    ``track_features``: a pair is dated by when the listener first met the
    track (the time split puts pairs first met after the cutoff in the test)."""
    item_ids = np.asarray(features["track_id"].to_pylist(), dtype=object)
    index = {t: n for n, t in enumerate(item_ids)}
    feats = (
        np.asarray(features["features"].to_pylist(), dtype=np.float32)
        if features.num_rows
        else np.zeros((0, len(feature_vector({}))), dtype=np.float32)
    )
    items = np.array(
        [index.get(t, -1) for t in interactions["track_id"].to_pylist()], dtype=np.int64
    )
    keep = items >= 0
    kept = interactions.filter(pa.array(keep))
    u, users = encode(kept["user_id"])
    created = features["created_at"].cast(pa.int64()).to_numpy(zero_copy_only=False)
    meta = features.select(["track_id", "genre", "bpm", "musical_key"]).to_pylist()
    return Dataset(
        user_ids=users,
        item_ids=item_ids,
        u=u,
        i=items[keep].astype(np.int32),
        w=np.asarray(kept["weight"].to_numpy(zero_copy_only=False), dtype=np.float32),
        ts=kept["first_ts"].cast(pa.int64()).to_numpy(zero_copy_only=False).astype(np.int64),
        item_features=feats.reshape(len(item_ids), -1),
        item_meta=meta,
        item_created_us=np.asarray(created, dtype=np.int64),
    )


def plan_feedback(lakehouse: Any, *, skip_below: float) -> list[Any]:
    """Demand for the generation plan: each play of the station (completed or
    skipped, counted once per listener when known) and each vote and
    request, with the attributes of its track."""
    from models.recommend.plan import Feedback as PlanFeedback
    from models.recommend.plan import mood_of

    tracks = read_table(lakehouse, "tracks", ["track_id", "genre", "bpm", "musical_key", "prompt"])
    if tracks is None or tracks.num_rows == 0:
        return []
    attrs = {r["track_id"]: r for r in tracks.to_pylist()}
    out: list[Any] = []

    def add(track_id: str, reward: float, weight: float, ts: Any) -> None:
        t = attrs.get(track_id)
        if t is None:
            return
        out.append(
            PlanFeedback(
                genre=t["genre"],
                reward=reward,
                weight=weight,
                bpm=t.get("bpm"),
                musical_key=t.get("musical_key"),
                mood=mood_of(t.get("prompt")),
                ts=ts,
            )
        )

    plays = read_table(
        lakehouse, "plays", ["track_id", "started_at", "ended_at", "listeners", "skipped"]
    )
    for p in plays.to_pylist() if plays is not None else []:
        if p.get("ended_at") is None:
            continue
        listeners = max(1, int(p.get("listeners") or 1))
        add(p["track_id"], 0.0 if p.get("skipped") else 1.0, float(listeners), p["started_at"])
    votes = read_table(lakehouse, "votes", ["track_id", "stars", "direction", "action", "ts"])
    for v in votes.to_pylist() if votes is not None else []:
        if (v.get("action") or "cast") != "cast":
            continue
        if v.get("stars"):
            add(v["track_id"], (v["stars"] - 1) / 4.0, 2.0, v["ts"])
        elif v.get("direction"):
            add(v["track_id"], 1.0 if v["direction"] > 0 else 0.0, 2.0, v["ts"])
    # Requests ask for a genre before any track exists: that is demand too.
    events = read_table(lakehouse, "events", ["type", "event", "track_id", "properties", "ts"])
    for e in events.to_pylist() if events is not None else []:
        name = str(e.get("event") or e.get("type") or "").lower()
        if name not in REQUEST_EVENTS and str(e.get("type") or "").lower() not in REQUEST_EVENTS:
            continue
        if e.get("track_id") in attrs:
            add(e["track_id"], 1.0, 3.0, e["ts"])
            continue
        genre = _props(e.get("properties")).get("genre")
        if isinstance(genre, str) and genre:
            out.append(PlanFeedback(genre=genre, reward=1.0, weight=3.0, ts=e["ts"]))
    return out


def latest_plan_specs(
    lakehouse: Any, count: int, *, seed: int | None = None
) -> list[dict[str, Any]] | None:
    """``count`` planned tracks (genre, bpm, musical_key, mood) of the latest
    generation plan: its first ones, or with ``seed`` a seeded draw without
    replacement, so the runs within one plan's hour cover all of it (None:
    no plan yet). The air-feed sensor asks for these."""
    t = read_table(
        lakehouse, "generation_plan", ["plan_id", "dimension", "value", "spec", "created_at"]
    )
    if t is None or t.num_rows == 0:
        return None
    rows = [r for r in t.to_pylist() if r["dimension"] == "spec" and r["spec"]]
    if not rows:
        return None
    latest = max(rows, key=lambda r: (r["created_at"], r["plan_id"]))["plan_id"]
    specs = sorted((r for r in rows if r["plan_id"] == latest), key=lambda r: r["value"])
    if seed is not None:
        specs = random.Random(seed).sample(specs, len(specs))
    out = []
    for r in specs[:count]:
        spec = json.loads(r["spec"])
        out.append({k: spec.get(k) for k in ("genre", "bpm", "musical_key", "mood")})
    return out or None
