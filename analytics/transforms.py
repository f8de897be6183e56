"""The analytics transforms: polars lazy frames or DuckDB SQL over the
Delta tables, whichever measured faster for the asset.

Each function takes the lakehouse (or frames, in tests) and a day and
returns an Arrow table of its contract's schema; the assets only write
them. ``bench/analytics.py`` times each asset's transform in both engines
on the same day's data and prints which one the asset runs:

- listener_sessions: polars (the sessionising window runs as one lazy
  plan over ``pl.scan_delta`` with the day pushed into the scan).
- daily_track_metrics, kpis_daily: DuckDB SQL (``*_duckdb``; the views of
  ``analytics.sql.SqlEngine``, the Delta extension pruning the day
  partitions); their polars plans stay as ``*_polars``, the baseline, and
  a test checks both give the same table.

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
    """Sessions of one day from heartbeats, per output: the web player's
    (``web``), and the stream's own for MP3 connections (``mp3``) and HLS
    clients (``hls``), which the API records (``streaming.listening``).

    A unit's heartbeats on one output belong to one session while they come
    within 2× the segment duration. A beat with ``phase: end`` (an MP3
    connection closed) ends its session at that beat, and the next beat
    starts a new one; any other session ends one segment after its last
    beat (an HLS client gone quiet, a crash: at most one interval lost)."""
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
            (_json_str("phase") == "end").fill_null(False).alias("closed"),
        )
        .sort("unit", "output", "ts")
        .with_columns(
            (
                (pl.col("ts").diff().over("unit", "output") > gap)
                | pl.col("closed").shift(1).over("unit", "output")
            )
            .fill_null(True)
            .alias("new")
        )
        .with_columns(pl.col("new").cast(pl.Int64).cum_sum().over("unit", "output").alias("n"))
        .group_by("unit", "output", "n")
        .agg(
            pl.col("user_id").first(),
            pl.col("anonymous_id").first(),
            pl.col("ts").min().alias("started_at"),
            pl.when(pl.col("closed").any())
            .then(pl.col("ts").max())
            .otherwise(pl.col("ts").max() + timedelta(seconds=segment_s))
            .alias("ended_at"),
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


def daily_track_metrics_polars(
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


def kpis_daily_polars(
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


# -- DuckDB SQL (daily_track_metrics and kpis_daily run these) ---------------------------
#
# Measured on one day of a 10M-event table (bench/analytics.py): daily_track_metrics
# 0.22 s in DuckDB against 0.34 s in polars, and the KPIs' distinct counts 0.65 s
# against 0.84-0.94 s; listener_sessions stays in polars (0.79 s against 1.03 s).
# The polars versions above are the baseline the benchmark times them against, and
# tests/analytics/test_transforms.py checks that both give the same table.

_UNIT_SQL = "coalesce('u:' || user_id, 'a:' || anonymous_id)"


def _sql_in(values: tuple[str, ...]) -> str:
    return "(" + ", ".join("'" + v.replace("'", "''") + "'" for v in values) + ")"


def _date_sql(day: date) -> str:
    return f"DATE '{day.isoformat()}'"  # a literal, so the day partition is pruned


_DUCK_BASE: Any = None


def _duck_base() -> Any:
    """This process's DuckDB database with the bundled Delta extension
    loaded (once: the load costs ~0.2 s, like an import), or None."""
    global _DUCK_BASE
    if _DUCK_BASE is None:
        import duckdb

        from analytics.sql import delta_extension_path

        path = delta_extension_path()
        if path is None:
            _DUCK_BASE = False
            return None
        con = duckdb.connect(
            config={"autoinstall_known_extensions": False, "autoload_known_extensions": False}
        )
        try:
            con.execute("LOAD '" + str(path).replace("'", "''") + "'")
        except duckdb.Error:
            con.close()
            _DUCK_BASE = False
            return None
        _DUCK_BASE = con
    return _DUCK_BASE or None


class _DuckViews:
    """A DuckDB connection where each of ``names`` is a view: ``delta_scan``
    of the table (which reads its latest version and prunes partitions), or
    an empty table of its schema where it does not exist yet. Local tables
    share this process's database (temporary views, one cursor each call);
    object stores and platforms without the bundled extension go through
    :class:`analytics.sql.SqlEngine` (its secrets, or Arrow datasets)."""

    def __init__(self, lh: Lakehouse, names: tuple[str, ...]):
        base = None if "://" in lh.root_uri else _duck_base()
        self.engine: Any = None
        if base is None:
            from analytics.sql import SqlEngine

            self.engine = SqlEngine(lh)
            self.con = self.engine.con
            existing = set(self.engine.views)
        else:
            self.con = base.cursor()
            existing = set(lh.table_names())
        kind = "VIEW" if self.engine is not None else "TEMP VIEW"
        for name in names:
            if name in existing and self.engine is None:
                uri = lh.table_uri(name).replace("'", "''")
                self.con.execute(
                    f"CREATE OR REPLACE TEMP VIEW \"{name}\" AS SELECT * FROM delta_scan('{uri}')"
                )
            elif name not in existing:
                self.con.register(f"__{name}_empty", lh.read(name))
                self.con.execute(
                    f'CREATE OR REPLACE {kind} "{name}" AS SELECT * FROM "__{name}_empty"'
                )

    def close(self) -> None:
        if self.engine is not None:
            self.engine.close()
        else:
            self.con.close()


def duck_engine(lh: Lakehouse, names: tuple[str, ...]) -> _DuckViews:
    """DuckDB with each of ``names`` as a view (see :class:`_DuckViews`)."""
    return _DuckViews(lh, names)


DAILY_TRACK_METRICS_SQL = f"""
with p as (
  select track_id, count(*) as plays,
         count(ended_at) as ended,
         count_if(ended_at is not null and skipped) as skips
  from plays where started_at >= $start and started_at < $end group by track_id
), l as (
  select track_id,
         count(distinct case when event in {_sql_in(HEARTBEAT_EVENTS)} then {_UNIT_SQL} end)
           as unique_listeners,
         coalesce(sum(case when event in {_sql_in(HEARTBEAT_EVENTS)}
           then try_cast(json_extract_string(properties, '$.seconds') as double) end), 0.0)
           as listening_s,
         count_if(type in {_sql_in(SHARE_TYPES)}) as shares
  from events
  where day = {{day}} and track_id is not null
    and (user_id is not null or anonymous_id is not null)
  group by track_id
), v as (
  select track_id, count(*) as votes, avg(cast(stars as double)) as mean_stars
  from votes where day = {{day}} and action = 'cast' group by track_id
)
select coalesce(p.track_id, l.track_id, v.track_id) as track_id,
       coalesce(p.plays, 0) as plays,
       coalesce(l.unique_listeners, 0) as unique_listeners,
       case when p.ended > 0 then 1.0 - p.skips / p.ended end as completion_rate,
       case when p.ended > 0 then p.skips / p.ended end as skip_rate,
       coalesce(v.votes, 0) as votes, v.mean_stars,
       coalesce(l.shares, 0) as shares,
       coalesce(l.listening_s, 0.0) as listening_s
