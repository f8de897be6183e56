"""Every airing becomes a row of the ``plays`` table, written in batches.

A play is upserted when it starts (``ended_at`` null) and again when it ends,
merged on ``play_id``: a retry or a crash between the two never duplicates a
row. Writes run on a background thread, because a Delta commit (tens of
milliseconds locally, more on S3) must not hold up the audio.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime
from typing import Any

from sonicforge import ids
from sonicforge.lakehouse import Lakehouse
from streaming.clock import Clock

log = logging.getLogger(__name__)

# Unflushed rows kept while the lakehouse is unreachable; beyond this the
# oldest are dropped (and logged) rather than growing without bound.
MAX_PENDING = 10_000


def new_play_id(now: datetime) -> str:
    """A UUIDv7 at the streamer's clock: time-ordered, so plays sort by when they started."""
    return ids.uuid7(now)


class PlayRecorder:
    """Buffers play rows and upserts them every ``flush_s`` or ``max_batch``."""

    def __init__(
        self,
        lakehouse: Lakehouse,
        *,
        clock: Clock,
        channel: str = "main",
        flush_s: float = 60.0,
        max_batch: int = 50,
    ) -> None:
        self._lh = lakehouse
        self._clock = clock
        self.channel = channel
        self._flush_s = flush_s
        self._max_batch = max_batch
        self._lock = threading.Lock()
        self._pending: dict[str, dict[str, Any]] = {}
        self._last_flush = clock.monotonic()
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="plays")
        self._inflight: Future[int] | None = None
        self.written = 0

    def start(self, play_id: str, track_id: str, started_at: datetime) -> None:
        self._put(play_id, track_id, started_at, None, skipped=False, listeners=None)

    def end(
        self,
        play_id: str,
        track_id: str,
        started_at: datetime,
        ended_at: datetime,
        *,
        skipped: bool,
        listeners: int | None,
    ) -> None:
        self._put(play_id, track_id, started_at, ended_at, skipped=skipped, listeners=listeners)

    def _put(
        self,
        play_id: str,
        track_id: str,
        started_at: datetime,
        ended_at: datetime | None,
        *,
        skipped: bool,
        listeners: int | None,
    ) -> None:
        row = {
            "play_id": play_id,
            "track_id": track_id,
            "started_at": started_at,
            "ended_at": ended_at,
            "listeners": listeners,
            "skipped": skipped,
            "channel": self.channel,
        }
        with self._lock:
            self._pending[play_id] = row
            if len(self._pending) > MAX_PENDING:
                dropped = next(iter(self._pending))
                del self._pending[dropped]
                log.error("plays buffer full; dropped play %s", dropped)
        self.maybe_flush()

    def maybe_flush(self) -> None:
        """Start a background flush when one is due and none is running."""
        due = (
            self._clock.monotonic() - self._last_flush >= self._flush_s
            or len(self._pending) >= self._max_batch
        )
        if due and self._pending and (self._inflight is None or self._inflight.done()):
            self._last_flush = self._clock.monotonic()
            self._inflight = self._pool.submit(self.flush)

    def flush(self) -> int:
        """Upsert the buffered rows now; returns rows written (0 on failure)."""
        with self._lock:
            batch = dict(self._pending)
        if not batch:
            return 0
        try:
            self._lh.upsert("plays", list(batch.values()))
        except Exception as exc:  # keep the rows for the next flush
            log.warning("writing %d plays failed, will retry: %s", len(batch), exc)
            return 0
        with self._lock:
            for play_id, row in batch.items():
                if self._pending.get(play_id) is row:  # not changed meanwhile
                    del self._pending[play_id]
        self.written += len(batch)
        return len(batch)

    def close(self) -> None:
        """Wait for a running flush, write what is left, stop the thread."""
        if self._inflight is not None:
            self._inflight.result()
        self.flush()
        self._pool.shutdown(wait=True)
