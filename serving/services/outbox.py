"""Writing events to the outbox, in the caller's transaction."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from serving.db.models import OutboxEvent
from serving.logs import request_id_var


def record_event(
    session: Session,
    type_: str,
    *,
    user_id: str | None = None,
    anonymous_id: str | None = None,
    track_id: str | None = None,
    properties: dict[str, Any] | None = None,
) -> OutboxEvent:
    """Add an event; it commits (or not) with the change it describes."""
    event = OutboxEvent(
        type=type_,
        user_id=user_id,
        anonymous_id=anonymous_id,
        track_id=track_id,
        properties=properties or {},
        request_id=request_id_var.get(),
    )
    session.add(event)
    return event
