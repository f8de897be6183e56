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


def contract(name: str) -> TableContract:
    """The contract of table ``name``; unknown names list the known tables."""
    try:
        return CONTRACTS[name]
    except KeyError:
        raise UnknownTableError(
            f"unknown lakehouse table {name!r}; known tables: {', '.join(sorted(CONTRACTS))}"
        ) from None
