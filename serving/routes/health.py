"""Health, readiness and liveness.

``/live`` says the process answers; ``/ready`` that the dependencies it
cannot serve without (app database, Redis when configured, lakehouse)
answer; ``/health/detailed`` times every dependency, for operators.
"""

from __future__ import annotations

from typing import Annotated

import anyio
from fastapi import Request, Response

from serving.context import AppContext
from serving.db.types import utcnow
from serving.deps import ContextDep, RequirePermission, context_of
from serving.hot import health_body
from serving.routing import ResourceRouter
from serving.schemas.common import error_responses
from serving.schemas.health import DependencyState, HealthDetailed, HealthPublic, ReadyPublic
from serving.security.credentials import Principal
from serving.security.permissions import Permission
from serving.services.health import Check, heartbeat_state, mlflow_state, overall, run_checks

router = ResourceRouter(tags=["health"])


def checks(ctx: AppContext, *, required_only: bool = False) -> list[Check]:
    async def app_db() -> tuple[DependencyState, str]:
        await anyio.to_thread.run_sync(ctx.db.ping)
        return "ok", ctx.db.backend

    async def redis() -> tuple[DependencyState, str]:
        if ctx.redis is None:
            return "disabled", "no Redis configured; in-process rate limits and state"
        await ctx.redis.ping()
        return "ok", "redis"

    async def lakehouse() -> tuple[DependencyState, str]:
        present = await anyio.to_thread.run_sync(ctx.lakehouse.exists, "tracks")
        return ("ok" if present else "degraded"), (
            "tracks table present" if present else "no tracks table yet (run sonicforge init)"
        )

    async def dagster() -> tuple[DependencyState, str]:
        return "ok", await ctx.pipeline.ping()

    async def mlflow() -> tuple[DependencyState, str]:
        return await mlflow_state(ctx.settings.resolved_mlflow_tracking_uri)

    async def streamer() -> tuple[DependencyState, str]:
        hb = await anyio.to_thread.run_sync(ctx.station.heartbeat)
        return heartbeat_state(hb.at if hb else None)

    out = [
        Check("app_db", app_db, True),
        Check("redis", redis, True),
        Check("lakehouse", lakehouse, True),
    ]
    if not required_only:
        out += [
            Check("dagster", dagster, False),
            Check("mlflow", mlflow, False),
            Check("streamer", streamer, False),
        ]
    return out


@router.get(
    "/health", response_model=HealthPublic, responses=error_responses(429), summary="Is the API up"
)
async def read_health(request: Request) -> Response:
    """Served by ``serving.hot`` in the common case; this route documents it."""
    return Response(health_body(context_of(request)), media_type="application/json")


@router.get(
    "/health/detailed",
    response_model=HealthDetailed,
    responses=error_responses(401, 403, 429),
    summary="Every dependency with its status and latency",
)
async def read_health_detailed(
    _: Annotated[Principal, RequirePermission(Permission.HEALTH_DETAILED)], ctx: ContextDep
) -> HealthDetailed:
    statuses = await run_checks(checks(ctx))
    return HealthDetailed(status=overall(statuses), checked_at=utcnow(), dependencies=statuses)


@router.get(
    "/ready",
    response_model=ReadyPublic,
    responses={503: {"model": ReadyPublic, "description": "A required dependency is down"}},
    summary="Can the API serve (required dependencies reachable)",
)
async def read_ready(ctx: ContextDep, response: Response) -> ReadyPublic:
    statuses = await run_checks(checks(ctx, required_only=True))
    ready = all(s.status != "down" for s in statuses)
    if not ready:
        response.status_code = 503
    return ReadyPublic(status="ready" if ready else "not_ready", dependencies=statuses)


@router.get("/live", response_model=HealthPublic, summary="Is the process alive")
async def read_live(request: Request) -> Response:
    return await read_health(request)
