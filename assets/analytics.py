"""Analytics assets: listener data drained into Delta, and the tables made
from it (sessions, daily track metrics, trending, KPIs, experiment
results), their great-expectations checks, the drain sensor, the hourly
refresh and the event tables' compaction.

The logic lives in ``analytics`` (plain Python, tested without Dagster);
these functions read, call and write.
"""

# No ``from __future__ import annotations``: Dagster reads the annotations.
import json
import warnings
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

import dagster as dg
import pandas as pd
from pydantic import Field

from analytics import transforms, writes
from analytics.quality import Expect, between, ids_unique_not_null, validate
from orchestration.resources import LakehouseResource
from sonicforge.lakehouse import Lakehouse
from sonicforge.settings import get_settings

warnings.filterwarnings("ignore", message="Specifying a partitions_def on an AssetCheckSpec")

GROUP = "analytics"
daily = dg.DailyPartitionsDefinition(start_date="2026-11-01", timezone="UTC", end_offset=1)


class AppDatabaseResource(dg.ConfigurableResource):
    """The app database whose outbox the drain empties (SQLite or PostgreSQL)."""

    url: str = Field(description="SQLAlchemy URL of the app database.")
    db_schema: str | None = Field(default=None, description="PostgreSQL schema (search_path).")

    def engine(self) -> Any:
        from serving.db.session import create_db_engine

        return create_db_engine(self.url, schema=self.db_schema)


def analytics_resources() -> dict[str, Any]:
    return {"app_db": AppDatabaseResource(url=get_settings().resolved_app_database_url)}


class DrainConfig(dg.Config):
    batch_size: int | None = Field(default=None, ge=100, le=1_000_000)
    max_batches: int | None = Field(default=None, ge=1)


def _day(context: dg.AssetExecutionContext) -> date:
    return date.fromisoformat(context.partition_key)


# -- the drain -------------------------------------------------------------------


@dg.multi_asset(
    specs=[
        dg.AssetSpec("events", group_name=GROUP, kinds={"deltalake", "sql"},
                     description="Every listener and app event, drained from the outbox."),
        dg.AssetSpec("votes", group_name=GROUP, kinds={"deltalake", "sql"},
                     description="Every vote cast or withdrawn, from the outbox's vote events."),
    ],
    can_subset=False,
)  # fmt: skip
def outbox_drain(
    context: dg.AssetExecutionContext,
    config: DrainConfig,
    lakehouse: LakehouseResource,
    app_db: AppDatabaseResource,
) -> Any:
    """Drain the app DB outbox into ``events``, ``votes`` (and outbox ``play`` events into ``plays``)."""
    from analytics.drain import OutboxDrain, app_id_for

    settings = get_settings()
    engine = app_db.engine()
    try:
        drain = OutboxDrain(
            engine, lakehouse.open(),
            batch_size=config.batch_size or settings.analytics_drain_batch,
            retention_h=settings.analytics_outbox_retention_h,
            app_id=app_id_for(app_db.url, app_db.db_schema),
        )  # fmt: skip
        report = drain.run(max_batches=config.max_batches)
        pending, oldest = drain.pending()
    finally:
        engine.dispose()
    common: dict[str, Any] = {
        "batches": report.batches,
        "recovered_batches": report.recovered_batches,
        "rows_per_s": round(report.rows_per_s, 1),
        "purged": report.purged,
        "pending": pending,
        "oldest_pending": str(oldest) if oldest else "none",
    }
    yield dg.MaterializeResult(
        asset_key="events", metadata={"rows": report.per_table.get("events", 0), **common}
    )
    yield dg.MaterializeResult(asset_key="votes", metadata={"rows": report.votes})


plays = dg.AssetSpec(
    "plays", group_name=GROUP, kinds={"deltalake"},
    description="Every airing of a track, written by the streaming service (merged on play_id).",
)  # fmt: skip


# -- derived tables ---------------------------------------------------------------


@dg.asset(partitions_def=daily, group_name=GROUP, kinds={"polars", "deltalake"}, deps=["events"])
def listener_sessions(
    context: dg.AssetExecutionContext, lakehouse: LakehouseResource
) -> dg.MaterializeResult:
    """Listening sessions of the day from player heartbeats, per output."""
    lh, day = lakehouse.open(), _day(context)
    table = transforms.listener_sessions(
        transforms.scan(lh, "events"), day, segment_s=get_settings().stream_hls_segment_s
    )
    n = writes.replace_day(lh, "listener_sessions", table, day)
    hours = sum(table["listening_s"].to_pylist()) / 3600 if n else 0.0
    return dg.MaterializeResult(metadata={"rows": n, "listening_hours": round(hours, 3)})


