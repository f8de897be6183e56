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
    # Delta partition columns (event tables are partitioned by ``day``).
    partition_by: tuple[str, ...] = ()

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
            # Provenance: the license of the weights that made the track and
            # whether it allows commercial use (models/provenance.py). Null
            # in rows written before these columns existed.
            _f("model_license", pa.string(), nullable=True),
            _f("commercial_use", pa.bool_(), nullable=True),
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
            # Musical judgement (scorer 2): what the audio says, beside the labels.
            _f("tempo_confidence", pa.float64(), nullable=True),
            _f("tempo_stability", pa.float64(), nullable=True),
            _f("key_estimate", pa.string(), nullable=True),
            _f("key_relation", pa.string(), nullable=True),
            _f("key_confidence", pa.float64(), nullable=True),
            _f("key_scale_fit", pa.float64(), nullable=True),
            _f("tuning_cents", pa.float64(), nullable=True),
            _f("sections", pa.int64(), nullable=True),
            _f("section_contrast", pa.float64(), nullable=True),
            _f("recurrence", pa.float64(), nullable=True),
            _f("loop_share", pa.float64(), nullable=True),
            _f("harmonic_change", pa.float64(), nullable=True),
            _f("kick_every_beat", pa.float64(), nullable=True),
            _f("swing", pa.float64(), nullable=True),
            _f("technical_score", pa.float64(), nullable=True),
            _f("tempo_score", pa.float64(), nullable=True),
            _f("key_score", pa.float64(), nullable=True),
            _f("structure_score", pa.float64(), nullable=True),
            _f("genre_score", pa.float64(), nullable=True),
            _f("musical_reasons", pa.list_(pa.string()), nullable=True),
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

# -- listener data and analytics (issue 10; analytics/, assets/analytics.py) --
DAY = pa.date32()

EVENTS = TableContract(
    name="events",
    owner="events asset (drains the app DB outbox)",
    description="Every listener and app event, Segment-shaped, exactly once by event_id.",
    key=("event_id",),
    partition_by=("day",),
    schema=pa.schema(
        [
            _f("event_id", pa.string()),
            # track, page, identify (client events) or the server's own kinds
            # (vote, vote_withdrawn, share_created, user_registered, exposure, conversion, play)
            _f("type", pa.string()),
            _f("event", pa.string(), nullable=True),
            _f("user_id", pa.string(), nullable=True),
            _f("anonymous_id", pa.string(), nullable=True),
            _f("track_id", pa.string(), nullable=True),
            _f("properties", pa.string()),  # a JSON object
            _f("context", pa.string(), nullable=True),  # a JSON object
            _f("experiment_id", pa.string(), nullable=True),
            _f("variant", pa.string(), nullable=True),
            _f("sent_at", UTC_TS, nullable=True),
            _f("received_at", UTC_TS),
            _f("ts", UTC_TS),  # client time with the clock skew removed
            _f("clock_skew_s", pa.float64(), nullable=True),
            _f("flags", pa.list_(pa.string())),
            _f("request_id", pa.string(), nullable=True),
            _f("day", DAY),
        ]
    ),
)

VOTES = TableContract(
    name="votes",
    owner="events asset (vote events of the outbox)",
    description="Every vote cast or withdrawn (the app DB keeps only the current vote).",
    key=("vote_id",),
    partition_by=("day",),
    schema=pa.schema(
        [
            _f("vote_id", pa.string()),  # the event_id of the vote's outbox event
            _f("user_id", pa.string()),
            _f("track_id", pa.string()),
            _f("stars", pa.int32(), nullable=True),
            _f("direction", pa.int32(), nullable=True),  # 1 up, -1 down
            _f("action", pa.string()),  # cast, withdraw
            _f("ts", UTC_TS),
            _f("day", DAY),
        ]
    ),
)

LISTENER_SESSIONS = TableContract(
    name="listener_sessions",
    owner="listener_sessions asset",
    description="Listening sessions built from player heartbeats and plays, per output.",
    key=("session_id",),
    partition_by=("day",),
    schema=pa.schema(
        [
            _f("session_id", pa.string()),
            _f("user_id", pa.string(), nullable=True),
            _f("anonymous_id", pa.string(), nullable=True),
            _f("output", pa.string()),  # hls, mp3, web
            _f("started_at", UTC_TS),
            _f("ended_at", UTC_TS),
            _f("listening_s", pa.float64()),
            _f("heartbeats", pa.int64()),
            _f("day", DAY),
        ]
    ),
)

