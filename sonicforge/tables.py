"""Lakehouse table contracts: one explicit pyarrow schema per Delta table.

Each table has one owner (the asset or process that writes it) and a key
that makes appends idempotent: writers merge on the key, so re-running a
partition inserts nothing twice. Times are UTC ``timestamp[us, UTC]``.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

from sonicforge.errors import UnknownTableError

UTC_TS = pa.timestamp("us", tz="UTC")


@dataclass(frozen=True)
class TableContract:
    """A Delta table's name, schema, merge key and owner."""

    name: str
    schema: pa.Schema
    key: tuple[str, ...]
    owner: str
    description: str

    @property
    def columns(self) -> list[str]:
        return list(self.schema.names)


def _f(name: str, typ: pa.DataType, *, nullable: bool = False) -> pa.Field:
    return pa.field(name, typ, nullable=nullable)


TRACKS = TableContract(
    name="tracks",
    owner="generated_tracks asset",
    description="Every generated track: what was asked, what it is, where its raw audio lives.",
    key=("track_id",),
    schema=pa.schema(
        [
            _f("track_id", pa.string()),
            _f("batch_id", pa.string()),
            _f("genre", pa.string()),
            _f("prompt", pa.string()),
            _f("prompt_version", pa.string(), nullable=True),
            _f("bpm", pa.float64()),
            _f("musical_key", pa.string()),
            _f("duration_s", pa.float64()),
            _f("requested_duration_s", pa.float64()),
            _f("sample_rate", pa.int32()),
            _f("channels", pa.int32()),
            _f("backend", pa.string()),
            _f("model_name", pa.string()),
            _f("model_version", pa.string()),
            _f("seed", pa.int64()),
            _f("raw_uri", pa.string()),
            _f("sha256", pa.string()),
            _f("generation_s", pa.float64()),
            _f("created_at", UTC_TS),
            _f("request_id", pa.string(), nullable=True),
            _f("dagster_run_id", pa.string(), nullable=True),
            _f("mlflow_run_id", pa.string(), nullable=True),
        ]
    ),
)

TRACK_SCORES = TableContract(
    name="track_scores",
    owner="track_scores asset",
    description="Measurements of each raw track and the quality gate's verdict.",
    key=("track_id",),
    schema=pa.schema(
        [
            _f("track_id", pa.string()),
            _f("batch_id", pa.string()),
            _f("integrated_lufs", pa.float64()),
            _f("true_peak_dbtp", pa.float64()),
            _f("loudness_range_lu", pa.float64()),
            _f("clipping_ratio", pa.float64()),
            _f("silence_ratio", pa.float64()),
            _f("dc_offset", pa.float64()),
            _f("nonfinite_ratio", pa.float64()),
            _f("tempo_bpm_est", pa.float64()),
            _f("tempo_error", pa.float64()),
            _f("spectral_centroid_hz", pa.float64()),
            _f("spectral_flatness", pa.float64()),
            _f("stereo_correlation", pa.float64()),
            _f("duration_s", pa.float64()),
            _f("quality_score", pa.float64()),
            _f("passed", pa.bool_()),
            _f("reasons", pa.list_(pa.string())),
            _f("scorer_version", pa.string()),
            _f("scored_at", UTC_TS),
        ]
    ),
)

RENDITION = pa.struct(
    [
        _f("codec", pa.string()),
        _f("bitrate_kbps", pa.int32(), nullable=True),
        _f("uri", pa.string()),
        _f("sha256", pa.string()),
    ]
)

MASTERED_TRACKS = TableContract(
    name="mastered_tracks",
    owner="mastered_tracks asset",
    description="Mastered audio (FLAC master plus renditions) with loudness measured after the chain.",
    key=("track_id",),
    schema=pa.schema(
        [
            _f("track_id", pa.string()),
            _f("batch_id", pa.string()),
            _f("master_uri", pa.string()),
            _f("master_sha256", pa.string()),
            _f("renditions", pa.list_(RENDITION)),
            _f("duration_s", pa.float64()),
            _f("sample_rate", pa.int32()),
            _f("lufs_before", pa.float64()),
            _f("lufs_after", pa.float64()),
            _f("true_peak_after", pa.float64()),
            _f("chain_version", pa.string()),
            _f("mastered_at", UTC_TS),
        ]
    ),
)

ROTATION = TableContract(
    name="rotation",
    owner="rotation asset",
    description="Tracks that may air, with their weight; retired tracks keep their row.",
    key=("track_id",),
    schema=pa.schema(
        [
            _f("track_id", pa.string()),
            _f("batch_id", pa.string()),
            _f("genre", pa.string()),
            _f("weight", pa.float64()),
            _f("duration_s", pa.float64()),
            _f("quality_score", pa.float64()),
            _f("eligible_from", UTC_TS),
            _f("retired_at", UTC_TS, nullable=True),
        ]
    ),
)

PLAYS = TableContract(
    name="plays",
    owner="streaming service (via outbox)",
    description="Every airing of a track on a channel.",
    key=("play_id",),
    schema=pa.schema(
        [
            _f("play_id", pa.string()),
            _f("track_id", pa.string()),
            _f("started_at", UTC_TS),
            _f("ended_at", UTC_TS, nullable=True),
            _f("listeners", pa.int32(), nullable=True),
            _f("skipped", pa.bool_()),
            _f("channel", pa.string()),
        ]
    ),
)