@dg.asset(
    partitions_def=daily, group_name=GROUP, kinds={"duckdb", "deltalake"},
    deps=["events", "votes", "plays"],
)  # fmt: skip
def daily_track_metrics(
    context: dg.AssetExecutionContext, lakehouse: LakehouseResource
) -> dg.MaterializeResult:
    """Per track and day: plays, unique listeners, completion and skip rates, votes, shares."""
    lh, day = lakehouse.open(), _day(context)
    # DuckDB SQL: faster than the polars plan on a day of 10M events (bench/analytics.py).
    table = transforms.daily_track_metrics_duckdb(lh=lh, day=day)
    n = writes.replace_day(lh, "daily_track_metrics", table, day)
    top = table.sort_by([("plays", "descending")]).slice(0, 5)
    preview = top.select(["track_id", "plays", "unique_listeners", "skip_rate"]).to_pylist()
    return dg.MaterializeResult(metadata={"rows": n, "preview": dg.MetadataValue.json(preview)})


@dg.asset(group_name=GROUP, kinds={"polars", "deltalake"}, deps=["events", "votes", "plays"])
def trending_tracks(lakehouse: LakehouseResource) -> dg.MaterializeResult:
    """Tracks ranked by a time-decayed score of plays, votes and shares."""
    lh = lakehouse.open()
    half_life = get_settings().analytics_trending_half_life_h
    table = transforms.trending_tracks(
        plays=transforms.scan(lh, "plays"), votes=transforms.scan(lh, "votes"),
        events=transforms.scan(lh, "events"), now=datetime.now(UTC), half_life_h=half_life,
    )  # fmt: skip
    n = writes.replace_all(lh, "trending_tracks", table)
    return dg.MaterializeResult(
        metadata={"rows": n, "half_life_h": half_life,
                  "top": dg.MetadataValue.json(table.slice(0, 5).select(["track_id", "score"]).to_pylist())}
    )  # fmt: skip


@dg.asset(
    partitions_def=daily, group_name=GROUP, kinds={"duckdb", "deltalake"},
    deps=["events", "votes", "plays", listener_sessions, "generated_tracks", "track_scores"],
)  # fmt: skip
def kpis_daily(
    context: dg.AssetExecutionContext, lakehouse: LakehouseResource
) -> dg.MaterializeResult:
    """The station's daily KPIs: listeners, listening hours, active users, generation."""
    lh, day = lakehouse.open(), _day(context)
    # DuckDB SQL: the distinct counts are faster there than in polars (bench/analytics.py).
    table = transforms.kpis_daily_duckdb(lh=lh, day=day)
    writes.replace_day(lh, "kpis_daily", table, day)
    row = table.to_pylist()[0]
    keep = ("dau", "wau", "mau", "listening_hours", "peak_concurrent_listeners", "votes")
    return dg.MaterializeResult(metadata={k: row[k] for k in keep})


@dg.asset(group_name=GROUP, kinds={"polars", "statsmodels", "deltalake"}, deps=["events"])
def experiment_results(lakehouse: LakehouseResource) -> dg.MaterializeResult:
    """Per experiment and variant: exposures, conversions, rate with CI, z-test, SRM check."""
    from analytics.experiment_results import experiment_results as compute

    lh = lakehouse.open()
    table = compute(transforms.scan(lh, "events"))
    n = writes.replace_all(lh, "experiment_results", table)
    summary = {f"{r['experiment_id']}/{r['variant']}": r["status"] for r in table.to_pylist()}
    return dg.MaterializeResult(metadata={"rows": n, "status": dg.MetadataValue.json(summary)})


# -- checks (great-expectations; each measures against a source or a rule) ------------


def _check(
    frame: pd.DataFrame, expectations: Sequence[Expect], *, name: str, extra: dict[str, Any]
) -> dg.AssetCheckResult:
    outcome = validate(frame, expectations, name=name)
    passed = outcome.passed and all(v.get("passed", True) for v in extra.values())
    return dg.AssetCheckResult(
        passed=passed,
        metadata={
            "rows": outcome.rows,
            "failures": dg.MetadataValue.json(_plain(outcome.failures)),
            **{k: dg.MetadataValue.json(_plain(v)) for k, v in extra.items()},
        },
    )


