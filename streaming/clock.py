"""Clocks: the real one paces the air; a virtual one lets tests run the
streamer faster than real time with the same code path."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    """Wall time for timestamps, monotonic time and sleep for pacing."""

    def now(self) -> datetime: ...

    def monotonic(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...


class RealClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)


class VirtualClock:
    """Time moves only when someone sleeps: a sleep returns at once and
    advances the clock, so a one-hour run takes as long as its CPU work."""

    def __init__(self, start: datetime | None = None) -> None:
        self._start = start or datetime(2026, 1, 1, tzinfo=UTC)
        self._elapsed = 0.0
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._start + timedelta(seconds=self._elapsed)

    def monotonic(self) -> float:
        with self._lock:
            return self._elapsed

    def sleep(self, seconds: float) -> None:
        # A tiny real pause keeps other threads (outputs, senders) moving.
        time.sleep(0)
        if seconds > 0:
            with self._lock:
                self._elapsed += seconds

    def advance(self, seconds: float) -> None:
        self.sleep(seconds)