from p full join l on p.track_id = l.track_id
       full join v on coalesce(p.track_id, l.track_id) = v.track_id
order by track_id
"""


def daily_track_metrics_duckdb(
    *, lh: Lakehouse, day: date, now: datetime | None = None
) -> pa.Table:
    """:func:`daily_track_metrics_polars` as DuckDB SQL over the Delta tables."""
    start, end = day_bounds(day)
    engine = duck_engine(lh, ("events", "plays", "votes"))
    try:
        sql = DAILY_TRACK_METRICS_SQL.replace("{day}", _date_sql(day))
        table = engine.con.execute(sql, {"start": start, "end": end}).fetch_arrow_table()
    finally:
        engine.close()
    n = table.num_rows
    table = table.append_column("day", pa.array([day] * n, pa.date32()))
    stamp = pa.array([now or datetime.now(UTC)] * n, pa.timestamp("us", tz="UTC"))
    table = table.append_column("computed_at", stamp)
    return table.select(DAILY_TRACK_METRICS.columns).cast(DAILY_TRACK_METRICS.schema)


# A unit is active within the last k days when its latest day is; one
# group-by over the month's partitions gives DAU, WAU and MAU (units keyed
# by (user_id, anonymous_id without a user): no strings built per row).
KPIS_ACTIVE_SQL = """
select count_if(last = {day}) as dau, count_if(last >= {week}) as wau, count(*) as mau
from (select max(day) as last from events
      where day >= {month} and day <= {day}
        and (user_id is not null or anonymous_id is not null)
      group by user_id, case when user_id is null then anonymous_id end)
"""

KPIS_EVENTS_SQL = f"""
select count_if(type in {_sql_in(SIGNUP_TYPES)}) as new_users,
       count_if(type in {_sql_in(SHARE_TYPES)}) as shares,
       count_if(type in {_sql_in(REQUEST_TYPES)}) as requests,
       count_if((type = 'conversion' and not list_contains(flags, 'no_exposure'))
                or type = 'checkout_completed') as conversions,
       count_if(type = 'exposure' and experiment_id = 'pricing_page') as pricing_exposures,
       count_if(experiment_id = 'pricing_page' and event = 'checkout_completed'
                and not list_contains(flags, 'no_exposure')) as pricing_checkouts
