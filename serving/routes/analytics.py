"""Analytics: event tracking, experiments, the event explorer, the
dashboard, public statistics and Prometheus metrics."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import anyio
from fastapi import Path, Query, Request, Response

from serving.deps import ContextDep, OptionalPrincipal, RequirePermission, SessionDep
from serving.exceptions import BadRequestError
from serving.logs import request_id_var
from serving.routing import ResourceRouter
from serving.schemas.analytics import (
    ANONYMOUS_ID_PATTERN,
    EVENT_ID_PATTERN,
    EXPERIMENT_ID_PATTERN,
    MAX_BATCH_BYTES,
    MAX_BATCH_EVENTS,
    AssignmentPublic,
    ConversionCreate,
    ConversionPublic,
    Dashboard,
    EventPage,
    EventPublic,
    ExperimentList,
    PublicStats,
    TrackAccepted,
    TrackRequest,
)
from serving.schemas.common import TRACK_ID_PATTERN, ErrorBody, error_responses
from serving.security.credentials import Principal
from serving.security.permissions import Permission
from serving.services import analytics as service
from serving.services.analytics_fastpath import error_json
from serving.services.analytics_ingest import IngestError, accept

router = ResourceRouter(prefix="/analytics", tags=["analytics"])

Analyst = Annotated[Principal, RequirePermission(Permission.ANALYTICS_READ)]
Watcher = Annotated[Principal, RequirePermission(Permission.ANALYTICS_DASHBOARD)]
ExperimentIdPath = Annotated[str, Path(pattern=EXPERIMENT_ID_PATTERN, examples=["player_layout"])]

TRACK_DESCRIPTION = f"""\
One event (a `TrackEvent`) or `{{"batch": [...]}}` of up to {MAX_BATCH_EVENTS} events,
{MAX_BATCH_BYTES} bytes in all (`application/json`, or `text/plain` as `sendBeacon` sends).

**Accepted (202) means durable**: every accepted event is committed to the app database's
outbox before the answer; the `events` asset drains it into Delta.

**Batch policy: keep the good ones.** Valid events are accepted; each invalid one is
listed in `rejected` with its index and the path of every error. A request whose events are
all invalid is a 422; over {MAX_BATCH_EVENTS} events or {MAX_BATCH_BYTES} bytes a 413.
`event_id` is the dedupe key: an event sent again with the same id is accepted once.

