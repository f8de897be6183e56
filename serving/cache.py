"""In-process caches for hot reads (per worker).

``TTLCache`` forgets entries after their time. ``RefreshingCache`` serves a
stale entry while one background task recomputes it (stale-while-
revalidate), and lets concurrent misses of one key share one computation:
under load, an expiring entry costs no request a wait and no stampede of
identical queries.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Hashable
from typing import Any, Generic, TypeVar

import anyio

V = TypeVar("V")
log = logging.getLogger("serving.cache")


class _Entries(Generic[V]):
    """Entries with one TTL, at most ``max_entries`` of them."""

    def __init__(
        self, ttl_s: float, *, max_entries: int = 512, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self._clock = clock
        self._data: dict[Hashable, tuple[float, V]] = {}

    def _store(self, key: Hashable, value: V) -> None:
        if key not in self._data and len(self._data) >= self.max_entries:
            # One TTL for all: the first inserted is the first to expire.
            self._data.pop(next(iter(self._data)))
        self._data.pop(key, None)  # re-inserted last, in expiry order
        self._data[key] = (self._clock() + self.ttl_s, value)

    def clear(self) -> None:
        self._data.clear()


class TTLCache(_Entries[V]):
    def get(self, key: Hashable) -> V | None:
        hit = self._data.get(key)
        if hit is None:
            return None
        expires, value = hit
        if self._clock() >= expires:
            self._data.pop(key, None)
            return None
        return value

    def set(self, key: Hashable, value: V) -> V:
        self._store(key, value)
        return value


class RefreshingCache(_Entries[V]):
    """Values computed by a blocking function (run in a worker thread)."""

    def __init__(
        self, ttl_s: float, *, max_entries: int = 256, clock: Callable[[], float] = time.monotonic
    ) -> None:
        super().__init__(ttl_s, max_entries=max_entries, clock=clock)
        self._inflight: dict[Hashable, asyncio.Future[V]] = {}

    async def get(self, key: Hashable, compute: Callable[[], V]) -> V:
        entry = self._data.get(key)
        if entry is not None and self.ttl_s > 0:
            expires, value = entry
            if self._clock() >= expires and key not in self._inflight:
                self._start(key, compute)
            return value
        pending = self._inflight.get(key) or self._start(key, compute)
        return await asyncio.shield(pending)

    def _start(self, key: Hashable, compute: Callable[[], V]) -> asyncio.Future[V]:
        async def run() -> V:
            try:
                value = await anyio.to_thread.run_sync(compute)
                if self.ttl_s > 0:
                    self._store(key, value)
                return value
            finally:
                self._inflight.pop(key, None)

        task = asyncio.get_running_loop().create_task(run())
        # A background refresh nobody awaits must still report its failure.
        task.add_done_callback(_log_failure)
        self._inflight[key] = task
        return task


def _log_failure(task: asyncio.Future[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("cache refresh failed", exc_info=task.exception())
