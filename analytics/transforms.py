"""The analytics transforms: polars lazy frames over the Delta tables.

Each function takes the lakehouse (or frames, in tests) and a day and
returns an Arrow table of its contract's schema; the assets only write
them. Why polars: the day's group-bys and the sessionising window run as
one lazy plan over ``pl.scan_delta`` with the day partition pushed into
the scan; ``bench/analytics.py`` times each against DuckDB SQL over the
same tables (``analytics.transforms_sql``) and prints both.

Units: a user id where there is one (``u:<id>``), else the anonymous id
(``a:<id>``), as experiment assignment keys them.
"""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta
from typing import Any

import polars as pl
import pyarrow as pa

from sonicforge.lakehouse import Lakehouse
from sonicforge.tables import (
    DAILY_TRACK_METRICS,
    KPIS_DAILY,
    LISTENER_SESSIONS,
    TRENDING_TRACKS,
    TableContract,
)

HEARTBEAT_EVENTS = ("heartbeat",)
SHARE_TYPES = ("share_created",)
REQUEST_TYPES = ("request_created", "track_requested")
SIGNUP_TYPES = ("user_registered",)
# A trending score counts plays 1, shares 3, and votes by their rating.
SHARE_WEIGHT = 3.0


def scan(lh: Lakehouse, name: str) -> pl.LazyFrame:
    """A lazy scan of table ``name`` (empty, with its schema, if missing)."""
    if not lh.exists(name):
        return pl.from_arrow(lh.read(name)).lazy()  # type: ignore[union-attr]
    return pl.scan_delta(lh.table_uri(name), storage_options=lh.storage_options or None)


def unit_expr() -> pl.Expr:
    return (
        pl.when(pl.col("user_id").is_not_null())
        .then(pl.lit("u:") + pl.col("user_id"))
        .otherwise(pl.lit("a:") + pl.col("anonymous_id"))
    )


def day_bounds(day: date) -> tuple[datetime, datetime]:
    start = datetime.combine(day, datetime.min.time(), UTC)
    return start, start + timedelta(days=1)


def to_contract(frame: pl.DataFrame, c: TableContract) -> pa.Table:
    table = frame.select(c.columns).to_arrow()
    return table.cast(c.schema)


def _json_num(field: str) -> pl.Expr:
    return pl.col("properties").str.json_path_match(f"$.{field}").cast(pl.Float64, strict=False)


def _json_str(field: str) -> pl.Expr:
    return pl.col("properties").str.json_path_match(f"$.{field}")


# -- listener_sessions --------------------------------------------------------------


def listener_sessions(events: pl.LazyFrame, day: date, *, segment_s: float) -> pa.Table:
    """Sessions of one day from player heartbeats: a unit's heartbeats on
    one output belong to one session while they come within 2× the
    segment duration; a session ends one segment after its last beat."""
    gap = timedelta(seconds=2 * segment_s)
    beats = (
        events.filter((pl.col("day") == day) & pl.col("event").is_in(HEARTBEAT_EVENTS))
        .filter(pl.col("user_id").is_not_null() | pl.col("anonymous_id").is_not_null())
        .select(
            "ts",
            "user_id",
            "anonymous_id",
            unit_expr().alias("unit"),
            _json_str("output").fill_null("web").alias("output"),
        )
        .sort("unit", "output", "ts")
        .with_columns(
            (pl.col("ts").diff().over("unit", "output") > gap).fill_null(True).alias("new")
        )
        .with_columns(pl.col("new").cast(pl.Int64).cum_sum().over("unit", "output").alias("n"))
        .group_by("unit", "output", "n")
        .agg(
            pl.col("user_id").first(),
            pl.col("anonymous_id").first(),
            pl.col("ts").min().alias("started_at"),
            (pl.col("ts").max() + timedelta(seconds=segment_s)).alias("ended_at"),
            pl.len().cast(pl.Int64).alias("heartbeats"),
        )
        .with_columns(
            ((pl.col("ended_at") - pl.col("started_at")).dt.total_microseconds() / 1e6).alias(
                "listening_s"
            ),
            pl.concat_str(
                [pl.col("unit"), pl.col("output"), pl.col("started_at").dt.epoch("us")],
                separator="|",
            )
            .hash(seed=0)
            .cast(pl.String)
            .alias("session_id"),
            pl.lit(day).alias("day"),
        )
    )
    return to_contract(beats.collect(), LISTENER_SESSIONS)


