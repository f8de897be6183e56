"""The air-feed sensor: unplayed airtime from the lakehouse, and a
generation run for a new batch partition when it runs low."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import pytest

from orchestration.jobs import GENERATE_JOB
from orchestration.partitions import BATCHES
from orchestration.resources import LocalLakehouseResource
from orchestration.sensors import (
    MAX_TRACKS_PER_RUN,
    SENSOR_NAME,
    SENSOR_TAG,
    air_feed_sensor,
    tracks_to_cover,
    unplayed_airtime_s,
)
from sonicforge.lakehouse import Lakehouse
from sonicforge.settings import get_settings

NOW = datetime.now(UTC)


def rotate(
    lakehouse: Lakehouse, rows: list[tuple[str, float, datetime | None, datetime | None]]
) -> None:
    lakehouse.upsert(
        "rotation",
        [
            {
                "track_id": tid, "batch_id": "b", "genre": "house", "weight": 1.0,
                "duration_s": dur, "quality_score": 70.0,
                "eligible_from": eligible or NOW - timedelta(days=1), "retired_at": retired,
            }
            for tid, dur, eligible, retired in rows
        ],
    )  # fmt: skip


def play(lakehouse: Lakehouse, *track_ids: str) -> None:
    lakehouse.upsert(
        "plays",
        [
            {"play_id": f"p-{t}", "track_id": t, "started_at": NOW, "ended_at": NOW,
             "listeners": 1, "skipped": False, "channel": "main"}
            for t in track_ids
        ],
    )  # fmt: skip


def test_unplayed_airtime_counts_only_airable_unplayed_tracks(lakehouse: Lakehouse) -> None:
    assert unplayed_airtime_s(lakehouse, now=NOW) == 0.0
    rotate(
        lakehouse,
        [
            ("a", 100.0, None, None),
            ("b", 200.0, None, None),
            ("future", 400.0, NOW + timedelta(hours=1), None),
            ("retired", 800.0, None, NOW - timedelta(minutes=1)),
        ],
    )
    assert unplayed_airtime_s(lakehouse, now=NOW) == 300.0
    play(lakehouse, "a")
    assert unplayed_airtime_s(lakehouse, now=NOW) == 200.0


@pytest.mark.parametrize(
    ("shortfall", "expected"), [(1.0, 1), (180.0, 1), (181.0, 2), (7200.0, MAX_TRACKS_PER_RUN)]
)
def test_batch_size_covers_the_shortfall(shortfall: float, expected: int) -> None:
    assert tracks_to_cover(shortfall, 180.0) == expected


def _evaluate(
    lakehouse: Lakehouse, instance: dg.DagsterInstance
) -> dg.SensorResult | dg.SkipReason:
    context = dg.build_sensor_context(
        instance=instance, resources={"lakehouse": LocalLakehouseResource(root=lakehouse.root_uri)}
    )
    return air_feed_sensor(context)  # type: ignore[return-value]


def test_requests_a_run_for_a_new_partition_when_airtime_runs_low(
    lakehouse: Lakehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SONICFORGE_STREAM_MIN_UNPLAYED_AIRTIME_S", "1000")
    get_settings.cache_clear()
    rotate(lakehouse, [("a", 300.0, None, None), ("b", 300.0, None, None)])
    with dg.instance_for_test() as instance:
        result = _evaluate(lakehouse, instance)
        assert isinstance(result, dg.SensorResult)
        [request] = result.run_requests or []
        [add] = result.dynamic_partitions_requests or []
        assert isinstance(add, dg.AddDynamicPartitionsRequest)
        assert add.partitions_def_name == BATCHES and add.partition_keys == [request.partition_key]
        assert request.run_key == request.partition_key
        assert request.tags[SENSOR_TAG] == SENSOR_NAME
        assert request.run_config["ops"]["generated_tracks"]["config"]["count"] == 3  # 400 s short
        assert air_feed_sensor.job_name == GENERATE_JOB


def test_skips_when_enough_airtime(lakehouse: Lakehouse, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SONICFORGE_STREAM_MIN_UNPLAYED_AIRTIME_S", "500")
    get_settings.cache_clear()
    rotate(lakehouse, [("a", 300.0, None, None), ("b", 300.0, None, None)])
    with dg.instance_for_test() as instance:
        result = _evaluate(lakehouse, instance)
    assert isinstance(result, dg.SkipReason) and "600 s of unplayed airtime" in str(
        result.skip_message
    )


def _started_run(instance: dg.DagsterInstance, launched_by: str = SENSOR_NAME) -> dg.DagsterRun:
    """A generation run in STARTED, as a launcher tagged it."""
    from dagster._core.test_utils import create_run_for_test

    return create_run_for_test(
        instance,
        job_name=GENERATE_JOB,
        status=dg.DagsterRunStatus.STARTED,
        tags={SENSOR_TAG: launched_by},
    )


def test_waits_while_its_run_is_in_flight(lakehouse: Lakehouse) -> None:
    with dg.instance_for_test() as instance:
        run = _started_run(instance)
        result = _evaluate(lakehouse, instance)
        assert isinstance(result, dg.SkipReason) and run.run_id in str(result.skip_message)


def test_definitions_load_with_the_sensor() -> None:
    from orchestration.definitions import defs

    assert defs.resolve_sensor_def(SENSOR_NAME).job_name == GENERATE_JOB


# -- runs that died: run monitoring, the sensor's timeout, dead local workers --

# A stand-in for a generation run's worker: it records a run of the
# generation job in the instance (tagged as the sensor's) and blocks in it.
HANGING_RUN = """
import time
import dagster as dg

