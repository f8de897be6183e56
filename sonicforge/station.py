"""The station-state contract shared by the streamer and the API.

One interface, two implementations: ``RedisStationState`` (production, keys
under ``sonicforge:station:``) and ``InMemoryStationState`` (the embedded
default when no Redis URL is set: thread-safe, shared by everything in one
process). It holds the upcoming queue, now-playing, control commands,
published now-playing changes, output status with listener counts, and the
streamer's heartbeat. The values live in ``sonicforge.station_values`` and
are re-exported here.
"""

from __future__ import annotations

import abc
import queue
import threading
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from sonicforge.errors import ConfigurationError, QueueEntryNotFoundError
from sonicforge.station_values import (
    COMMAND_HISTORY,
    COMMANDS,
    OUTPUT_STATES,
    QUEUE_SOURCES,
    Clock,
    Command,
    ControlCommand,
    Heartbeat,
    NowPlaying,
    NowPlayingChange,
    OutputState,
    OutputStatus,
    QueueEntry,
    QueueSource,
    check_command,
    check_source,
    listener_expiry,
    new_entry,
    reordered,
    utcnow,
)

__all__ = [
    "COMMANDS",
    "COMMAND_HISTORY",
    "OUTPUT_STATES",
    "QUEUE_SOURCES",
    "Clock",
    "Command",
    "ControlCommand",
    "Heartbeat",
    "InMemoryStationState",
    "NowPlaying",
    "NowPlayingChange",
    "OutputState",
    "OutputStatus",
    "QueueEntry",
    "QueueSource",
    "StationState",
    "Subscription",
    "check_command",
    "check_source",
    "listener_expiry",
    "new_entry",
    "reordered",
    "station_state_from_url",
    "utcnow",
]


class Subscription(abc.ABC):
    """Published now-playing changes; iterate, or ``get`` with a timeout."""

    @abc.abstractmethod
    def get(self, timeout_s: float | None = None) -> NowPlayingChange | None:
        """The next change, or ``None`` when ``timeout_s`` passes first."""

    @abc.abstractmethod
    def close(self) -> None: ...

    def __iter__(self) -> Iterator[NowPlayingChange]:
        while True:
            change = self.get(timeout_s=1.0)
            if change is not None:
                yield change

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class StationState(abc.ABC):
    """Queue, now-playing, control, outputs and heartbeat of the station."""

    # -- upcoming queue ---------------------------------------------------
    @abc.abstractmethod
    def enqueue(
        self,
        track_id: str,
        *,
        source: QueueSource = "request",
        requested_by: str | None = None,
        request_id: str | None = None,
        priority: int = 0,
        display_name: str | None = None,
    ) -> QueueEntry:
        """Queue a track. Operators' entries air first, then listeners'
        requests by ``priority`` (higher first), each in the order queued."""

    @abc.abstractmethod
    def remove(self, entry_id: str) -> QueueEntry:
        """Remove an entry; ``QueueEntryNotFoundError`` if it is not queued."""

    @abc.abstractmethod
    def reorder(self, entry_ids: Sequence[str]) -> list[QueueEntry]:
        """Move ``entry_ids`` to the front in that order; the rest follow."""

    @abc.abstractmethod
    def pop_next(self) -> QueueEntry | None: ...

    @abc.abstractmethod
    def queue(self) -> list[QueueEntry]: ...

    # -- now playing ------------------------------------------------------
    @abc.abstractmethod
    def set_now_playing(self, now_playing: NowPlaying | None) -> None:
        """Replace now-playing and publish the change to subscribers."""

    @abc.abstractmethod
    def update_position(self, position_s: float) -> None:
        """Move the position of the current track (not published)."""

    @abc.abstractmethod
    def now_playing(self) -> NowPlaying | None: ...

    @abc.abstractmethod
    def subscribe(self) -> Subscription: ...

    # -- control ----------------------------------------------------------
    @abc.abstractmethod
    def send_command(self, command: str, *, issued_by: str | None = None) -> ControlCommand:
        """Record a command for the streamer; unknown ones are refused."""

    @abc.abstractmethod
    def commands_since(self, after_id: int) -> list[ControlCommand]:
        """Commands with an id above ``after_id``, oldest first."""

    @abc.abstractmethod
    def last_command_id(self) -> int: ...

    # -- outputs, listeners, heartbeat ------------------------------------
    @abc.abstractmethod
    def set_output_status(self, status: OutputStatus) -> None: ...

    @abc.abstractmethod
    def outputs(self) -> list[OutputStatus]: ...

    @abc.abstractmethod
    def set_listeners(
        self, output: str, count: int, *, replica: str = "local", ttl_s: float = 30.0
    ) -> None:
        """This replica's listener count of ``output``; it lapses after ``ttl_s``."""

    @abc.abstractmethod
    def listener_counts(self) -> dict[str, int]:
        """Listeners per output, summed over the replicas that reported."""

    @abc.abstractmethod
    def beat(self, info: dict[str, Any]) -> Heartbeat: ...

    @abc.abstractmethod
    def heartbeat(self) -> Heartbeat | None: ...

    def total_listeners(self) -> int:
        return sum(self.listener_counts().values())


class _MemorySubscription(Subscription):
    def __init__(self, owner: InMemoryStationState) -> None:
        self._owner = owner
        self.inbox: queue.Queue[NowPlayingChange] = queue.Queue(maxsize=256)

    def get(self, timeout_s: float | None = None) -> NowPlayingChange | None:
        try:
            return self.inbox.get(timeout=timeout_s)
        except queue.Empty:
            return None

    def close(self) -> None:
        self._owner._unsubscribe(self)


