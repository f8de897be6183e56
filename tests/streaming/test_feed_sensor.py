"""The air-feed sensor: unplayed airtime from the lakehouse, and a
generation run for a new batch partition when it runs low."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

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


def test_waits_while_its_run_is_in_flight(lakehouse: Lakehouse) -> None:
    from dagster._core.test_utils import create_run_for_test

    with dg.instance_for_test() as instance:
        run = create_run_for_test(
            instance,
            job_name=GENERATE_JOB,
            status=dg.DagsterRunStatus.STARTED,
            tags={SENSOR_TAG: SENSOR_NAME},
        )
        result = _evaluate(lakehouse, instance)
        assert isinstance(result, dg.SkipReason) and run.run_id in str(result.skip_message)


def test_definitions_load_with_the_sensor() -> None:
    from orchestration.definitions import defs

    assert defs.resolve_sensor_def(SENSOR_NAME).job_name == GENERATE_JOB