The user id comes from the access token; without one, `anonymous_id` is required. The
server adds `received_at` and a corrected `ts`: the client clock's skew
(`received_at - sent_at`) is removed; a skew beyond 24 hours is clamped and the event flagged
(`flagged`).
"""


@router.post(
    "/track",
    status_code=202,
    response_model=TrackAccepted,
    responses=error_responses(401, 422, 429)
    | {413: {"model": ErrorBody, "description": "Over 500 events or 1 MB"}},
    summary="Track events (one or a batch of up to 500)",
    description=TRACK_DESCRIPTION,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/TrackRequest"}}
            },
        }
    },
)
async def create_events(
    request: Request, ctx: ContextDep, principal: OptionalPrincipal
) -> Response:
    """The reference of ``serving.services.analytics_fastpath``, which
    answers most requests before they get here."""
    try:
        answer = await accept(
            request.app.state.analytics.writer,
            await request.body(),
            user_id=principal.user_id if principal else None,
            max_skew_s=ctx.settings.analytics_max_clock_skew_s,
            request_id=request_id_var.get(),
        )
    except IngestError as exc:
        return Response(error_json(exc.status, exc.code, exc.message, exc.details),
                        status_code=exc.status, media_type="application/json")  # fmt: skip
    return Response(answer.model_dump_json(), status_code=202, media_type="application/json")


@router.get(
    "/experiments",
    response_model=ExperimentList,
    responses=error_responses(429),
    summary="The experiments, their variants and weights, metrics and status",
)
def read_experiments() -> ExperimentList:
    return service.list_experiments()


@router.get(
    "/experiments/{experiment_id}/variant",
    response_model=AssignmentPublic,
    responses=error_responses(400, 401, 404, 422, 429),
    summary="The caller's variant of an experiment (records the first exposure)",
)
def read_variant(
    experiment_id: ExperimentIdPath,
    session: SessionDep,
    principal: OptionalPrincipal,
    anonymous_id: Annotated[
        str | None, Query(pattern=ANONYMOUS_ID_PATTERN, description="Without an access token.")
    ] = None,
) -> AssignmentPublic:
    """Deterministic: a hash of the experiment and the user id (or the
    anonymous id without a token), the same in every worker and after
    restarts."""
    return service.serve_variant(
        session,
        experiment_id,
        user_id=principal.user_id if principal else None,
        anonymous_id=None if principal else anonymous_id,
    )


@router.post(
    "/experiments/{experiment_id}/convert",
    status_code=201,
    response_model=ConversionPublic,
    responses=error_responses(400, 401, 404, 422, 429),
    summary="Record a conversion for the caller in an experiment",
)
def create_conversion(
    experiment_id: ExperimentIdPath,
    body: ConversionCreate,
    session: SessionDep,
    principal: OptionalPrincipal,
) -> ConversionPublic:
    """A conversion without an exposure is recorded with the flag
    ``no_exposure`` and is not counted in the results."""
    return service.record_conversion(
        session, experiment_id, body, user_id=principal.user_id if principal else None
    )


@router.get(
    "/events",
    response_model=EventPage,
    responses=error_responses(401, 403, 422, 429),
    summary="Events from the lakehouse, newest first (analysts and admins)",
)
async def read_events(
    request: Request,
    _principal: Analyst,
    type: Annotated[str | None, Query(pattern=r"^[a-z_]{1,64}$")] = None,
    event: Annotated[str | None, Query(min_length=1, max_length=128)] = None,
    user_id: Annotated[str | None, Query(pattern=EVENT_ID_PATTERN)] = None,
    anonymous_id: Annotated[str | None, Query(pattern=ANONYMOUS_ID_PATTERN)] = None,
    track_id: Annotated[str | None, Query(pattern=TRACK_ID_PATTERN)] = None,
    experiment_id: Annotated[str | None, Query(pattern=EXPERIMENT_ID_PATTERN)] = None,
    since: Annotated[datetime | None, Query(description="Default: 7 days before until.")] = None,
    until: Annotated[datetime | None, Query(description="Default: now.")] = None,
    cursor: Annotated[str | None, Query(max_length=400)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> EventPage:
    """Read through DuckDB's Delta scan; the time range prunes the day
    partitions read. Pages follow ``next_cursor`` (stable under inserts)."""
    from analytics.readout import CursorError, EventFilter, query_events

    for name, value in (("since", since), ("until", until)):
        if value is not None and value.tzinfo is None:
            raise BadRequestError(f"{name} needs a time zone, e.g. 2026-12-01T00:00:00Z")
    if since and until and since >= until:
        raise BadRequestError("since must be before until")
    flt = EventFilter(type=type, event=event, user_id=user_id, anonymous_id=anonymous_id,
                      track_id=track_id, experiment_id=experiment_id, since=since, until=until)  # fmt: skip
    engine = request.app.state.analytics.sql()
    try:
        items, next_cursor = await anyio.to_thread.run_sync(
            lambda: query_events(engine, flt, cursor=cursor, limit=limit)
        )
    except CursorError as exc:
        raise BadRequestError(str(exc)) from None
    return EventPage(
        items=[EventPublic.model_validate(i) for i in items], next_cursor=next_cursor, limit=limit
    )


@router.get(
    "/dashboard",
    response_model=Dashboard,
    responses=error_responses(401, 403, 429),
    summary="Listeners now, KPIs, top and trending tracks, generation, experiments",
)
async def read_dashboard(request: Request, _principal: Watcher, ctx: ContextDep) -> Response:
    """Cached for ``analytics_dashboard_cache_s`` per worker (served stale
    while it refreshes)."""
    state = request.app.state.analytics
    dash = await state.dashboard_cache.get("dash", lambda: service.build_dashboard(ctx))
    return Response(dash.model_dump_json(), media_type="application/json")


@router.get(
    "/public/stats",
    response_model=PublicStats,
    responses=error_responses(429),
    summary="Listeners now, tracks generated and hours aired (no personal data)",
)
async def read_public_stats(request: Request, ctx: ContextDep) -> Response:
    state = request.app.state.analytics
    stats = await state.public_cache.get(
        "stats", lambda: service.build_public_stats(ctx, state.sql())
    )
    return Response(stats.model_dump_json(), media_type="application/json")


@router.get(
    "/metrics/prometheus",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}, "description": "Prometheus exposition"}},
    summary="Prometheus metrics (the same as /metrics)",
)
async def read_prometheus(request: Request) -> Response:
    from serving.metrics import exposition

    body, media = await exposition(request.app)
    return Response(body, media_type=media)


def document(schema: dict[str, Any]) -> dict[str, Any]:
    """Add the track endpoint's two body shapes (read by hand, so FastAPI
    does not see them) to the OpenAPI document's components."""
    from pydantic.json_schema import models_json_schema

    _, defs = models_json_schema(
        [(TrackRequest, "validation")],
        ref_template="#/components/schemas/{model}",
    )
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    for name, definition in defs.get("$defs", {}).items():
        components.setdefault(name, definition)
    return schema


metrics_router = ResourceRouter(tags=["analytics"])


@metrics_router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}, "description": "Prometheus exposition"}},
    summary="Prometheus metrics: HTTP, listeners, outputs, generation, outbox lag, KPIs",
)
async def read_metrics(request: Request) -> Response:
    from serving.metrics import exposition

    body, media = await exposition(request.app)
    return Response(body, media_type=media)
