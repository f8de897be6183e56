"""Sensors: keep the air fed.

When the rotation holds less unplayed airtime than
``SONICFORGE_STREAM_MIN_UNPLAYED_AIRTIME_S`` (default two hours), the sensor
adds a batch partition and requests a generation run for it, sized to cover
the shortfall. One such run at a time: while one of its runs (or the first
batch ``make run`` puts on air) is in flight it waits, unless that run has
been in flight longer than ``SONICFORGE_GENERATION_RUN_TIMEOUT_S`` or its
process on this machine is gone (then it is marked failed): a run that died
with the stack must not stop fresh music for good.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime

import dagster as dg

from models.recommend.sources import latest_plan_specs
from orchestration.config import GenerationConfig, PlannedTrack
from orchestration.jobs import GENERATE_JOB, generate_tracks_job
from orchestration.launch import (
    FIRST_BATCH,
    LAUNCHED_BY_TAG,
    fail_dead_local_runs,
    run_config_for,
)
from orchestration.partitions import batch_partitions, new_batch_id
from orchestration.resources import LakehouseResource
from sonicforge.lakehouse import Lakehouse
from sonicforge.settings import get_settings

SENSOR_TAG = LAUNCHED_BY_TAG
SENSOR_NAME = "air_feed_sensor"
# A run holds every track of its batch in memory at each step (raw FLAC,
# then masters and renditions): six keep a run near its floor, and the
# sensor asks again at its next tick while the shortfall lasts.
MAX_TRACKS_PER_RUN = 6
IN_FLIGHT = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
]


def unplayed_airtime_s(lakehouse: Lakehouse, *, now: datetime) -> float:
    """Seconds of airable rotation tracks that have never aired."""
    rotation = lakehouse.read(
        "rotation", columns=["track_id", "duration_s", "eligible_from", "retired_at"]
    ).to_pylist()
    played = set(lakehouse.read("plays", columns=["track_id"]).column("track_id").to_pylist())
    return float(
        sum(
            r["duration_s"]
            for r in rotation
            if r["track_id"] not in played
            and (r["eligible_from"] is None or r["eligible_from"] <= now)
            and (r["retired_at"] is None or r["retired_at"] > now)
        )
    )


def tracks_to_cover(shortfall_s: float, duration_s: float) -> int:
    return max(1, min(MAX_TRACKS_PER_RUN, math.ceil(shortfall_s / duration_s)))


def generating_run(
    instance: dg.DagsterInstance, *, now: float, timeout_s: float
) -> dg.RunRecord | None:
    """The feed's generation run still in flight, if any. Runs whose local
    process is gone are marked failed first; runs in flight for longer than
    ``timeout_s`` (started, or created if not yet started) are ignored."""
    records = list(
        instance.get_run_records(
            filters=dg.RunsFilter(
                job_name=GENERATE_JOB,
                statuses=IN_FLIGHT,
                tags={SENSOR_TAG: [SENSOR_NAME, FIRST_BATCH]},
            ),
            limit=20,
        )
    )
    dead = set(fail_dead_local_runs(instance, records))
    for record in records:
        if record.dagster_run.run_id in dead:
            continue
        since = record.start_time or record.create_timestamp.timestamp()
        if now - since <= timeout_s:
            return record
    return None


@dg.sensor(
    name=SENSOR_NAME,
    job=generate_tracks_job,
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Requests a generation run when the rotation's unplayed airtime runs low.",
)
def air_feed_sensor(
    context: dg.SensorEvaluationContext, lakehouse: LakehouseResource
) -> dg.SensorResult | dg.SkipReason:
    """Keeps at least the configured unplayed airtime in the rotation."""
    threshold = get_settings().stream_min_unplayed_airtime_s
    airtime = unplayed_airtime_s(lakehouse.open(), now=datetime.now(UTC))
    if airtime >= threshold:
        return dg.SkipReason(f"{airtime:.0f} s of unplayed airtime, threshold {threshold:.0f} s")
    settings = get_settings()
    running = generating_run(
        context.instance,
        now=datetime.now(UTC).timestamp(),
        timeout_s=settings.generation_run_timeout_s,
    )
    if running is not None:
        return dg.SkipReason(
            f"{airtime:.0f} s of unplayed airtime, but run {running.dagster_run.run_id} "
            "is still generating"
        )
    defaults = GenerationConfig()
    count = tracks_to_cover(threshold - airtime, defaults.duration_s)
    # The generation plan (assets/ml.py) weights genres, tempos, keys and
    # moods by listener demand; before the first plan, the default genres
    # take turns.
    planned = latest_plan_specs(lakehouse.open(), count, seed=int(datetime.now(UTC).timestamp()))
    config = GenerationConfig(
        count=count,
        genres=[p["genre"] for p in planned] if planned else defaults.genres,
        planned=[PlannedTrack(**p) for p in planned] if planned else None,
    )
    batch_id = new_batch_id()
    context.log.info(
        f"unplayed airtime {airtime:.0f} s < {threshold:.0f} s: requesting batch {batch_id} "
        f"of {config.count} tracks"
    )
    return dg.SensorResult(
        run_requests=[
            dg.RunRequest(
                run_key=batch_id,
                partition_key=batch_id,
                run_config=run_config_for(config, in_process=True),
                tags={SENSOR_TAG: SENSOR_NAME, "sonicforge/unplayed_airtime_s": f"{airtime:.0f}"},
            )
        ],
        dynamic_partitions_requests=[batch_partitions.build_add_request([batch_id])],
    )