# -- daily_track_metrics -------------------------------------------------------------


def daily_track_metrics(
    *,
    events: pl.LazyFrame,
    plays: pl.LazyFrame,
    votes: pl.LazyFrame,
    day: date,
    now: datetime | None = None,
) -> pa.Table:
    start, end = day_bounds(day)
    p = (
        plays.filter((pl.col("started_at") >= start) & (pl.col("started_at") < end))
        .group_by("track_id")
        .agg(
            pl.len().cast(pl.Int64).alias("plays"),
            pl.col("ended_at").is_not_null().sum().alias("ended"),
            (pl.col("ended_at").is_not_null() & pl.col("skipped")).sum().alias("skips"),
        )
        .with_columns(
            pl.when(pl.col("ended") > 0)
            .then(1.0 - pl.col("skips") / pl.col("ended"))
            .alias("completion_rate"),
            pl.when(pl.col("ended") > 0).then(pl.col("skips") / pl.col("ended")).alias("skip_rate"),
        )
    )
    ev = events.filter((pl.col("day") == day) & pl.col("track_id").is_not_null())
    listeners = (
        ev.filter(pl.col("user_id").is_not_null() | pl.col("anonymous_id").is_not_null())
        .group_by("track_id")
        .agg(
            # Listeners are units whose player reported listening to the track.
            unit_expr()
            .filter(pl.col("event").is_in(HEARTBEAT_EVENTS))
            .n_unique()
            .cast(pl.Int64)
            .alias("unique_listeners"),
            pl.when(pl.col("event").is_in(HEARTBEAT_EVENTS))
            .then(_json_num("seconds"))
            .sum()
            .alias("listening_s"),
            pl.col("type").is_in(SHARE_TYPES).sum().cast(pl.Int64).alias("shares"),
        )
    )
    v = (
        votes.filter((pl.col("day") == day) & (pl.col("action") == "cast"))
        .group_by("track_id")
        .agg(
            pl.len().cast(pl.Int64).alias("votes"),
            pl.col("stars").cast(pl.Float64).mean().alias("mean_stars"),
        )
    )
    joined = (
        p.join(listeners, on="track_id", how="full", coalesce=True)
        .join(v, on="track_id", how="full", coalesce=True)
        .with_columns(
            pl.col("plays", "unique_listeners", "votes", "shares").fill_null(0).cast(pl.Int64),
            pl.col("listening_s").fill_null(0.0),
            pl.lit(day).alias("day"),
            pl.lit(now or datetime.now(UTC)).dt.cast_time_unit("us").alias("computed_at"),
        )
        .sort("track_id")
    )
    return to_contract(joined.collect(), DAILY_TRACK_METRICS)


# -- trending_tracks -------------------------------------------------------------------


