"""A small in-process TTL cache for hot reads (per worker)."""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

V = TypeVar("V")


class TTLCache(Generic[V]):
    def __init__(
        self, ttl_s: float, *, max_entries: int = 512, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self._clock = clock
        self._data: dict[Hashable, tuple[float, V]] = {}

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
        if len(self._data) >= self.max_entries:
            # Drop the entry closest to expiry; queries are few and bounded.
            self._data.pop(min(self._data, key=lambda k: self._data[k][0]), None)
        self._data[key] = (self._clock() + self.ttl_s, value)
        return value

    def clear(self) -> None:
        self._data.clear()
