"""The API side of the hand-off: tail a chunk folder once per process into
one shared buffer that every listener reads by position; ICY metadata; HLS
listener counting.

One tail task per event loop reads each chunk once, however many listeners
there are. Listeners share the chunks themselves (no queue or copy per
listener) and one wake-up per new chunk: a thousand listeners cost a
thousand sends per chunk and nothing more. A listener that falls further
behind than the buffer holds (a stalled client) is dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from streaming.outputs.chunks import chunk_name, read_latest

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Chunk:
    seq: int
    data: bytes
    meta: dict[str, Any]


class TailReader:
    """One listener's position in a ``ChunkTail``."""

    def __init__(self, tail: ChunkTail, next_seq: int) -> None:
        self._tail = tail
        self.next_seq = next_seq
        self.closed = False
        self._pending: list[Chunk] = []

    def close(self) -> None:
        """Stop at the next wake-up (the client has gone)."""
        self.closed = True

    def available(self) -> list[Chunk] | None:
        """The chunks after this reader's position, at once ([] if none yet);
        ``None`` once it has fallen behind the buffer (dropped), closed, or
        the stream has gone off air."""
        if self.closed:
            return None
        buf = self._tail.buffer
        if not buf or self.next_seq > buf[-1].seq:
            return None if self._tail.off_air else []
        first, last = buf[0].seq, buf[-1].seq
        if self.next_seq < first:
            log.info("dropping a listener of %s that fell behind", self._tail.dir.name)
            self.closed = True
            return None
        # From the right end: a live reader wants one or two chunks, and a
        # deque indexes its ends in constant time.
        out = [buf[-k] for k in range(last - self.next_seq + 1, 0, -1)]
        self.next_seq = last + 1
        return out

    async def batch(self) -> list[Chunk] | None:
        """Wait for at least one new chunk and take every one there is."""
        while True:
            chunks = self.available()
            if chunks is None or chunks:
                return chunks
            await self._tail.changed()

    async def get(self) -> Chunk | None:
        """The next chunk, one at a time (``None``: dropped or closed)."""
        if not self._pending:
            chunks = await self.batch()
            if chunks is None:
                return None
            self._pending = chunks
        return self._pending.pop(0)


class ChunkTail:
    """Follows ``latest.json`` in ``directory`` and keeps the last ``keep``
    chunks for every listener to read."""

    def __init__(
        self,
        directory: Path,
        *,
        poll_s: float = 0.1,
        backlog: int = 2,
        keep: int = 64,
        stale_s: float | None = None,
    ) -> None:
        self.dir = directory
        self._stale_s = stale_s
        self.off_air = False  # nothing new for stale_s: readers end
        self._poll_s = poll_s
        self.backlog = max(1, backlog)
        self.buffer: deque[Chunk] = deque(maxlen=max(keep, self.backlog))
        self._readers = 0
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Future[None] | None = None
        self._last_seq: int | None = None
        self.reads = 0  # chunk files read (one per chunk, whatever the audience)

    @property
    def listeners(self) -> int:
        return self._readers

    def latest(self) -> dict[str, Any] | None:
        return read_latest(self.dir)

    def _ensure_task(self) -> None:
        loop = asyncio.get_running_loop()
        if self._task is None or self._task.done() or self._loop is not loop:
            self._loop, self._last_seq, self._wake = loop, None, None
            self.buffer.clear()
            self._task = loop.create_task(self._run(), name=f"tail-{self.dir.name}")

    def changed(self) -> asyncio.Future[None]:
        """A future that completes when the next chunks arrive."""
        if self._wake is None or self._wake.done():
            assert self._loop is not None
            self._wake = self._loop.create_future()
        return self._wake

    @contextlib.asynccontextmanager
    async def subscribe(self) -> AsyncIterator[TailReader]:
        """A reader that starts ``backlog`` chunks before the live edge."""
        self._ensure_task()
        if not self.buffer:
            with contextlib.suppress(Exception):  # the first need not wait for the poll
                self._poll()
        start = self.buffer[-1].seq - self.backlog + 1 if self.buffer else 0
        reader = TailReader(self, max(start, self.buffer[0].seq) if self.buffer else 0)
        self._readers += 1
        try:
            yield reader
        finally:
            reader.closed = True
            self._readers -= 1

    def _read(self, seq: int, ext: str, meta: dict[str, Any]) -> Chunk | None:
        try:
            data = (self.dir / chunk_name(seq, ext)).read_bytes()
        except FileNotFoundError:  # already rotated out
            return None
        self.reads += 1
        return Chunk(seq, data, meta)

    async def _run(self) -> None:
        while True:
            try:
                self._poll()
            except Exception:  # a torn read or a vanished folder: try again
                log.debug("tail %s poll failed", self.dir, exc_info=True)
            await asyncio.sleep(self._poll_s)

    def _poll(self) -> None:
        latest = read_latest(self.dir)
        stale = latest is None or (
            self._stale_s is not None
            and time.time() - float(latest.get("written_at", 0)) > self._stale_s
        )
        if stale != self.off_air:
            self.off_air = stale
            self._wake_all()
        if latest is None:
            return
        seq, ext = int(latest["seq"]), str(latest["ext"])
        if self._last_seq is None or seq < self._last_seq or seq - self._last_seq > 20:
            # Start (or restart) near the live edge, with a short backlog.
            self._last_seq = seq - self.backlog
            self.buffer.clear()
        if seq == self._last_seq:
            return
        meta = {k: v for k, v in latest.items() if k not in ("seq", "ext")}
        for n in range(self._last_seq + 1, seq + 1):
            chunk = self._read(n, ext, meta)
            if chunk is not None:
                self.buffer.append(chunk)
        self._last_seq = seq
        self._wake_all()

    def _wake_all(self) -> None:
        if self._wake is not None and not self._wake.done():
            self._wake.set_result(None)


class IcyInterleaver:
    """Inserts a metadata block after every ``metaint`` bytes of audio
    (SHOUTcast/Icecast): a length byte (×16) and ``StreamTitle='…';``."""

    def __init__(self, metaint: int = 16000) -> None:
        self.metaint = metaint
        self._left = metaint
        self._sent_title: str | None = None

    @staticmethod
    def block(title: str | None) -> bytes:
        if title is None:
            return b"\x00"
        # A quote would end the value early in every client's parser.
        text = f"StreamTitle='{title.replace(chr(39), '’')}';".encode()[: 255 * 16]
        padded = text + b"\x00" * (-len(text) % 16)
        return bytes([len(padded) // 16]) + padded

    def feed(self, data: bytes, title: str) -> bytes:
        out = bytearray()
        while data:
            take = data[: self._left]
            out += take
            data = data[len(take) :]
            self._left -= len(take)
            if self._left == 0:
                changed = title != self._sent_title
                out += self.block(title if changed else None)
                self._sent_title = title
                self._left = self.metaint
        return bytes(out)


class HlsListeners:
    """HLS listeners as AzuraCast counts them: distinct session keys seen
    within ``window_s`` (twice the segment duration)."""

    def __init__(self, window_s: float = 12.0, *, clock: Callable[[], float] = time.monotonic):
        self.window_s = window_s
        self._clock = clock
        self._seen: dict[str, float] = {}

    def touch(self, key: str) -> None:
        self._seen[key] = self._clock()

    def count(self) -> int:
        cutoff = self._clock() - self.window_s
        for key in [k for k, t in self._seen.items() if t < cutoff]:
            del self._seen[key]
        return len(self._seen)
