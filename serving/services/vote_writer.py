"""Group commit for votes: one writer thread per worker takes every vote
waiting in its queue and writes them in one transaction.

A vote is the API's most frequent write. Committed one by one, two workers
on one SQLite file spend their time waiting for each other's write lock
(SQLite's busy handler sleeps in milliseconds); batched, a worker commits
once for all the votes that arrived during the previous commit. Each vote's
upsert and its outbox event still commit together, and the request gets
its answer only after the commit, so nothing acknowledged can be lost. A
batch that fails is retried vote by vote, so one bad vote fails alone.

On SQLite the writers of all workers also take turns through an advisory
file lock beside the database: a blocked writer is woken the moment the
lock is free, where SQLite's own busy handler would poll with sleeps of up
to 100 ms and let one worker starve the other.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Insert, insert
from sqlalchemy.dialects import postgresql, sqlite

from serving.db.models import OutboxEvent, Vote
from serving.db.session import Database
from serving.db.types import utcnow, uuid7
from serving.db.write_turn import WriteTurn

log = logging.getLogger("serving.votes")

MAX_BATCH = 256


@dataclass
class PendingVote:
    values: dict[str, Any]
    event: dict[str, Any]
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[tuple[datetime, datetime]] = field(repr=False)


def upsert_statement(dialect: str) -> Insert:
    """INSERT … ON CONFLICT (user_id, track_id) DO UPDATE, returning the
    vote's first and latest times; both backends speak this dialect."""
    dialect_insert: Any = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = dialect_insert(Vote)
    stmt = stmt.on_conflict_do_update(
        index_elements=[Vote.user_id, Vote.track_id],
        set_={
            "stars": stmt.excluded.stars,
            "direction": stmt.excluded.direction,
            "genre": stmt.excluded.genre,
            "updated_at": stmt.excluded.updated_at,
        },
    )
    return stmt.returning(Vote.created_at, Vote.updated_at)  # type: ignore[no-any-return]


class VoteWriter:
    def __init__(self, db: Database, *, max_batch: int = MAX_BATCH) -> None:
        self.db = db
        self.max_batch = max_batch
        self._upsert = upsert_statement(db.backend)
        self._outbox = insert(OutboxEvent)
        self._queue: queue.SimpleQueue[PendingVote | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._turn = WriteTurn(db)  # all writers of one SQLite file take turns
        self.batches = 0  # commits made (tests, metrics)

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="vote-writer", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Write what is queued, then stop the thread."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout=30)
            self._thread = None
        self._turn.close()

    async def submit(
        self, *, user_id: str, track_id: str, genre: str, stars: int | None,
        direction: int | None, properties: dict[str, Any], request_id: str | None,
    ) -> tuple[datetime, datetime]:  # fmt: skip
        """Queue a vote; returns its (created_at, updated_at) once committed."""
        if self._thread is None:
            raise RuntimeError("the vote writer is not running")
        now = utcnow()
        loop = asyncio.get_running_loop()
        pending = PendingVote(
            values={"user_id": user_id, "track_id": track_id, "genre": genre, "stars": stars,
                    "direction": direction, "created_at": now, "updated_at": now},
            event={"event_id": uuid7(), "type": "vote", "user_id": user_id, "anonymous_id": None,
                   "track_id": track_id, "properties": properties, "experiment_id": None,
                   "variant": None, "ts": now, "drained_at": None, "request_id": request_id},
            loop=loop,
            future=loop.create_future(),
        )  # fmt: skip
        self._queue.put(pending)
        return await pending.future

    def _run(self) -> None:
        stopping = False
        while not stopping:
            first = self._queue.get()
            if first is None:
                break
            batch = [first]
            while len(batch) < self.max_batch:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stopping = True
                    break
                batch.append(item)
            self._write(batch)

    def _write(self, batch: list[PendingVote]) -> None:
        try:
            with self._turn.hold(), self.db.engine.begin() as conn:
                times = [tuple(conn.execute(self._upsert, p.values).one()) for p in batch]
                conn.execute(self._outbox, [p.event for p in batch])
            self.batches += 1
        except Exception as exc:
            if len(batch) > 1:
                log.warning("vote batch failed; writing its votes one by one", exc_info=True)
                for item in batch:
                    self._write([item])
                return
            _settle(batch[0], error=exc)
            return
        for item, (created, updated) in zip(batch, times, strict=True):
            _settle(item, result=(created, updated))


def _settle(
    item: PendingVote,
    *,
    result: tuple[datetime, datetime] | None = None,
    error: BaseException | None = None,
) -> None:
    def apply() -> None:
        if item.future.done():  # the client went away
            return
        if error is not None:
            item.future.set_exception(error)
        else:
            item.future.set_result(result)  # type: ignore[arg-type]

    with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
        item.loop.call_soon_threadsafe(apply)
