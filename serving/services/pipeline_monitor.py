"""What the operator console shows of the pipeline: the latest Dagster runs
(any job, however launched) and the air-feed sensor's last decision.

Read through the same launcher the API launches with: Dagster's GraphQL
API (``make run``, production), or the local instance (embedded). Reads
only; nothing here starts or stops anything.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import anyio
from pydantic import Field

from serving.exceptions import UpstreamError
from serving.schemas.common import Schema
from serving.schemas.pipeline import PipelineRunPublic
from serving.services.dagster import (
    PARTITION_TAG,
    GraphQLLauncher,
    PipelineLauncher,
    utc_from_timestamp,
)

SENSOR_NAME = "air_feed_sensor"

RUNS = """
query SonicForgeRecentRuns($limit: Int!) {
  runsOrError(limit: $limit) {
    __typename
    ... on Runs { results { runId status jobName startTime endTime tags { key value } } }
    ... on PythonError { message }
  }
}
"""

SENSOR = """
query SonicForgeSensor($selector: SensorSelector!) {
  sensorOrError(sensorSelector: $selector) {
    __typename
    ... on Sensor {
      name
      sensorState {
        status
        ticks(limit: 1) { status timestamp skipReason runIds error { message } }
      }
    }
    ... on SensorNotFoundError { message }
    ... on PythonError { message }
  }
}
"""


class RunsPublic(Schema):
    items: list[PipelineRunPublic]


class SensorTickPublic(Schema):
    status: str = Field(
        examples=["SKIPPED"], description="SUCCESS (runs requested), SKIPPED, FAILURE."
    )
    at: datetime | None
    skip_reason: str | None = Field(examples=["4.1 h of unplayed airtime, above the 2.0 h floor"])
    run_ids: list[str]
    error: str | None


class SensorPublic(Schema):
    name: str = Field(examples=[SENSOR_NAME])
    status: str = Field(examples=["RUNNING"], description="RUNNING or STOPPED in the instance.")
    last_tick: SensorTickPublic | None = Field(description="Its last evaluation, if any.")
    available: bool = Field(description="False when the launcher cannot read sensors (embedded).")


async def recent_runs(pipeline: PipelineLauncher, *, limit: int) -> RunsPublic:
    if isinstance(pipeline, GraphQLLauncher):
        data = (await pipeline._call(RUNS, {"limit": limit}))["runsOrError"]
        if data["__typename"] != "Runs":
            raise UpstreamError(f"Dagster could not list runs: {data.get('message', '')}")
        return RunsPublic(items=[_graphql_run(r, pipeline) for r in data["results"]])
    instance = getattr(pipeline, "instance", None)
    if callable(instance):

        def work() -> RunsPublic:
            records = instance().get_run_records(limit=limit)
            return RunsPublic(items=[_record_run(r, pipeline) for r in records])

        return await anyio.to_thread.run_sync(work)
    return RunsPublic(items=[])


def _graphql_run(r: dict[str, Any], pipeline: PipelineLauncher) -> PipelineRunPublic:
    tags = {t["key"]: t["value"] for t in r.get("tags") or []}
    return PipelineRunPublic(
        run_id=r["runId"],
        batch_id=tags.get(PARTITION_TAG),
        status=r["status"],
        mode=pipeline.mode,
        job_name=r["jobName"],
        started_at=utc_from_timestamp(r.get("startTime")),
        ended_at=utc_from_timestamp(r.get("endTime")),
    )


def _record_run(record: Any, pipeline: PipelineLauncher) -> PipelineRunPublic:
    run = record.dagster_run
    return PipelineRunPublic(
        run_id=run.run_id,
        batch_id=run.tags.get(PARTITION_TAG),
        status=run.status.value,
        mode=pipeline.mode,
        job_name=run.job_name,
        started_at=utc_from_timestamp(record.start_time),
        ended_at=utc_from_timestamp(record.end_time),
    )


async def air_feed_sensor(pipeline: PipelineLauncher) -> SensorPublic:
    if not isinstance(pipeline, GraphQLLauncher):
        # The daemon evaluates sensors; an embedded API has no daemon to ask.
        return SensorPublic(name=SENSOR_NAME, status="UNKNOWN", last_tick=None, available=False)
    selector = {**pipeline.repository_selector, "sensorName": SENSOR_NAME}
    data = (await pipeline._call(SENSOR, {"selector": selector}))["sensorOrError"]
    if data["__typename"] != "Sensor":
        return SensorPublic(name=SENSOR_NAME, status="MISSING", last_tick=None, available=False)
    state = data["sensorState"]
    ticks = state.get("ticks") or []
    tick = None
    if ticks:
        t = ticks[0]
        tick = SensorTickPublic(
            status=t["status"],
            at=utc_from_timestamp(t.get("timestamp")),
            skip_reason=t.get("skipReason"),
            run_ids=list(t.get("runIds") or []),
            error=(t.get("error") or {}).get("message"),
        )
    return SensorPublic(name=data["name"], status=state["status"], last_tick=tick, available=True)
