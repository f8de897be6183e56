"""Flushing the stream's listening heartbeats into the event outbox.

The API builds one ``ListeningRecorder`` (``streaming.listening``) per
worker and hands it to the stream router; ``ListeningFlusher`` runs in the
worker's event loop and, every ``interval_s`` seconds, turns what the
recorder collected into outbox rows (``type`` track, ``event`` heartbeat,
``properties.output`` mp3 or hls) and writes them as one batch through the
tracking endpoint's ``EventWriter``, the same insert path and transaction
rules as ``POST /api/v1/analytics/track``. The ``events`` asset drains them
into Delta, and ``listener_sessions`` builds sessions from them.

Only the API process, which has the app database, records listening; the
standalone streamer writes plays only and is given no recorder.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime
from typing import Any

from serving.services.analytics_ingest import EventWriter
from serving.services.outbox import db_time, dumps
from sonicforge import ids
from streaming.listening import ListeningRecorder

log = logging.getLogger("serving.listening")

# Rows kept for a later try while the database refuses them.
MAX_PENDING = 50_000


def to_rows(events: list[dict[str, Any]], dialect: str) -> list[tuple[Any, ...]]:
    """Outbox rows (``outbox.ROW_COLUMNS`` order) of the recorder's events."""
    rows = []
    received = datetime.now(UTC)
    received_db = db_time(received, dialect)
    for ev in events:
        ts = datetime.fromtimestamp(ev["ts"], UTC)
        props = dict(ev["properties"])
        props["started_at"] = datetime.fromtimestamp(props["started_at"], UTC).isoformat()
        context = {"user_agent": ev["user_agent"], "app": {"name": "stream"}}
        rows.append(
            (ids.uuid7(ts), "track", "heartbeat", None, ev["anonymous_id"], None, dumps(props),
             dumps(context), None, None, None, received_db, db_time(ts, dialect), None, None,
             None)
        )  # fmt: skip
    return rows


class ListeningFlusher:
    """A background task: the recorder's events to the outbox every few seconds."""

    def __init__(
        self, recorder: ListeningRecorder, writer: EventWriter, *, interval_s: float = 5.0
    ) -> None:
        self.recorder, self.writer, self.interval_s = recorder, writer, interval_s
        self._task: asyncio.Task[None] | None = None
        self._pending: list[tuple[Any, ...]] = []
        self.rows_written = 0

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            if task.get_loop() is asyncio.get_running_loop():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            else:  # started and stopped from different loops (a test client's portals)
                with contextlib.suppress(RuntimeError):  # that loop has closed
                    task.get_loop().call_soon_threadsafe(task.cancel)
        await self.flush(final=True)

    async def flush(self, *, final: bool = False) -> int:
        """Write what is due now; returns the rows written."""
        self._pending.extend(to_rows(self.recorder.collect(final=final), self.writer.dialect))
        if not self._pending:
            return 0
        rows, self._pending = self._pending, []
        try:
            await self.writer.write(rows)
        except Exception:
            log.warning("listening heartbeats not written; kept for the next flush", exc_info=True)
            self._pending = rows[-MAX_PENDING:]
            return 0
        self.rows_written += len(rows)
        return len(rows)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            await self.flush()