def _plain(value: Any) -> Any:
    """JSON-safe metadata (great-expectations reports numpy numbers)."""
    return json.loads(json.dumps(value, default=str))


def _count(lh: Lakehouse, sql: str, params: list[Any]) -> int:
    from analytics.sql import SqlEngine

    engine = SqlEngine(lh)
    try:
        return int(engine.query(sql, params).column(0)[0].as_py() or 0)
    finally:
        engine.close()


def _not_future(frame: pd.DataFrame) -> dict[str, Any]:
    today = datetime.now(UTC).date()
    latest = max(frame["day"]) if not frame.empty else None
    return {"passed": latest is None or latest <= today, "latest": str(latest), "today": str(today)}


@dg.asset_check(asset="events", blocking=True)
def events_exactly_once(lakehouse: LakehouseResource) -> dg.AssetCheckResult:
    """Every event id is in Delta once: counted again in SQL, over the whole table."""
    lh = lakehouse.open()
    total = _count(lh, "select count(*) from events", [])
    distinct = _count(lh, "select count(distinct event_id) from events", [])
    nulls = _count(lh, "select count(*) from events where event_id is null or ts is null", [])
    future = _count(lh, "select count(*) from events where day > current_date + 1", [])
    passed = total == distinct and nulls == 0 and future == 0
    return dg.AssetCheckResult(
        passed=passed,
        metadata={"rows": total, "distinct_ids": distinct, "null_keys": nulls,
                  "future_days": future, "threshold": "rows == distinct ids, no nulls"},
    )  # fmt: skip


@dg.asset_check(asset=listener_sessions, partitions_def=daily)
def sessions_account_for_every_heartbeat(
    context: dg.AssetCheckExecutionContext, lakehouse: LakehouseResource
) -> dg.AssetCheckResult:
    """Unique session ids, non-negative listening, and as many heartbeats as the events hold."""
    return check_sessions(lakehouse.open(), date.fromisoformat(context.partition_key))


def check_sessions(lh: Lakehouse, day: date) -> dg.AssetCheckResult:
    frame = lh.read("listener_sessions", where={"day": day}).to_pandas()
    source = _count(
        lh,
        "select count(*) from events where day = ? and event = 'heartbeat' "
        "and (user_id is not null or anonymous_id is not null)",
        [day],
    )
    counted = int(frame["heartbeats"].sum()) if not frame.empty else 0
    if frame.empty and source == 0:
        return dg.AssetCheckResult(passed=True, metadata={"rows": 0, "note": "no heartbeats"})
    return _check(
        frame,
        [*ids_unique_not_null("session_id"), between("listening_s", 0, 86400 * 2),
         Expect("ExpectColumnPairValuesAToBeGreaterThanB",
                {"column_A": "ended_at", "column_B": "started_at", "or_equal": True})],
        name="listener_sessions",
        extra={"heartbeats": {"passed": counted == source, "sessions": counted, "events": source},
               "no_future": _not_future(frame)},
    )  # fmt: skip


@dg.asset_check(asset=daily_track_metrics, partitions_def=daily)
def daily_track_metrics_match_plays(
    context: dg.AssetCheckExecutionContext, lakehouse: LakehouseResource
) -> dg.AssetCheckResult:
    """Keys present and unique, rates in [0, 1], plays summing to the plays table's count."""
    return check_daily_track_metrics(lakehouse.open(), date.fromisoformat(context.partition_key))


def check_daily_track_metrics(lh: Lakehouse, day: date) -> dg.AssetCheckResult:
    frame = lh.read("daily_track_metrics", where={"day": day}).to_pandas()
    start = datetime.combine(day, datetime.min.time(), UTC)
    source = _count(
        lh, "select count(*) from plays where started_at >= ? and started_at < ?",
        [start, start + timedelta(days=1)],
    )  # fmt: skip
    if frame.empty and source == 0:
        return dg.AssetCheckResult(passed=True, metadata={"rows": 0, "note": "no plays or events"})
    summed = int(frame["plays"].sum()) if not frame.empty else 0
    return _check(
        frame,
        [Expect("ExpectColumnValuesToNotBeNull", {"column": "track_id"}),
         Expect("ExpectCompoundColumnsToBeUnique", {"column_list": ["day", "track_id"]}),
         between("completion_rate", 0, 1), between("skip_rate", 0, 1),
         between("mean_stars", 1, 5), between("plays", 0, None)],
        name="daily_track_metrics",
        extra={"plays": {"passed": summed == source, "metrics": summed, "plays_table": source},
               "no_future": _not_future(frame)},
    )  # fmt: skip