DAILY_TRACK_METRICS = TableContract(
    name="daily_track_metrics",
    owner="daily_track_metrics asset",
    description="Per track and day: plays, listeners, completion and skip rates, votes, shares.",
    key=("day", "track_id"),
    partition_by=("day",),
    schema=pa.schema(
        [
            _f("day", DAY),
            _f("track_id", pa.string()),
            _f("plays", pa.int64()),
            _f("unique_listeners", pa.int64()),
            _f("completion_rate", pa.float64(), nullable=True),
            _f("skip_rate", pa.float64(), nullable=True),
            _f("votes", pa.int64()),
            _f("mean_stars", pa.float64(), nullable=True),
            _f("shares", pa.int64()),
            _f("listening_s", pa.float64()),
            _f("computed_at", UTC_TS),
        ]
    ),
)

TRENDING_TRACKS = TableContract(
    name="trending_tracks",
    owner="trending_tracks asset",
    description="Tracks ranked by a time-decayed score of plays, votes and shares.",
    key=("track_id",),
    schema=pa.schema(
        [
            _f("track_id", pa.string()),
            _f("rank", pa.int32()),
            _f("score", pa.float64()),
            _f("plays", pa.int64()),
            _f("votes", pa.int64()),
            _f("shares", pa.int64()),
            _f("mean_stars", pa.float64(), nullable=True),
            _f("half_life_h", pa.float64()),
            _f("computed_at", UTC_TS),
        ]
    ),
)

KPIS_DAILY = TableContract(
    name="kpis_daily",
    owner="kpis_daily asset",
    description="The station's daily KPIs: listeners, listening hours, active users, generation.",
    key=("day",),
    partition_by=("day",),
    schema=pa.schema(
        [
            _f("day", DAY),
            _f("peak_concurrent_listeners", pa.int64()),
            _f("mean_concurrent_listeners", pa.float64()),
            _f("listening_hours", pa.float64()),
            _f("sessions", pa.int64()),
            _f("dau", pa.int64()),
            _f("wau", pa.int64()),
            _f("mau", pa.int64()),
            _f("new_users", pa.int64()),
            _f("votes", pa.int64()),
            _f("shares", pa.int64()),
            _f("requests", pa.int64()),
            _f("plays", pa.int64()),
            _f("aired_hours", pa.float64()),
            _f("generation_count", pa.int64()),
            _f("generation_pass_rate", pa.float64(), nullable=True),
            _f("generation_cpu_s", pa.float64()),
            _f("generation_gpu_s", pa.float64()),
            _f("generation_s_per_aired_hour", pa.float64(), nullable=True),
            _f("conversions", pa.int64()),
            _f("checkout_conversion_rate", pa.float64(), nullable=True),
            _f("mrr", pa.float64(), nullable=True),  # once payments record it
            _f("computed_at", UTC_TS),
        ]
    ),
)

EXPERIMENT_RESULTS = TableContract(
    name="experiment_results",
    owner="experiment_results asset",
    description="Per experiment and variant: exposures, conversions, rate and CI, test, SRM.",
    key=("experiment_id", "variant"),
    schema=pa.schema(
        [
            _f("experiment_id", pa.string()),
            _f("variant", pa.string()),
            _f("is_control", pa.bool_()),
            _f("metric", pa.string()),
            _f("weight", pa.float64()),
            _f("exposures", pa.int64()),
            _f("conversions", pa.int64()),
            _f("rate", pa.float64(), nullable=True),
            _f("mean", pa.float64(), nullable=True),
            _f("ci_low", pa.float64(), nullable=True),
            _f("ci_high", pa.float64(), nullable=True),
            _f("diff", pa.float64(), nullable=True),
            _f("p_value", pa.float64(), nullable=True),
            _f("significant", pa.bool_(), nullable=True),
            _f("srm_p_value", pa.float64(), nullable=True),
            _f("srm", pa.bool_()),
            _f("unexposed_conversions", pa.int64()),
            _f("min_sample", pa.int64()),
            _f("status", pa.string()),  # not_enough_data, ok, srm
            _f("computed_at", UTC_TS),
        ]
    ),
)

CONTRACTS.update(
    {
        c.name: c
        for c in (
            EVENTS,
            VOTES,
            LISTENER_SESSIONS,
            DAILY_TRACK_METRICS,
            TRENDING_TRACKS,
            KPIS_DAILY,
            EXPERIMENT_RESULTS,
        )
    }
)

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