@dg.op
def hang() -> None:
    print("started", flush=True)
    time.sleep(600)

@dg.job(name="generate_tracks_job")
def job() -> None:
    hang()

job.execute_in_process(
    instance=dg.DagsterInstance.get(), tags={"sonicforge/launched_by": "air_feed_sensor"}
)
"""


def test_the_embedded_instance_monitors_runs(tmp_path: Path) -> None:
    from orchestration.launch import ensure_dagster_home

    home = Path(ensure_dagster_home())
    with dg.DagsterInstance.from_config(str(home)) as instance:
        assert instance.run_monitoring_enabled
        assert instance.run_monitoring_max_runtime_seconds == 3600
        queue = instance.get_concurrency_config().run_queue_config
        assert queue is not None and queue.max_concurrent_runs == 1
    # An embedded file of an earlier version is brought up to date ...
    (home / "dagster.yaml").write_text("# Embedded instance: SQLite storage under DAGSTER_HOME.\n")
    ensure_dagster_home()
    assert "run_monitoring:" in (home / "dagster.yaml").read_text()
    # ... a production one is left as it is.
    (home / "dagster.yaml").write_text("run_launcher:\n  module: x\n")
    ensure_dagster_home()
    assert (home / "dagster.yaml").read_text() == "run_launcher:\n  module: x\n"


def test_requests_a_new_run_once_the_running_ones_process_is_killed(
    lakehouse: Lakehouse, tmp_path: Path
) -> None:
    import os
    import signal
    import subprocess
    import sys
    import time

    from orchestration.launch import ensure_dagster_home

    ensure_dagster_home()
    worker = subprocess.Popen(
        [sys.executable, "-c", HANGING_RUN], stdout=subprocess.PIPE, text=True
    )
    try:
        assert worker.stdout is not None and worker.stdout.readline().strip() == "started"
        with dg.DagsterInstance.get() as instance:
            [record] = instance.get_run_records(dg.RunsFilter(job_name=GENERATE_JOB))
            assert record.dagster_run.status == dg.DagsterRunStatus.STARTED
            first = _evaluate(lakehouse, instance)
            assert isinstance(first, dg.SkipReason), "a live run is waited for"
            assert "still generating" in str(first.skip_message)

            os.kill(worker.pid, signal.SIGKILL)
            worker.wait(timeout=30)
            results = []
            for _ in range(3):  # "within a few ticks"
                results.append(_evaluate(lakehouse, instance))
                if isinstance(results[-1], dg.SensorResult):
                    break
                time.sleep(0.5)
            assert isinstance(results[-1], dg.SensorResult), results
            assert len(results[-1].run_requests or []) == 1
            dead = instance.get_run_by_id(record.dagster_run.run_id)
            assert dead is not None and dead.status == dg.DagsterRunStatus.FAILURE
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()


def test_a_run_in_flight_past_the_timeout_is_not_waited_for(lakehouse: Lakehouse) -> None:
    from orchestration.sensors import generating_run

    with dg.instance_for_test() as instance:
        run = _started_run(instance)
        now = datetime.now(UTC).timestamp()
        found = generating_run(instance, now=now, timeout_s=3600)
        assert found is not None and found.dagster_run.run_id == run.run_id
        assert generating_run(instance, now=now + 3601, timeout_s=3600) is None


def test_waits_for_the_first_batch_of_make_run(lakehouse: Lakehouse) -> None:
    from orchestration.launch import FIRST_BATCH

    with dg.instance_for_test() as instance:
        _started_run(instance, "api")
        assert isinstance(_evaluate(lakehouse, instance), dg.SensorResult), (
            "a listener's request does not hold up the feed"
        )
        first = _started_run(instance, FIRST_BATCH)
        result = _evaluate(lakehouse, instance)
        assert isinstance(result, dg.SkipReason) and first.run_id in str(result.skip_message)


def test_its_runs_execute_in_one_process(lakehouse: Lakehouse) -> None:
    with dg.instance_for_test() as instance:
        result = _evaluate(lakehouse, instance)
    assert isinstance(result, dg.SensorResult)
    [request] = result.run_requests or []
    assert request.run_config["execution"] == {"config": {"in_process": {}}}
