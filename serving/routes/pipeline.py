"""Generation runs in Dagster, and the generation benchmark figures."""

from __future__ import annotations

from typing import Annotated

import anyio
from fastapi import Path, status

from serving.deps import ContextDep, RequirePermission
from serving.routing import ResourceRouter
from serving.schemas.common import error_responses
from serving.schemas.pipeline import BenchmarksPublic, PipelineRunCreate, PipelineRunPublic
from serving.security.credentials import Principal
from serving.security.permissions import Permission
from serving.services.benchmarks import latest_benchmarks

router = ResourceRouter(prefix="/pipeline", tags=["pipeline"])

RunId = Annotated[str, Path(pattern=r"^[A-Za-z0-9-]{1,64}$")]


@router.post(
    "/run",
    response_model=PipelineRunPublic,
    status_code=status.HTTP_202_ACCEPTED,
    responses=error_responses(401, 403, 422, 429, 502),
    summary="Launch a generation run (one new batch) in Dagster",
)
async def create_pipeline_run(
    body: PipelineRunCreate,
    principal: Annotated[Principal, RequirePermission(Permission.PIPELINE_RUN)],
    ctx: ContextDep,
) -> PipelineRunPublic:
    """Through the Dagster webserver's GraphQL API when
    ``SONICFORGE_DAGSTER_GRAPHQL_URL`` is set, else in the local instance.
    The API never runs the assets itself."""
    return await ctx.pipeline.launch(body, requested_by=principal.user_id)


@router.get(
    "/runs/{run_id}",
    response_model=PipelineRunPublic,
    responses=error_responses(401, 403, 404, 422, 429, 502),
    summary="A generation run's status",
)
async def read_pipeline_run(
    run_id: RunId,
    _: Annotated[Principal, RequirePermission(Permission.PIPELINE_READ)],
    ctx: ContextDep,
) -> PipelineRunPublic:
    return await ctx.pipeline.run(run_id)


@router.get(
    "/benchmark",
    response_model=BenchmarksPublic,
    responses=error_responses(401, 403, 429),
    summary="The latest generation benchmark figures per backend",
)
async def read_benchmarks(
    _: Annotated[Principal, RequirePermission(Permission.PIPELINE_READ)], ctx: ContextDep
) -> BenchmarksPublic:
    items = await anyio.to_thread.run_sync(latest_benchmarks, ctx.settings.var_dir / "bench")
    return BenchmarksPublic(items=items)