def trending_tracks(
    *,
    plays: pl.LazyFrame,
    votes: pl.LazyFrame,
    events: pl.LazyFrame,
    now: datetime,
    half_life_h: float,
    limit: int = 100,
) -> pa.Table:
    """Each signal weighs ``2^(-age / half_life)``: plays 1, shares 3,
    votes by rating (stars 5 → 2 … 1 → -2; up 2, down -2). Signals older
    than ten half-lives (< 0.1 %) are not read."""
    horizon = now - timedelta(hours=10 * half_life_h)
    lam = math.log(2) / (half_life_h * 3600.0)

    def decay(col: str) -> pl.Expr:
        age_s = (pl.lit(now) - pl.col(col)).dt.total_microseconds() / 1e6
        return (-lam * age_s.clip(lower_bound=0)).exp()

    p = plays.filter((pl.col("started_at") >= horizon) & (pl.col("started_at") <= now)).select(
        "track_id", decay("started_at").alias("w"), pl.lit(1, pl.Int64).alias("plays"),
        pl.lit(0, pl.Int64).alias("votes"), pl.lit(0, pl.Int64).alias("shares"),
        pl.lit(None, pl.Float64).alias("stars"),
    )  # fmt: skip
    rating = (
        pl.when(pl.col("stars").is_not_null())
        .then(pl.col("stars").cast(pl.Float64) - 3.0)
        .when(pl.col("direction") == 1)
        .then(2.0)
        .otherwise(-2.0)
    )
    v = votes.filter(
        (pl.col("ts") >= horizon) & (pl.col("ts") <= now) & (pl.col("action") == "cast")
    ).select(
        "track_id", (decay("ts") * rating).alias("w"), pl.lit(0, pl.Int64).alias("plays"),
        pl.lit(1, pl.Int64).alias("votes"), pl.lit(0, pl.Int64).alias("shares"),
        pl.col("stars").cast(pl.Float64).alias("stars"),
    )  # fmt: skip
    s = events.filter(
        (pl.col("day") >= horizon.date())
        & (pl.col("ts") >= horizon)
        & (pl.col("ts") <= now)
        & pl.col("type").is_in(SHARE_TYPES)
        & pl.col("track_id").is_not_null()
    ).select(
        "track_id", (decay("ts") * SHARE_WEIGHT).alias("w"), pl.lit(0, pl.Int64).alias("plays"),
        pl.lit(0, pl.Int64).alias("votes"), pl.lit(1, pl.Int64).alias("shares"),
        pl.lit(None, pl.Float64).alias("stars"),
    )  # fmt: skip
    ranked = (
        pl.concat([p, v, s], how="vertical_relaxed")
        .group_by("track_id")
        .agg(
            pl.col("w").sum().alias("score"),
            pl.col("plays").sum(),
            pl.col("votes").sum(),
            pl.col("shares").sum(),
            pl.col("stars").mean().alias("mean_stars"),
        )
        .sort(["score", "track_id"], descending=[True, False])
        .head(limit)
        .with_columns(
            pl.int_range(1, pl.len() + 1, dtype=pl.Int32).alias("rank"),
            pl.lit(half_life_h).alias("half_life_h"),
            pl.lit(now).dt.cast_time_unit("us").alias("computed_at"),
        )
    )
    return to_contract(ranked.collect(), TRENDING_TRACKS)


# -- kpis_daily ---------------------------------------------------------------------------


def _peak_concurrency(sessions: pl.DataFrame) -> int:
    """The most sessions open at one instant (a sweep over starts and ends)."""
    if sessions.is_empty():
        return 0
    points = pl.concat(
        [
            sessions.select(pl.col("started_at").alias("t"), pl.lit(1).alias("d")),
            sessions.select(pl.col("ended_at").alias("t"), pl.lit(-1).alias("d")),
        ]
    ).sort(["t", "d"])  # an end before a start at the same instant
    return int(points["d"].cum_sum().max() or 0)  # type: ignore[arg-type]


