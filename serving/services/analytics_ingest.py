"""Accepting tracked events: validate, correct the client's clock, and
make them durable in the outbox before answering.

``accept`` is shared by the route and the fast path
(``serving.services.analytics_fastpath``). Every valid event of a request
goes to the worker's ``EventWriter``, a group-commit thread like the vote
writer's: it takes every row waiting in its queue and inserts them with one
``executemany`` in one transaction, and each request is answered only after
the commit that holds its rows. A 2xx therefore means durable, on SQLite
(WAL) as on PostgreSQL. On SQLite the writer takes turns with the other
workers' writers (votes and events) through the same advisory file lock.

Batch policy: valid events are kept and accepted; invalid ones are listed
by index with the path of each error (202 with ``rejected``). A request
whose events are all invalid is a 422.

Clock skew (as Segment does it): ``skew = received_at - sent_at`` and
``ts = timestamp + skew``. A skew beyond ``analytics_max_clock_skew_s`` is
clamped to it (flag ``clock_skew_clamped``); a corrected time after the
receipt is set to the receipt (flag ``future_timestamp``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import queue
import re
import secrets
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, get_args

from pydantic import TypeAdapter, ValidationError

from serving.db.session import Database
from serving.db.types import utcnow
from serving.db.write_turn import WriteTurn
from serving.schemas.analytics import (
    ANONYMOUS_ID_PATTERN,
    EVENT_ID_PATTERN,
    MAX_BATCH_BYTES,
    MAX_BATCH_EVENTS,
    EventContext,
    EventType,
    FlaggedEvent,
    RejectedEvent,
    TrackAccepted,
    TrackEvent,
)
from serving.schemas.common import TRACK_ID_PATTERN, ErrorIssue
from serving.services.outbox import dumps, insert_sql
from sonicforge.errors import SonicForgeError

log = logging.getLogger("serving.analytics")

MAX_ROWS_PER_COMMIT = 5000
_event = TypeAdapter(TrackEvent)


class IngestError(SonicForgeError):
    """The request as a whole is refused: ``status`` 413 or 422."""

    def __init__(self, status: int, code: str, message: str, details: list[dict[str, Any]]):
        super().__init__(message)
        self.status, self.code, self.message, self.details = status, code, message, details


def _issues(exc: ValidationError, prefix: list[str | int]) -> list[dict[str, Any]]:
    return [
        {
            "loc": prefix + [p for p in e.get("loc", ()) if isinstance(p, (str, int))],
            "msg": e.get("msg", ""),
            "type": e.get("type", ""),
        }
        for e in exc.errors(include_url=False)
    ]


def parse(raw: bytes) -> tuple[list[Any], datetime | None, bool]:
    """The request's events, the batch's ``sent_at`` and whether it was a
    batch; or an ``IngestError`` for a body that is no event at all."""
    if len(raw) > MAX_BATCH_BYTES:
        raise IngestError(
            413, "payload_too_large", f"a request holds at most {MAX_BATCH_BYTES} bytes", []
        )
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise IngestError(
            422, "invalid_request", f"the body is not JSON: {exc}",
            [{"loc": ["body"], "msg": "invalid JSON", "type": "json_invalid"}],
        ) from None  # fmt: skip
    if not isinstance(body, dict):
        raise IngestError(
            422, "invalid_request", "the body must be an event object or {\"batch\": [...]}",
            [{"loc": ["body"], "msg": "must be an object", "type": "dict_type"}],
        )  # fmt: skip
    if "batch" not in body:
        return [body], None, False
    batch = body["batch"]
    extra = sorted(set(body) - {"batch", "sent_at"})
    if extra or not isinstance(batch, list) or not batch:
        loc: list[str | int] = ["body", extra[0]] if extra else ["body", "batch"]
        msg = f"unknown field {extra[0]!r}" if extra else "must be a non-empty list of events"
        raise IngestError(422, "invalid_request", f"{'.'.join(map(str, loc))}: {msg}",
                          [{"loc": loc, "msg": msg, "type": "batch_invalid"}])  # fmt: skip
    if len(batch) > MAX_BATCH_EVENTS:
        raise IngestError(
            413, "payload_too_large",
            f"a batch holds at most {MAX_BATCH_EVENTS} events ({len(batch)} given)", [],
        )  # fmt: skip
    sent_at = None
    if body.get("sent_at") is not None:
        try:
            sent_at = TypeAdapter(datetime).validate_python(body["sent_at"])
        except ValidationError as exc:
            details = _issues(exc, ["body", "sent_at"])
            raise IngestError(422, "invalid_request", "body.sent_at: " + details[0]["msg"],
                              details) from None  # fmt: skip
    return batch, sent_at, True


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


# -- validation: a fast path for the common shape, pydantic for the rest ---------------

_FIELDS = frozenset(TrackEvent.model_fields)
_TYPES = frozenset(get_args(EventType))
_EVENT_ID = re.compile(EVENT_ID_PATTERN)
_ANONYMOUS_ID = re.compile(ANONYMOUS_ID_PATTERN)
_TRACK_ID = re.compile(TRACK_ID_PATTERN)
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
_context = TypeAdapter(EventContext)


def _id_ok(value: Any, pattern: re.Pattern[str], limit: int = 64) -> bool:
    return value is None or (
        type(value) is str and len(value) <= limit and pattern.match(value) is not None
    )


def _time(value: Any) -> datetime | bool | None:
    """A parsed ISO time, ``None``, or ``False`` (let pydantic decide)."""
    if value is None:
        return None
    if type(value) is not str:
        return False
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return False


def _fast(item: Any) -> dict[str, Any] | None:
    """The event's fields if it plainly satisfies ``TrackEvent`` (the same
    rules), else ``None``: pydantic then validates it and names the errors."""
    if type(item) is not dict or not _FIELDS.issuperset(item):
        return None
    kind = item.get("type", "track")
    name = item.get("event")
    props = item.get("properties", {})
    if (
        kind not in _TYPES
        or not _id_ok(item.get("event_id"), _EVENT_ID)
        or not _id_ok(item.get("anonymous_id"), _ANONYMOUS_ID)
        or not _id_ok(item.get("track_id"), _TRACK_ID)
        or (name is not None and (type(name) is not str or not 0 < len(name) <= 128
                                  or _CONTROL.search(name)))
        or type(props) is not dict
        or len(props) > 200
    ):  # fmt: skip
        return None
    timestamp, sent_at = _time(item.get("timestamp")), _time(item.get("sent_at"))
    if timestamp is False or sent_at is False:
        return None
    context = item.get("context")
    if context is not None:
        if type(context) is not dict:
            return None
        try:
            context = _context.validate_python(context).model_dump(exclude_none=True)
        except ValidationError:
            return None
    return {"event_id": item.get("event_id"), "type": kind, "event": name,
            "anonymous_id": item.get("anonymous_id"), "track_id": item.get("track_id"),
            "properties": props, "context": context, "timestamp": timestamp,
            "sent_at": sent_at}  # fmt: skip


def _from_model(ev: TrackEvent) -> dict[str, Any]:
    fields = {name: getattr(ev, name) for name in _FIELDS}
    fields["context"] = ev.context.model_dump(exclude_none=True) if ev.context else None
    return fields


def validate(
    items: list[Any], *, user_id: str | None, batch: bool
) -> tuple[list[tuple[int, dict[str, Any]]], list[RejectedEvent]]:
    good: list[tuple[int, dict[str, Any]]] = []
    rejected: list[RejectedEvent] = []
    for i, item in enumerate(items):
        prefix: list[str | int] = ["body", "batch", i] if batch else ["body"]
        fields = _fast(item)
        if fields is None:
            try:
                fields = _from_model(_event.validate_python(item))
            except ValidationError as exc:
                issues = _issues(exc, prefix)
                event_id = _str(item.get("event_id")) if isinstance(item, dict) else None
                rejected.append(RejectedEvent(index=i, event_id=event_id,
                                              errors=[ErrorIssue(**x) for x in issues]))  # fmt: skip
                continue
        problem = _semantic(fields, user_id=user_id)
        if problem is not None:
            loc, msg, kind = problem
            rejected.append(
                RejectedEvent(index=i, event_id=fields["event_id"],
                              errors=[ErrorIssue(loc=prefix + loc, msg=msg, type=kind)])
            )  # fmt: skip
            continue
        good.append((i, fields))
    return good, rejected


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and len(value) <= 64 else None


def _semantic(
    ev: dict[str, Any], *, user_id: str | None
) -> tuple[list[str | int], str, str] | None:
    if user_id is None and ev["anonymous_id"] is None:
        return (["anonymous_id"], "required without an access token (the user id comes from "
                "the token)", "missing")  # fmt: skip
    if ev["type"] == "track" and ev["event"] is None:
        return ["event"], "a 'track' event needs its name in 'event'", "missing"
    timestamp, sent_at = ev["timestamp"], ev["sent_at"]
    if timestamp is not None and sent_at is not None and _aware(timestamp) > _aware(sent_at):
        return (
            ["timestamp"],
            "may not be after sent_at (an event is sent after it happens)",
            "value_error",
        )
    return None


# -- rows -----------------------------------------------------------------------------


def uuid7_batch(n: int, now: datetime) -> list[str]:
    """``n`` UUIDv7 strings of one millisecond, increasing (one random draw:
    formatting ``uuid.UUID`` objects cost more than the rest of an event)."""
    ms = int(now.timestamp() * 1000)
    base = secrets.randbits(73)  # leaves room to count up within the millisecond
    out = []
    for k in range(n):
        rand = base + k
        value = (ms << 80) | (0x7 << 76) | ((rand >> 62) << 64) | (0b10 << 62)
        value |= rand & ((1 << 62) - 1)
        h = f"{value:032x}"
        out.append(f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}")
    return out


def _stamp(value: datetime, dialect: str) -> Any:
    if dialect != "sqlite":
        return value
    # What SQLAlchemy stores for a UTC time on SQLite (db_time), faster than strftime.
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


def normalise(
    ev: dict[str, Any],
    *,
    event_id: str,
    user_id: str | None,
    received_at: datetime,
    received_db: Any,
    batch_sent_at: datetime | None,
    max_skew_s: float,
    request_id: str | None,
    dialect: str,
) -> tuple[tuple[Any, ...], list[str]]:
    """The outbox row of one valid event, and its flags."""
    flags: list[str] = []
    sent_at = ev["sent_at"] or batch_sent_at
    happened = ev["timestamp"] or sent_at
    skew_s: float | None = None
    ts = received_at
    if sent_at is not None and happened is not None:
        sent_at, happened = _aware(sent_at), _aware(happened)
        skew_s = (received_at - sent_at).total_seconds()
        applied = skew_s
        if abs(skew_s) > max_skew_s:
            applied = max_skew_s if skew_s > 0 else -max_skew_s
            flags.append("clock_skew_clamped")
        ts = happened + timedelta(seconds=applied)
        if ts > received_at:
            ts = received_at
            flags.append("future_timestamp")
    context = ev["context"]
    row = (
        event_id, ev["type"], ev["event"], user_id, ev["anonymous_id"], ev["track_id"],
        dumps(ev["properties"]), dumps(context) if context is not None else None, None, None,
        _stamp(sent_at, dialect) if sent_at is not None else None, received_db,
        received_db if ts is received_at else _stamp(ts, dialect), skew_s,
        dumps(flags) if flags else None, request_id,
    )  # fmt: skip
    return row, flags


def prepare(
    raw: bytes,
    *,
    user_id: str | None,
    max_skew_s: float,
    request_id: str | None,
    dialect: str,
    now: datetime | None = None,
) -> tuple[list[tuple[Any, ...]], TrackAccepted]:
    """Rows to write and the answer to give once they are written; raises
    ``IngestError`` for a request refused as a whole."""
    received_at = now or utcnow()
    items, batch_sent_at, batch = parse(raw)
    good, rejected = validate(items, user_id=user_id, batch=batch)
    if not good:
        details = [e.model_dump() for r in rejected for e in r.errors]
        first = details[0]
        where = ".".join(str(p) for p in first["loc"])
        more = f" (and {len(details) - 1} more)" if len(details) > 1 else ""
        raise IngestError(422, "invalid_request", f"{where}: {first['msg']}{more}", details)
    rows: list[tuple[Any, ...]] = []
    flagged: list[FlaggedEvent] = []
    seen: set[str] = set()
    ids: list[str] = []
    made = iter(uuid7_batch(sum(1 for _, ev in good if ev["event_id"] is None), received_at))
    received_db = _stamp(received_at, dialect)
    for index, ev in good:
        event_id = ev["event_id"] or next(made)
        row, flags = normalise(ev, event_id=event_id, user_id=user_id, received_at=received_at,
                               received_db=received_db, batch_sent_at=batch_sent_at,
                               max_skew_s=max_skew_s, request_id=request_id, dialect=dialect)  # fmt: skip
        ids.append(event_id)
        if flags:
            flagged.append(FlaggedEvent(index=index, event_id=event_id, flags=flags))
        if event_id not in seen:  # one id twice in a batch: one row
            seen.add(event_id)
            rows.append(row)
    answer = TrackAccepted.model_construct(accepted=len(ids), event_ids=ids, rejected=rejected,
                                           flagged=flagged, received_at=received_at)  # fmt: skip
    return rows, answer


@dataclass
class _Pending:
    rows: list[tuple[Any, ...]]
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[None] = field(repr=False)


class EventWriter:
    """One writer thread per worker: group commits of outbox rows."""

    def __init__(self, db: Database, *, max_rows: int = MAX_ROWS_PER_COMMIT) -> None:
        self.db = db
        self.max_rows = max_rows
        self.dialect = db.backend
        self._sql = insert_sql(self.dialect)
        self._queue: queue.SimpleQueue[_Pending | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._turn = WriteTurn(db)  # all writers of one SQLite file take turns
        self.commits = 0
        self.rows_written = 0

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="event-writer", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout=30)
            self._thread = None
        self._turn.close()

    async def write(self, rows: list[tuple[Any, ...]]) -> None:
        """Queue ``rows``; returns once they are committed (or raises)."""
        if self._thread is None:
            raise RuntimeError("the event writer is not running")
        loop = asyncio.get_running_loop()
        pending = _Pending(rows, loop, loop.create_future())
        self._queue.put(pending)
        await pending.future

    def _run(self) -> None:
        stopping = False
        while not stopping:
            first = self._queue.get()
            if first is None:
                break
            batch, count = [first], len(first.rows)
            while count < self.max_rows:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stopping = True
                    break
                batch.append(item)
                count += len(item.rows)
            self._write(batch)

    def _write(self, batch: list[_Pending]) -> None:
        rows = [row for p in batch for row in p.rows]
        try:
            with self._turn.hold(), self.db.engine.begin() as conn:
                conn.exec_driver_sql(self._sql, rows)  # type: ignore[arg-type]
            self.commits += 1
            self.rows_written += len(rows)
        except Exception as exc:
            if len(batch) > 1:
                log.warning("event batch failed; writing its requests one by one", exc_info=True)
                for item in batch:
                    self._write([item])
                return
            _settle(batch[0], exc)
            return
        # One wake-up per event loop for the whole commit, not one per request.
        by_loop: dict[asyncio.AbstractEventLoop, list[_Pending]] = {}
        for item in batch:
            by_loop.setdefault(item.loop, []).append(item)
        for loop, items in by_loop.items():
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(_resolve_all, items)


def _resolve_all(items: list[_Pending]) -> None:
    for item in items:
        if not item.future.done():  # done: the client went away
            item.future.set_result(None)


def _settle(item: _Pending, error: BaseException | None) -> None:
    def apply() -> None:
        if item.future.done():
            return
        if error is not None:
            item.future.set_exception(error)
        else:
            item.future.set_result(None)

    with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
        item.loop.call_soon_threadsafe(apply)


async def accept(
    writer: EventWriter,
    raw: bytes,
    *,
    user_id: str | None,
    max_skew_s: float,
    request_id: str | None,
) -> TrackAccepted:
    """Validate ``raw``, write its valid events, answer once committed."""
    from serving.metrics import instruments

    counters = instruments()
    try:
        rows, answer = prepare(raw, user_id=user_id, max_skew_s=max_skew_s,
                               request_id=request_id, dialect=writer.dialect)  # fmt: skip
    except IngestError as exc:
        counters.events_rejected.inc(max(1, len(exc.details)))
        raise
    await writer.write(rows)
    counters.events_accepted.inc(answer.accepted)
    if answer.rejected:
        counters.events_rejected.inc(len(answer.rejected))
    return answer