CONTRACTS: dict[str, TableContract] = {
    c.name: c for c in (TRACKS, TRACK_SCORES, MASTERED_TRACKS, ROTATION, PLAYS)
}


# -- recommender and generation plan (issue 12; models/recommend/, assets/ml.py) --
LISTENER_INTERACTIONS = TableContract(
    name="listener_interactions",
    owner="listener_interactions asset",
    description="Implicit feedback per listener and track: signed weight from plays, votes, shares, requests.",
    key=("user_id", "track_id"),
    schema=pa.schema(
        [
            _f("user_id", pa.string()),
            _f("track_id", pa.string()),
            _f("weight", pa.float64()),  # signed: skips and down-votes count against
            _f("plays", pa.int32()),
            _f("skips", pa.int32()),
            _f("votes", pa.int32()),
            _f("shares", pa.int32()),
            _f("requests", pa.int32()),
            _f("first_ts", UTC_TS),
            _f("ts", UTC_TS),  # the latest interaction
            _f("simulated", pa.bool_()),  # from models/recommend/simulate.py, never real
            _f("computed_at", UTC_TS),
        ]
    ),
)

TRACK_FEATURES = TableContract(
    name="track_features",
    owner="track_features asset",
    description="Content features of every track (genre, tempo, key, loudness, spectrum) as one vector.",
    key=("track_id",),
    schema=pa.schema(
        [
            _f("track_id", pa.string()),
            _f("genre", pa.string()),
            _f("bpm", pa.float64()),
            _f("musical_key", pa.string(), nullable=True),
            _f("key_root", pa.int32(), nullable=True),  # pitch class, 0 = C
            _f("minor", pa.bool_(), nullable=True),
            _f("energy", pa.float64()),
            _f("integrated_lufs", pa.float64(), nullable=True),
            _f("spectral_centroid_hz", pa.float64(), nullable=True),
            _f("spectral_flatness", pa.float64(), nullable=True),
            _f("quality_score", pa.float64(), nullable=True),
            _f("features", pa.list_(pa.float32())),
            _f("feature_version", pa.string()),
            _f("created_at", UTC_TS),  # when the track appeared
            _f("simulated", pa.bool_()),
            _f("computed_at", UTC_TS),
        ]
    ),
)

GENERATION_PLAN = TableContract(
    name="generation_plan",
    owner="generation_plan asset",
    description="What the station generates next: per plan and arm, its share, posterior and reason.",
    key=("plan_id", "dimension", "value"),
    schema=pa.schema(
        [
            _f("plan_id", pa.string()),
            _f("dimension", pa.string()),  # genre, tempo, key, mood, spec
            _f("value", pa.string()),
            _f("share", pa.float64()),
            _f("alpha", pa.float64(), nullable=True),
            _f("beta", pa.float64(), nullable=True),
            _f("reason", pa.string()),
            _f("spec", pa.string(), nullable=True),  # a planned track as JSON (dimension spec)
            _f("created_at", UTC_TS),
        ]
    ),
)

SIMULATED_TRACKS = TableContract(
    name="simulated_tracks",
    owner="models/recommend/simulate.py (simulated, never real)",
    description="SIMULATED tracks with known attributes, for tests, the benchmark and demos.",
    key=("track_id",),
    schema=pa.schema(
        [
            _f("track_id", pa.string()),
            _f("genre", pa.string()),
            _f("bpm", pa.float64()),
            _f("musical_key", pa.string()),
            _f("energy", pa.float64()),
            _f("quality_score", pa.float64()),
            _f("released_at", UTC_TS),
            _f("simulated", pa.bool_()),
            _f("scenario", pa.string()),
        ]
    ),
)

SIMULATED_EVENTS = TableContract(
    name="simulated_events",
    owner="models/recommend/simulate.py (simulated, never real)",
    description="SIMULATED listeners' plays, votes and shares from known tastes.",
    key=("event_id",),
    schema=pa.schema(
        [
            _f("event_id", pa.string()),
            _f("user_id", pa.string()),
            _f("track_id", pa.string()),
            _f("type", pa.string()),  # play, vote, share
            _f("completion", pa.float64(), nullable=True),
            _f("skipped", pa.bool_(), nullable=True),
            _f("stars", pa.int32(), nullable=True),
            _f("direction", pa.int32(), nullable=True),
            _f("ts", UTC_TS),
            _f("simulated", pa.bool_()),
            _f("scenario", pa.string()),
        ]
    ),
)

CONTRACTS.update(
    {
        c.name: c
        for c in (
            LISTENER_INTERACTIONS,
            TRACK_FEATURES,
            GENERATION_PLAN,
            SIMULATED_TRACKS,
            SIMULATED_EVENTS,
        )
    }
)


def contract(name: str) -> TableContract:
    """The contract of table ``name``; unknown names list the known tables."""
    try:
        return CONTRACTS[name]
    except KeyError:
        raise UnknownTableError(
            f"unknown lakehouse table {name!r}; known tables: {', '.join(sorted(CONTRACTS))}"
        ) from None