class InMemoryStationState(StationState):
    """The embedded implementation: one process, guarded by one lock."""

    def __init__(self, *, clock: Clock = utcnow) -> None:
        self._clock = clock
        self._lock = threading.RLock()
        self._queue: list[QueueEntry] = []
        self._now: NowPlaying | None = None
        self._commands: deque[ControlCommand] = deque(maxlen=COMMAND_HISTORY)
        self._command_id = 0
        self._outputs: dict[str, OutputStatus] = {}
        self._listeners: dict[tuple[str, str], tuple[int, datetime]] = {}
        self._heartbeat: Heartbeat | None = None
        self._subscribers: list[_MemorySubscription] = []

    def enqueue(
        self,
        track_id: str,
        *,
        source: QueueSource = "request",
        requested_by: str | None = None,
        request_id: str | None = None,
        priority: int = 0,
        display_name: str | None = None,
    ) -> QueueEntry:
        entry = new_entry(
            track_id,
            source,
            requested_by,
            self._clock(),
            request_id=request_id,
            priority=priority,
            display_name=display_name,
        )
        with self._lock:
            self._queue.append(entry)
        return entry

    def remove(self, entry_id: str) -> QueueEntry:
        with self._lock:
            for i, entry in enumerate(self._queue):
                if entry.entry_id == entry_id:
                    return self._queue.pop(i)
        raise QueueEntryNotFoundError(f"no queue entry {entry_id!r}")

    def reorder(self, entry_ids: Sequence[str]) -> list[QueueEntry]:
        with self._lock:
            by_id = {e.entry_id: e for e in self._queue}
            self._queue = [by_id[i] for i in reordered(list(by_id), entry_ids)]
            return list(self._queue)

    def pop_next(self) -> QueueEntry | None:
        with self._lock:
            return self._queue.pop(0) if self._queue else None

    def queue(self) -> list[QueueEntry]:
        with self._lock:
            return list(self._queue)

    def set_now_playing(self, now_playing: NowPlaying | None) -> None:
        change = NowPlayingChange(now_playing, self._clock())
        with self._lock:
            self._now = now_playing
            for sub in self._subscribers:
                if sub.inbox.full():  # a stalled subscriber loses its oldest change
                    sub.inbox.get_nowait()
                sub.inbox.put_nowait(change)

    def update_position(self, position_s: float) -> None:
        with self._lock:
            if self._now is not None:
                self._now = replace(self._now, position_s=position_s, updated_at=self._clock())

    def now_playing(self) -> NowPlaying | None:
        with self._lock:
            return self._now

    def subscribe(self) -> Subscription:
        sub = _MemorySubscription(self)
        with self._lock:
            self._subscribers.append(sub)
        return sub

    def _unsubscribe(self, sub: _MemorySubscription) -> None:
        with self._lock:
            if sub in self._subscribers:
                self._subscribers.remove(sub)

    def send_command(self, command: str, *, issued_by: str | None = None) -> ControlCommand:
        name = check_command(command)
        with self._lock:
            self._command_id += 1
            cmd = ControlCommand(self._command_id, name, self._clock(), issued_by)
            self._commands.append(cmd)
            return cmd

    def commands_since(self, after_id: int) -> list[ControlCommand]:
        with self._lock:
            return [c for c in self._commands if c.command_id > after_id]

    def last_command_id(self) -> int:
        with self._lock:
            return self._command_id

    def set_output_status(self, status: OutputStatus) -> None:
        with self._lock:
            self._outputs[status.name] = status

    def outputs(self) -> list[OutputStatus]:
        with self._lock:
            return sorted(self._outputs.values(), key=lambda s: s.name)

    def set_listeners(
        self, output: str, count: int, *, replica: str = "local", ttl_s: float = 30.0
    ) -> None:
        expires = listener_expiry(count, ttl_s, self._clock())
        with self._lock:
            self._listeners[(output, replica)] = (count, expires)

    def listener_counts(self) -> dict[str, int]:
        now = self._clock()
        out: dict[str, int] = {}
        with self._lock:
            for (output, _replica), (count, expires) in self._listeners.items():
                if expires > now:
                    out[output] = out.get(output, 0) + count
        return out

    def beat(self, info: dict[str, Any]) -> Heartbeat:
        hb = Heartbeat(self._clock(), dict(info))
        with self._lock:
            self._heartbeat = hb
        return hb

    def heartbeat(self) -> Heartbeat | None:
        with self._lock:
            return self._heartbeat


_embedded: InMemoryStationState | None = None
_embedded_lock = threading.Lock()


def station_state_from_url(url: str | None) -> StationState:
    """Redis for ``redis://``, ``rediss://`` or ``unix://`` URLs; otherwise the
    process-wide in-memory state, so an embedded streamer and the API share it."""
    global _embedded
    if url and url.startswith(("redis://", "rediss://", "unix://", "redis+sentinel://")):
        from sonicforge.station_redis import RedisStationState

        return RedisStationState.from_url(url)
    if url and url not in ("memory://", "memory"):
        raise ConfigurationError(
            f"unsupported station state URL {url!r}; allowed: redis://, rediss://, unix://, "
            "redis+sentinel://, memory://, or no URL for the in-process state"
        )
    with _embedded_lock:
        if _embedded is None:
            _embedded = InMemoryStationState()
        return _embedded


def __getattr__(name: str) -> Any:
    # Lazy, so importing the contract never imports redis-py.
    if name == "RedisStationState":
        from sonicforge.station_redis import RedisStationState

        return RedisStationState
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
