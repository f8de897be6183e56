"""Listeners' track requests: ask, follow (JSON or pushed as server-sent
events), and hear it on air."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Annotated

import anyio
from fastapi import Path, Query, Request, status
from fastapi.responses import StreamingResponse

from serving.deps import ContextDep, CurrentPrincipal
from serving.routing import ResourceRouter
from serving.schemas.common import error_responses
from serving.schemas.requests import (
    REQUEST_ID_PATTERN,
    TERMINAL_STATUSES,
    TrackRequestCreate,
    TrackRequestPublic,
)
from serving.services import requests as service

router = ResourceRouter(prefix="/requests", tags=["requests"])

RequestId = Annotated[str, Path(pattern=REQUEST_ID_PATTERN)]
#: How often a pushed stream looks for a change, and sends a keep-alive.
EVENTS_POLL_S = 0.5
KEEPALIVE_S = 15.0


@router.post(
    "",
    response_model=TrackRequestPublic,
    status_code=status.HTTP_201_CREATED,
    responses={
        **error_responses(401, 403, 422, 429),
        402: {
            "model": error_responses(422)[422]["model"],
            "description": "No quota left and no credits (or a negative balance)",
        },
    },
    summary="Request a track: generated from your prompt and played next on air",
)
async def create_request(
    body: TrackRequestCreate, principal: CurrentPrincipal, ctx: ContextDep
) -> TrackRequestPublic:
    """Validated like ``sonicforge generate``, the prompt moderated, then one
    request of your plan's quota (or one credit) reserved atomically. Its
    generation runs in its own Dagster partition (``batch_id``); follow it
    at ``/requests/{id}`` or ``/requests/{id}/events``. A failure refunds."""
    service.moderate(body.prompt, ctx.settings)
    genre = await anyio.to_thread.run_sync(service.validate_spec, body)
    req = await anyio.to_thread.run_sync(
        service.reserve_request, ctx.db, ctx.settings, principal.user_id, body, genre
    )
    ctx.requests.launch_soon(req.id)
    return service.public(req)


@router.get(
    "",
    response_model=list[TrackRequestPublic],
    responses=error_responses(401, 422, 429),
    summary="Your latest requests",
)
async def list_requests(
    principal: CurrentPrincipal,
    ctx: ContextDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> list[TrackRequestPublic]:
    rows = await anyio.to_thread.run_sync(
        lambda: service.list_requests(ctx.db, principal.user_id, limit=limit)
    )
    return [service.public(r) for r in rows]


@router.get(
    "/{request_id}",
    response_model=TrackRequestPublic,
    responses=error_responses(401, 404, 422, 429),
    summary="A request's status: queued, generating, scoring, mastering, failed, "
    "queued_on_air (with the expected air time) or aired",
)
async def read_request(
    request_id: RequestId, principal: CurrentPrincipal, ctx: ContextDep
) -> TrackRequestPublic:
    req = await anyio.to_thread.run_sync(
        lambda: service.read_request(ctx.db, request_id, user_id=principal.user_id)
    )
    return service.public(req)


@router.get(
    "/{request_id}/events",
    response_class=StreamingResponse,
    responses={
        200: {
            "content": {"text/event-stream": {}},
            "description": "An event `status` (the request as JSON) at each change; ends "
            "once it aired or failed.",
        },
        **error_responses(401, 404, 422, 429),
    },
    summary="The request's status changes, pushed (server-sent events)",
)
async def stream_request_events(
    request_id: RequestId, principal: CurrentPrincipal, ctx: ContextDep, request: Request
) -> StreamingResponse:
    first = await anyio.to_thread.run_sync(
        lambda: service.read_request(ctx.db, request_id, user_id=principal.user_id)
    )

    async def events() -> AsyncIterator[bytes]:
        last: str | None = None
        idle = 0.0
        req = first
        while True:
            body = service.public(req).model_dump_json()
            if body != last:
                last, idle = body, 0.0
                yield f"event: status\ndata: {body}\n\n".encode()
                if json.loads(body)["status"] in TERMINAL_STATUSES:
                    return
            elif idle >= KEEPALIVE_S:
                idle = 0.0
                yield b": keep-alive\n\n"
            if await request.is_disconnected():
                return
            await asyncio.sleep(EVENTS_POLL_S)
            idle += EVENTS_POLL_S
            req = await anyio.to_thread.run_sync(
                lambda: service.read_request(ctx.db, request_id, user_id=None)
            )

    return StreamingResponse(
        events(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
