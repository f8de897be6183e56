"""The pipeline as the operator console shows it: recent runs, the sensor."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query

from serving.deps import ContextDep, RequirePermission
from serving.routing import ResourceRouter
from serving.schemas.common import error_responses
from serving.security.credentials import Principal
from serving.security.permissions import Permission
from serving.services.pipeline_monitor import RunsPublic, SensorPublic, air_feed_sensor, recent_runs

router = ResourceRouter(prefix="/pipeline", tags=["pipeline"])

Reader = Annotated[Principal, RequirePermission(Permission.PIPELINE_READ)]


@router.get(
    "/runs",
    response_model=RunsPublic,
    responses=error_responses(401, 403, 422, 429, 502),
    summary="The latest Dagster runs, newest first: status, job, batch, start and end",
)
async def read_pipeline_runs(
    _: Reader, ctx: ContextDep, limit: Annotated[int, Query(ge=1, le=50)] = 10
) -> RunsPublic:
    return await recent_runs(ctx.pipeline, limit=limit)


@router.get(
    "/sensor",
    response_model=SensorPublic,
    responses=error_responses(401, 403, 429, 502),
    summary="The air-feed sensor: whether it runs, and its last decision (runs asked or why not)",
)
async def read_air_feed_sensor(_: Reader, ctx: ContextDep) -> SensorPublic:
    return await air_feed_sensor(ctx.pipeline)