@dg.asset_check(asset=kpis_daily, partitions_def=daily)
def kpis_are_consistent(
    context: dg.AssetCheckExecutionContext, lakehouse: LakehouseResource
) -> dg.AssetCheckResult:
    """One row for the day, DAU <= WAU <= MAU, rates in [0, 1], votes equal to the votes table's."""
    return check_kpis(lakehouse.open(), date.fromisoformat(context.partition_key))


def check_kpis(lh: Lakehouse, day: date) -> dg.AssetCheckResult:
    frame = lh.read("kpis_daily", where={"day": day}).to_pandas()
    votes = _count(lh, "select count(*) from votes where day = ? and action = 'cast'", [day])
    reported = int(frame["votes"].iloc[0]) if len(frame) == 1 else -1
    return _check(
        frame,
        [Expect("ExpectTableRowCountToEqual", {"value": 1}),
         Expect("ExpectColumnValuesToNotBeNull", {"column": "day"}),
         Expect("ExpectColumnPairValuesAToBeGreaterThanB",
                {"column_A": "wau", "column_B": "dau", "or_equal": True}),
         Expect("ExpectColumnPairValuesAToBeGreaterThanB",
                {"column_A": "mau", "column_B": "wau", "or_equal": True}),
         between("generation_pass_rate", 0, 1), between("checkout_conversion_rate", 0, 1),
         between("listening_hours", 0, None)],
        name="kpis_daily",
        extra={"votes": {"passed": reported == votes, "kpis": reported, "votes_table": votes},
               "no_future": _not_future(frame)},
    )  # fmt: skip


@dg.asset_check(asset=trending_tracks)
def trending_ranks_are_a_ranking(lakehouse: LakehouseResource) -> dg.AssetCheckResult:
    """Unique tracks, ranks 1..n with scores in descending order."""
    frame = lakehouse.open().read("trending_tracks").to_pandas()
    if frame.empty:
        return dg.AssetCheckResult(passed=True, metadata={"rows": 0, "note": "nothing trending"})
    ordered = frame.sort_values("rank")
    monotonic = bool(ordered["score"].is_monotonic_decreasing)
    return _check(
        frame,
        [*ids_unique_not_null("track_id"), *ids_unique_not_null("rank"), between("rank", 1, len(frame))],
        name="trending_tracks",
        extra={"order": {"passed": monotonic}},
    )  # fmt: skip


@dg.asset_check(asset=experiment_results)
def experiment_results_match_exposures(lakehouse: LakehouseResource) -> dg.AssetCheckResult:
    """Rates, intervals and p-values in [0, 1]; exposures equal the exposure events' units."""
    lh = lakehouse.open()
    frame = lh.read("experiment_results").to_pandas()
    source = _count(
        lh,
        "select count(*) from (select distinct experiment_id, coalesce("
        "json_extract_string(properties, '$.unit_id'), "
        "coalesce('u:' || user_id, 'a:' || anonymous_id)) from events where type = 'exposure')",
        [],
    )
    exposures = int(frame["exposures"].sum()) if not frame.empty else 0
    return _check(
        frame,
        [Expect("ExpectCompoundColumnsToBeUnique", {"column_list": ["experiment_id", "variant"]}),
         between("rate", 0, 1), between("p_value", 0, 1), between("srm_p_value", 0, 1)],
        name="experiment_results",
        extra={"exposures": {"passed": exposures <= source, "results": exposures, "events": source}},
    )  # fmt: skip


# -- jobs, schedules, the drain sensor ---------------------------------------------------

events_job = dg.define_asset_job(
    "analytics_drain_job", selection=dg.AssetSelection.assets("events", "votes"),
    description="Drain the app DB outbox into Delta.",
)  # fmt: skip
daily_analytics_job = dg.define_asset_job(
    "analytics_daily_job",
    selection=dg.AssetSelection.assets(listener_sessions, daily_track_metrics, kpis_daily),
    partitions_def=daily,
    description="Sessions, daily track metrics and KPIs of one day.",
)
snapshot_analytics_job = dg.define_asset_job(
    "analytics_snapshot_job",
    selection=dg.AssetSelection.assets(trending_tracks, experiment_results),
    description="Trending tracks and experiment results, now.",
)