def kpis_daily(
    *,
    lh: Lakehouse,
    day: date,
    now: datetime | None = None,
) -> pa.Table:
    now = now or datetime.now(UTC)
    start, end = day_bounds(day)
    events = scan(lh, "events")
    sessions = scan(lh, "listener_sessions").filter(pl.col("day") == day).collect()
    plays = (
        scan(lh, "plays")
        .filter((pl.col("started_at") >= start) & (pl.col("started_at") < end))
        .collect()
    )
    elapsed = max(1.0, (min(now, end) - start).total_seconds())
    listening_s = float(sessions["listening_s"].sum() or 0.0)
    peak = _peak_concurrency(sessions)
    if plays.height and plays["listeners"].max() is not None:
        peak = max(peak, int(plays["listeners"].max()))  # type: ignore[arg-type]

    def active(days: int) -> int:
        first = day - timedelta(days=days - 1)
        return int(
            events.filter(
                (pl.col("day") >= first)
                & (pl.col("day") <= day)
                & (pl.col("user_id").is_not_null() | pl.col("anonymous_id").is_not_null())
            )
            .select(unit_expr().n_unique())
            .collect()
            .item()
        )

    today = events.filter(pl.col("day") == day)
    counts = (
        today.select(
            pl.col("type").is_in(SIGNUP_TYPES).sum().alias("new_users"),
            pl.col("type").is_in(SHARE_TYPES).sum().alias("shares"),
            pl.col("type").is_in(REQUEST_TYPES).sum().alias("requests"),
            (
                ((pl.col("type") == "conversion") & ~pl.col("flags").list.contains("no_exposure"))
                | (pl.col("type") == "checkout_completed")
            )
            .sum()
            .alias("conversions"),
            ((pl.col("type") == "exposure") & (pl.col("experiment_id") == "pricing_page"))
            .sum()
            .alias("pricing_exposures"),
            (
                (pl.col("experiment_id") == "pricing_page")
                & (pl.col("event") == "checkout_completed")
                & ~pl.col("flags").list.contains("no_exposure")
            )
            .sum()
            .alias("pricing_checkouts"),
        )
        .collect()
        .row(0, named=True)
    )
    n_votes = int(
        scan(lh, "votes")
        .filter((pl.col("day") == day) & (pl.col("action") == "cast"))
        .select(pl.len())
        .collect()
        .item()
    )
    aired_s = 0.0
    if plays.height:
        ended = plays.filter(pl.col("ended_at").is_not_null())
        aired_s = float(
            ((ended["ended_at"] - ended["started_at"]).dt.total_microseconds() / 1e6).sum() or 0.0
        )
    tracks = (
        scan(lh, "tracks")
        .filter((pl.col("created_at") >= start) & (pl.col("created_at") < end))
        .select("track_id", "backend", "generation_s")
        .collect()
    )
    scores = scan(lh, "track_scores").select("track_id", "passed").collect()
    gen = tracks.join(scores, on="track_id", how="left")
    scored = gen.filter(pl.col("passed").is_not_null())
    cpu_s = float(gen.filter(pl.col("backend") == "procedural")["generation_s"].sum() or 0.0)
    gpu_s = float(gen.filter(pl.col("backend") != "procedural")["generation_s"].sum() or 0.0)
    aired_h = aired_s / 3600.0
    row: dict[str, Any] = {
        "day": day,
        "peak_concurrent_listeners": peak,
        "mean_concurrent_listeners": listening_s / elapsed,
        "listening_hours": listening_s / 3600.0,
        "sessions": sessions.height,
        "dau": active(1),
        "wau": active(7),
        "mau": active(30),
        "new_users": int(counts["new_users"]),
        "votes": n_votes,
        "shares": int(counts["shares"]),
        "requests": int(counts["requests"]),
        "plays": plays.height,
        "aired_hours": aired_h,
        "generation_count": tracks.height,
        "generation_pass_rate": (
            float(scored["passed"].sum()) / scored.height if scored.height else None
        ),
        "generation_cpu_s": cpu_s,
        "generation_gpu_s": gpu_s,
        "generation_s_per_aired_hour": (cpu_s + gpu_s) / aired_h if aired_h > 0 else None,
        "conversions": int(counts["conversions"]),
        "checkout_conversion_rate": (
            counts["pricing_checkouts"] / counts["pricing_exposures"]
            if counts["pricing_exposures"]
            else None
        ),
        "mrr": None,
        "computed_at": now,
    }
    return pa.Table.from_pylist([row], schema=KPIS_DAILY.schema)
