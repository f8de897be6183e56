"""Writing events to the outbox, in the caller's transaction.

``record_event`` adds one event to an ORM session: it commits (or not) with
the change it describes (a vote, a share, a sign-up, an exposure, a
conversion). ``insert_rows`` is the bulk path of the tracking endpoint: rows
as tuples, one ``executemany`` on the driver's cursor, ``ON CONFLICT DO
NOTHING`` on the event id, so a client's retry of an event still in the
outbox is accepted without a second row. The ``events`` asset drains the
outbox into Delta (``analytics.drain``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from serving.db.models import OutboxEvent
from serving.db.types import utcnow, uuid7
from serving.logs import request_id_var

# The columns ``insert_rows`` writes, in tuple order.
ROW_COLUMNS = (
    "event_id", "type", "event", "user_id", "anonymous_id", "track_id", "properties",
    "context", "experiment_id", "variant", "sent_at", "received_at", "ts", "clock_skew_s",
    "flags", "request_id",
)  # fmt: skip


def record_event(
    session: Session,
    type_: str,
    *,
    user_id: str | None = None,
    anonymous_id: str | None = None,
    track_id: str | None = None,
    properties: dict[str, Any] | None = None,
    event: str | None = None,
    experiment_id: str | None = None,
    variant: str | None = None,
    context: dict[str, Any] | None = None,
    flags: Sequence[str] | None = None,
    ts: datetime | None = None,
    event_id: str | None = None,
) -> OutboxEvent:
    """Add an event; it commits (or not) with the change it describes.

    ``type_`` is the event's kind (``vote``, ``share_created``,
    ``conversion`` …); ``event`` an optional finer name (the conversion's
    ``checkout_completed``); ``experiment_id`` and ``variant`` tie it to an
    experiment; ``ts`` defaults to now."""
    now = utcnow()
    row = OutboxEvent(
        event_id=event_id or uuid7(),
        type=type_,
        event=event,
        user_id=user_id,
        anonymous_id=anonymous_id,
        track_id=track_id,
        properties=properties or {},
        context=context,
        experiment_id=experiment_id,
        variant=variant,
        ts=ts or now,
        received_at=now,
        flags=list(flags) if flags else None,
        request_id=request_id_var.get(),
    )
    session.add(row)
    return row


def insert_sql(dialect: str) -> str:
    """The driver-level bulk insert for ``dialect`` (``sqlite``/``postgresql``)."""
    mark = "?" if dialect == "sqlite" else "%s"
    cols = ", ".join(ROW_COLUMNS)
    values = ", ".join([mark] * len(ROW_COLUMNS))
    return f"INSERT INTO event_outbox ({cols}) VALUES ({values}) ON CONFLICT (event_id) DO NOTHING"


def db_time(value: datetime | None, dialect: str) -> Any:
    """A UTC time as the models store it: SQLite keeps naive text (the
    format SQLAlchemy writes and reads), PostgreSQL an aware timestamp."""
    if value is None:
        return None
    value = value.astimezone(UTC)
    if dialect == "sqlite":
        return value.strftime("%Y-%m-%d %H:%M:%S.%f")
    return value


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