@dg.sensor(
    job=events_job, minimum_interval_seconds=30, default_status=dg.DefaultSensorStatus.RUNNING
)
def outbox_drain_sensor(
    context: dg.SensorEvaluationContext, app_db: AppDatabaseResource
) -> dg.SensorResult | dg.SkipReason:
    """Every 30 s: a drain run when the outbox holds events, unless one is in flight,
    so the lag stays under a minute."""
    from analytics.drain import pending_events

    engine = app_db.engine()
    try:
        pending, _oldest = pending_events(engine)
    finally:
        engine.dispose()
    if pending == 0:
        return dg.SkipReason("the outbox is empty")
    active = context.instance.get_runs(
        filters=dg.RunsFilter(job_name=events_job.name,
                              statuses=[dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.STARTED,
                                        dg.DagsterRunStatus.NOT_STARTED]),
        limit=1,
    )  # fmt: skip
    if active:
        return dg.SkipReason(f"a drain run is in flight ({active[0].run_id}); {pending} pending")
    return dg.SensorResult(
        run_requests=[dg.RunRequest(run_key=f"drain-{datetime.now(UTC):%Y%m%dT%H%M%S}",
                                    tags={"sonicforge/pending": str(pending)})]
    )  # fmt: skip


@dg.schedule(job=daily_analytics_job, cron_schedule="10 * * * *", execution_timezone="UTC",
             default_status=dg.DefaultScheduleStatus.RUNNING)  # fmt: skip
def hourly_analytics_schedule(context: dg.ScheduleEvaluationContext) -> list[dg.RunRequest]:
    """Today's partition every hour; yesterday's once more just after midnight (its last hour)."""
    now = context.scheduled_execution_time or datetime.now(UTC)
    days = [now.date()] + ([now.date() - timedelta(days=1)] if now.hour == 0 else [])
    return [dg.RunRequest(run_key=f"{d}-{now:%H}", partition_key=d.isoformat()) for d in days]


snapshot_analytics_schedule = dg.ScheduleDefinition(
    job=snapshot_analytics_job, cron_schedule="15 * * * *", execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
)  # fmt: skip


class CompactionConfig(dg.Config):
    retention_hours: int = 168
    days: int = Field(default=3, ge=1, le=90, description="Recent days compacted each run.")


@dg.op
def compact_event_tables(
    context: dg.OpExecutionContext, config: CompactionConfig, lakehouse: LakehouseResource
) -> dg.Output[dict[str, Any]]:
    """Compact the recent days of the event tables into few files, then vacuum."""
    lh = lakehouse.open()
    today = datetime.now(UTC).date()
    days = [today - timedelta(days=i) for i in range(config.days)]
    report: dict[str, Any] = {}
    for name in ("events", "votes", "listener_sessions"):
        metrics = writes.compact_days(lh, name, days=days)
        removed = lh.vacuum(name, retention_hours=config.retention_hours)
        report[name] = {
            **metrics,
            "vacuumed": len(removed),
            "files_per_day": writes.files_per_day(lh, name),
        }
        context.log.info(f"{name}: {report[name]}")
    return dg.Output(report, metadata={"tables": dg.MetadataValue.json(report)})


@dg.job(description="Compact the event tables' recent days and vacuum them.")
def event_compaction_job() -> None:
    compact_event_tables()


event_compaction_schedule = dg.ScheduleDefinition(
    job=event_compaction_job, cron_schedule="45 */6 * * *", execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
)  # fmt: skip

ANALYTICS_ASSETS: list[dg.AssetsDefinition | dg.AssetSpec] = [
    plays, outbox_drain, listener_sessions, daily_track_metrics, trending_tracks, kpis_daily,
    experiment_results,
]  # fmt: skip
ANALYTICS_CHECKS = [
    events_exactly_once, sessions_account_for_every_heartbeat, daily_track_metrics_match_plays,
    kpis_are_consistent, trending_ranks_are_a_ranking, experiment_results_match_exposures,
]  # fmt: skip
ANALYTICS_JOBS: list[Any] = [  # job definitions, resolved and not
    events_job,
    daily_analytics_job,
    snapshot_analytics_job,
    event_compaction_job,
]
ANALYTICS_SCHEDULES = [
    hourly_analytics_schedule,
    snapshot_analytics_schedule,
    event_compaction_schedule,
]
ANALYTICS_SENSORS = [outbox_drain_sensor]
