"""The API side of the hand-off: tail a chunk folder once per process and
fan each chunk out to every listener; ICY metadata; HLS listener counting.

One tail task per event loop reads each chunk once, however many listeners
there are; a listener whose queue fills (a stalled client) is dropped
rather than allowed to hold memory or slow the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from streaming.outputs.chunks import chunk_name, read_latest

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Chunk:
    seq: int
    data: bytes
    meta: dict[str, Any]


@dataclass(eq=False)
class Listener:
    queue: asyncio.Queue[Chunk | None] = field(default_factory=lambda: asyncio.Queue(maxsize=64))


class ChunkTail:
    """Follows ``latest.json`` in ``directory`` and broadcasts new chunks."""

    def __init__(self, directory: Path, *, poll_s: float = 0.1, backlog: int = 2) -> None:
        self.dir = directory
        self._poll_s = poll_s
        self._recent: deque[Chunk] = deque(maxlen=max(1, backlog))
        self._listeners: set[Listener] = set()
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._last_seq: int | None = None

    @property
    def listeners(self) -> int:
        return len(self._listeners)

    def latest(self) -> dict[str, Any] | None:
        return read_latest(self.dir)

    def _ensure_task(self) -> None:
        loop = asyncio.get_running_loop()
        if self._task is None or self._task.done() or self._loop is not loop:
            self._loop, self._last_seq = loop, None
            self._recent.clear()
            self._task = loop.create_task(self._run(), name=f"tail-{self.dir.name}")

    @contextlib.asynccontextmanager
    async def subscribe(self) -> AsyncIterator[asyncio.Queue[Chunk | None]]:
        """A queue of chunks, primed with the last ``backlog`` ones."""
        self._ensure_task()
        listener = Listener()
        for chunk in self._recent:
            listener.queue.put_nowait(chunk)
        self._listeners.add(listener)
        try:
            yield listener.queue
        finally:
            self._listeners.discard(listener)

    def _read(self, seq: int, ext: str, meta: dict[str, Any]) -> Chunk | None:
        try:
            return Chunk(seq, (self.dir / chunk_name(seq, ext)).read_bytes(), meta)
        except FileNotFoundError:  # already rotated out
            return None

    async def _run(self) -> None:
        while True:
            try:
                self._poll()
            except Exception:  # a torn read or a vanished folder: try again
                log.debug("tail %s poll failed", self.dir, exc_info=True)
            await asyncio.sleep(self._poll_s)

    def _poll(self) -> None:
        latest = read_latest(self.dir)
        if latest is None:
            return
        seq, ext = int(latest["seq"]), str(latest["ext"])
        if self._last_seq is None or seq < self._last_seq or seq - self._last_seq > 20:
            # Start (or restart) near the live edge, with a short backlog.
            self._last_seq = seq - (self._recent.maxlen or 1)
        meta = {k: v for k, v in latest.items() if k not in ("seq", "ext")}
        for n in range(self._last_seq + 1, seq + 1):
            chunk = self._read(n, ext, meta)
            if chunk is None:
                continue
            self._recent.append(chunk)
            for listener in list(self._listeners):
                try:
                    listener.queue.put_nowait(chunk)
                except asyncio.QueueFull:
                    log.info("dropping a listener of %s that stopped reading", self.dir.name)
                    self._listeners.discard(listener)
                    with contextlib.suppress(asyncio.QueueEmpty):
                        listener.queue.get_nowait()
                    listener.queue.put_nowait(None)
        self._last_seq = seq


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
    """Distinct clients that fetched a segment within ``window_s``."""

    def __init__(self, window_s: float = 30.0) -> None:
        self._window = window_s
        self._seen: dict[str, float] = {}

    def touch(self, client: str) -> None:
        self._seen[client] = time.monotonic()

    def count(self) -> int:
        cutoff = time.monotonic() - self._window
        for key in [k for k, t in self._seen.items() if t < cutoff]:
            del self._seen[key]
        return len(self._seen)
