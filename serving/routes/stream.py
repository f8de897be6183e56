"""The stream: status (public), control and queue management (operators)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Request, Response, status

from serving.deps import (
    ContextDep,
    OptionalPrincipal,
    RequirePermission,
    SessionDep,
    context_of,
)
from serving.hot import stream_status_body
from serving.routing import ResourceRouter
from serving.schemas.common import error_responses
from serving.schemas.stream import (
    ENTRY_ID_PATTERN,
    ControlCreate,
    ControlPublic,
    QueueEntryCreate,
    QueueEntryPublic,
    QueuePublic,
    QueueReorder,
    StreamStatus,
)
from serving.security.credentials import Principal
from serving.security.permissions import Permission
from serving.services.outbox import record_event
from serving.services.stream import queue_entry

router = ResourceRouter(prefix="/stream", tags=["stream"])

Operator = Annotated[Principal, RequirePermission(Permission.STREAM_CONTROL)]
QueueManager = Annotated[Principal, RequirePermission(Permission.QUEUE_MANAGE)]
EntryId = Annotated[str, Path(pattern=ENTRY_ID_PATTERN)]


@router.get(
    "/status",
    response_model=StreamStatus,
    responses=error_responses(429),
    summary="Now playing, listeners, uptime and outputs",
)
async def read_stream_status(request: Request) -> Response:
    """Served by ``serving.hot`` in the common case; this route documents it."""
    body = await stream_status_body(context_of(request))
    return Response(body, media_type="application/json")


@router.post(
    "/control",
    response_model=ControlPublic,
    status_code=status.HTTP_202_ACCEPTED,
    responses=error_responses(401, 403, 422, 429),
    summary="Send start, stop or skip to the streamer",
)
def create_control_command(
    body: ControlCreate, principal: Operator, ctx: ContextDep, session: SessionDep
) -> ControlPublic:
    """Accepted, not done: the streamer acts on the command at its next
    tick; /stream/status shows the outcome."""
    cmd = ctx.station.send_command(body.command, issued_by=principal.user_id)
    record_event(
        session,
        "stream_control",
        user_id=principal.user_id,
        properties={"command": cmd.command, "command_id": cmd.command_id},
    )
    session.commit()
    ctx.status_cache.clear()
    return ControlPublic(
        command_id=cmd.command_id,
        command=cmd.command,
        issued_at=cmd.issued_at,
        issued_by=cmd.issued_by,
    )


@router.get(
    "/queue",
    response_model=QueuePublic,
    responses=error_responses(401, 429),
    summary="The tracks queued to air before the rotation's picks",
)
def read_queue(ctx: ContextDep, principal: OptionalPrincipal) -> QueuePublic:
    show = principal is not None and principal.can(Permission.QUEUE_MANAGE)
    entries = ctx.station.queue()
    return QueuePublic(
        items=[queue_entry(e, show_requester=show) for e in entries], total=len(entries)
    )


@router.post(
    "/queue",
    response_model=QueueEntryPublic,
    status_code=status.HTTP_201_CREATED,
    responses=error_responses(401, 403, 404, 422, 429),
    summary="Queue a track",
)
def create_queue_entry(
    body: QueueEntryCreate, principal: QueueManager, ctx: ContextDep
) -> QueueEntryPublic:
    ctx.catalog.require(body.track_id)
    entry = ctx.station.enqueue(body.track_id, source="operator", requested_by=principal.user_id)
    ctx.status_cache.clear()
    return queue_entry(entry, show_requester=True)


@router.delete(
    "/queue/{entry_id}",
    response_model=QueueEntryPublic,
    responses=error_responses(401, 403, 404, 422, 429),
    summary="Remove a queued entry",
)
def delete_queue_entry(entry_id: EntryId, _: QueueManager, ctx: ContextDep) -> QueueEntryPublic:
    entry = ctx.station.remove(entry_id)
    ctx.status_cache.clear()
    return queue_entry(entry, show_requester=True)


@router.put(
    "/queue/order",
    response_model=QueuePublic,
    responses=error_responses(401, 403, 404, 409, 422, 429),
    summary="Move entries to the front of the queue, in the order given",
)
def reorder_queue(body: QueueReorder, _: QueueManager, ctx: ContextDep) -> QueuePublic:
    entries = ctx.station.reorder(body.entry_ids)
    return QueuePublic(
        items=[queue_entry(e, show_requester=True) for e in entries], total=len(entries)
    )