from events where day = {{day}}
"""

KPIS_OTHER_SQL = """
with s as (select * from listener_sessions where day = {day}),
points as (
  select started_at as t, 1 as d from s union all select ended_at as t, -1 as d from s
),
swept as (select sum(d) over (order by t, d rows unbounded preceding) as open from points),
p as (select * from plays where started_at >= $start and started_at < $end),
g as (
  select t.backend, t.generation_s, sc.passed
  from (select track_id, backend, generation_s from tracks
        where created_at >= $start and created_at < $end) t
  left join (select track_id, passed from track_scores) sc on t.track_id = sc.track_id
)
select (select count(*) from s) as sessions,
       (select coalesce(sum(listening_s), 0.0) from s) as listening_s,
       (select coalesce(max(open), 0) from swept) as peak,
       (select count(*) from p) as plays,
       (select max(listeners) from p) as max_listeners,
       (select coalesce(sum((epoch_us(ended_at) - epoch_us(started_at)) / 1e6), 0.0)
          from p where ended_at is not null) as aired_s,
       (select count(*) from tracks where created_at >= $start and created_at < $end)
         as generation_count,
       (select count(passed) from g) as scored,
       (select count_if(passed) from g) as passed,
       (select coalesce(sum(generation_s), 0.0) from g where backend = 'procedural') as cpu_s,
       (select coalesce(sum(generation_s), 0.0) from g where backend <> 'procedural') as gpu_s,
       (select count(*) from votes where day = {day} and action = 'cast') as votes
"""


def kpis_daily_duckdb(*, lh: Lakehouse, day: date, now: datetime | None = None) -> pa.Table:
    """:func:`kpis_daily_polars` as DuckDB SQL over the Delta tables: the
    active units of the day, week and month in one group-by."""
    now = now or datetime.now(UTC)
    start, end = day_bounds(day)
    names = ("events", "listener_sessions", "plays", "votes", "tracks", "track_scores")
    engine = duck_engine(lh, names)
    days = {
        "{day}": _date_sql(day),
        "{week}": _date_sql(day - timedelta(days=6)),
        "{month}": _date_sql(day - timedelta(days=29)),
    }

    def fill(sql: str) -> str:
        for key, value in days.items():
            sql = sql.replace(key, value)
        return sql

    try:
        ev: dict[str, Any] = {}
        for sql in (KPIS_ACTIVE_SQL, KPIS_EVENTS_SQL):
            cur = engine.con.execute(fill(sql))
            ev |= dict(zip([d[0] for d in cur.description], cur.fetchone() or (), strict=True))
        cur = engine.con.execute(fill(KPIS_OTHER_SQL), {"start": start, "end": end})
        o = dict(zip([d[0] for d in cur.description], cur.fetchone() or (), strict=True))
    finally:
        engine.close()
    elapsed = max(1.0, (min(now, end) - start).total_seconds())
    listening_s = float(o["listening_s"])
    peak = int(o["peak"])
    if o["plays"] and o["max_listeners"] is not None:
        peak = max(peak, int(o["max_listeners"]))
    aired_h = float(o["aired_s"]) / 3600.0
    cpu_s, gpu_s = float(o["cpu_s"]), float(o["gpu_s"])
    row: dict[str, Any] = {
        "day": day,
        "peak_concurrent_listeners": peak,
        "mean_concurrent_listeners": listening_s / elapsed,
        "listening_hours": listening_s / 3600.0,
        "sessions": int(o["sessions"]),
        "dau": int(ev["dau"]),
        "wau": int(ev["wau"]),
        "mau": int(ev["mau"]),
        "new_users": int(ev["new_users"]),
        "votes": int(o["votes"]),
        "shares": int(ev["shares"]),
        "requests": int(ev["requests"]),
        "plays": int(o["plays"]),
        "aired_hours": aired_h,
        "generation_count": int(o["generation_count"]),
        "generation_pass_rate": float(o["passed"]) / o["scored"] if o["scored"] else None,
        "generation_cpu_s": cpu_s,
        "generation_gpu_s": gpu_s,
        "generation_s_per_aired_hour": (cpu_s + gpu_s) / aired_h if aired_h > 0 else None,
        "conversions": int(ev["conversions"]),
        "checkout_conversion_rate": (
            ev["pricing_checkouts"] / ev["pricing_exposures"] if ev["pricing_exposures"] else None
        ),
        "mrr": None,
        "computed_at": now,
    }
    return pa.Table.from_pylist([row], schema=KPIS_DAILY.schema)


# What the assets run, per asset, by the measurements above.
daily_track_metrics = daily_track_metrics_duckdb
kpis_daily = kpis_daily_duckdb

# The engine each asset runs (bench/analytics.py prints it beside both timings).
ENGINES = {"listener_sessions": "polars", "daily_track_metrics": "duckdb", "kpis_daily": "duckdb"}
