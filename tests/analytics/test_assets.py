"""The analytics assets in Dagster: the definitions load, the drain and the
derived tables materialize into a temporary lakehouse and read back, each
check passes on good data and fails on broken data, and the drain sensor
asks for a run only when the outbox holds events."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from analytics import writes
from assets.analytics import (
    ANALYTICS_CHECKS,
    AppDatabaseResource,
    check_daily_track_metrics,
    check_kpis,
    check_sessions,
    daily_track_metrics,
    daily_track_metrics_match_plays,
    events_exactly_once,
    experiment_results,
    experiment_results_match_exposures,
    kpis_are_consistent,
    kpis_daily,
    listener_sessions,
    outbox_drain,
    outbox_drain_sensor,
    sessions_account_for_every_heartbeat,
    trending_ranks_are_a_ranking,
    trending_tracks,
)
from orchestration.resources import LocalLakehouseResource
from serving.db.session import Database
from serving.services.outbox import record_event
from sonicforge.lakehouse import Lakehouse

DAY = date(2026, 11, 20)
T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


@pytest.fixture
def app_db_sqlite(tmp_path: Path) -> Database:
    db = Database(f"sqlite:///{tmp_path / 'app.db'}")
    db.migrate()
    return db


def _resources(lh: Lakehouse, db: Database) -> dict[str, Any]:
    return {"lakehouse": LocalLakehouseResource(root=lh.root_uri),
            "app_db": AppDatabaseResource(url=str(db.url))}  # fmt: skip


def _fill(db: Database, lh: Lakehouse) -> None:
    with db.session() as s:
        for i in range(30):  # three listeners, heartbeats every 6 s on track t-1
            record_event(s, "track", event="heartbeat", anonymous_id=f"a{i % 3}", track_id="t-1",
                         properties={"seconds": 6, "output": "hls"},
                         ts=T0 + timedelta(seconds=2 * i))  # fmt: skip
        record_event(s, "vote", user_id="u1", track_id="t-1", properties={"stars": 5},
                     ts=T0)  # fmt: skip
        record_event(s, "share_created", user_id="u1", track_id="t-1", ts=T0)
        record_event(s, "user_registered", user_id="u1", ts=T0)
        record_event(s, "exposure", user_id="u1", experiment_id="player_layout",
                     variant="classic", properties={"unit_id": "u:u1"}, ts=T0)  # fmt: skip
        s.commit()
    lh.insert_new("plays", [
        {"play_id": f"p{i}", "track_id": "t-1", "started_at": T0 + timedelta(minutes=3 * i),
         "ended_at": T0 + timedelta(minutes=3 * i + 3), "listeners": 3, "skipped": i == 1,
         "channel": "main"} for i in range(3)
    ])  # fmt: skip


def _check_passed(result: dg.ExecuteInProcessResult, name: str) -> bool:
    evals = [e for e in result.get_asset_check_evaluations() if e.check_name == name]
    assert evals, f"{name} did not run"
    return all(e.passed for e in evals)


def test_the_definitions_load() -> None:
    from orchestration.definitions import defs

    for job in ("analytics_drain_job", "analytics_daily_job", "analytics_snapshot_job",
                "event_compaction_job"):  # fmt: skip
        defs.resolve_job_def(job)
    assert defs.resolve_sensor_def("outbox_drain_sensor")
    assert {c.key.name for c in ANALYTICS_CHECKS for c in c.check_specs} >= {
        "events_exactly_once", "kpis_are_consistent"
    }  # fmt: skip


def test_the_pipeline_materializes_and_its_checks_pass(
    lakehouse: Lakehouse, app_db_sqlite: Database
) -> None:
    _fill(app_db_sqlite, lakehouse)
    res = _resources(lakehouse, app_db_sqlite)
    drained = dg.materialize([outbox_drain, events_exactly_once], resources=res)
    assert drained.success and _check_passed(drained, "events_exactly_once")
    assert lakehouse.count("events") == 34 and lakehouse.count("votes") == 1

    daily = dg.materialize(
        [listener_sessions, daily_track_metrics, kpis_daily, sessions_account_for_every_heartbeat,
         daily_track_metrics_match_plays, kpis_are_consistent],
        resources=res, partition_key=DAY.isoformat(),
    )  # fmt: skip
    assert daily.success
    for name in ("sessions_account_for_every_heartbeat", "daily_track_metrics_match_plays",
                 "kpis_are_consistent"):  # fmt: skip
        assert _check_passed(daily, name), name
    (metrics,) = lakehouse.read("daily_track_metrics", where={"day": DAY}).to_pylist()
    assert (metrics["plays"], metrics["unique_listeners"], metrics["votes"], metrics["shares"]) == (
        3, 3, 1, 1,
    )  # fmt: skip
    assert metrics["skip_rate"] == pytest.approx(1 / 3)
    (kpi,) = lakehouse.read("kpis_daily", where={"day": DAY}).to_pylist()
    assert kpi["dau"] == 4 and kpi["new_users"] == 1 and kpi["votes"] == 1
    assert lakehouse.count("listener_sessions") == 3

    again = dg.materialize([listener_sessions], resources=res, partition_key=DAY.isoformat())
    assert again.success and lakehouse.count("listener_sessions") == 3  # replaced, not added

    snap = dg.materialize(
        [trending_tracks, experiment_results, trending_ranks_are_a_ranking,
         experiment_results_match_exposures], resources=res,
    )  # fmt: skip
    assert snap.success
    assert _check_passed(snap, "trending_ranks_are_a_ranking")
    assert _check_passed(snap, "experiment_results_match_exposures")
    results = {
        (r["experiment_id"], r["variant"]): r
        for r in lakehouse.read("experiment_results").to_pylist()
    }
    assert results[("player_layout", "classic")]["exposures"] == 1


def test_checks_fail_on_broken_data(lakehouse: Lakehouse, app_db_sqlite: Database) -> None:
    _fill(app_db_sqlite, lakehouse)
    res = _resources(lakehouse, app_db_sqlite)
    dg.materialize([outbox_drain], resources=res)
    dg.materialize([daily_track_metrics], resources=res, partition_key=DAY.isoformat())
    # A metrics row claims a skip rate above 1 and more plays than were aired.
    row = lakehouse.read("daily_track_metrics", where={"day": DAY}).to_pylist()[0]
    row |= {"skip_rate": 1.5, "plays": 99}
    writes.replace_day(lakehouse, "daily_track_metrics", [row], DAY)  # type: ignore[arg-type]
    # An event written twice (a drain that forgot its mark and had no recovery).
    from deltalake import write_deltalake

    write_deltalake(
        lakehouse.table_uri("events"), lakehouse.read("events").slice(0, 1), mode="append"
    )
    events = dg.materialize(
        [outbox_drain, events_exactly_once], resources=res, raise_on_error=False,
        selection=dg.AssetSelection.checks(events_exactly_once),
    )  # fmt: skip
    assert not _check_passed(events, "events_exactly_once")
    assert not check_daily_track_metrics(lakehouse, DAY).passed
    assert check_daily_track_metrics(lakehouse, DAY - timedelta(days=1)).passed  # an empty day


def test_the_kpi_and_session_checks_catch_inconsistent_rows(
    lakehouse: Lakehouse, app_db_sqlite: Database
) -> None:
    _fill(app_db_sqlite, lakehouse)
    res = _resources(lakehouse, app_db_sqlite)
    dg.materialize([outbox_drain], resources=res)
    dg.materialize([listener_sessions, kpis_daily], resources=res, partition_key=DAY.isoformat())
    assert check_kpis(lakehouse, DAY).passed and check_sessions(lakehouse, DAY).passed
    (kpi,) = lakehouse.read("kpis_daily", where={"day": DAY}).to_pylist()
    writes.replace_day(lakehouse, "kpis_daily", [kpi | {"wau": kpi["dau"] - 1}], DAY)  # type: ignore[arg-type]
    assert not check_kpis(lakehouse, DAY).passed
    sessions = lakehouse.read("listener_sessions", where={"day": DAY}).to_pylist()
    writes.replace_day(lakehouse, "listener_sessions", sessions[:1], DAY)  # type: ignore[arg-type]
    result = check_sessions(lakehouse, DAY)
    assert not result.passed  # heartbeats of the dropped sessions are missing


def test_the_sensor_asks_for_a_drain_only_with_pending_events(app_db_sqlite: Database) -> None:
    resources = {"app_db": AppDatabaseResource(url=str(app_db_sqlite.url))}
    with dg.instance_for_test() as instance:
        ctx = dg.build_sensor_context(instance=instance, resources=resources)
        assert isinstance(outbox_drain_sensor(ctx), dg.SkipReason)
        with app_db_sqlite.session() as s:
            record_event(s, "track", event="x", anonymous_id="a")
            s.commit()
        result = outbox_drain_sensor(
            dg.build_sensor_context(instance=instance, resources=resources)
        )
        assert isinstance(result, dg.SensorResult) and len(result.run_requests or []) == 1
