"""The station-state contract shared by the streamer and the API.

One interface, two implementations: ``RedisStationState`` (production, keys
under ``sonicforge:station:``) and ``InMemoryStationState`` (the embedded
default when no Redis URL is set: thread-safe, shared by everything in one
process). It holds the upcoming queue, now-playing, control commands,
published now-playing changes, output status with listener counts, and the
streamer's heartbeat. Values are small frozen dataclasses that travel as JSON.
"""

from __future__ import annotations

import abc
import json
import queue
import threading
import uuid
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, TypeVar, get_args

from sonicforge.errors import (
    ConfigurationError,
    QueueEntryNotFoundError,
    StationStateError,
    UnknownCommandError,
)

QueueSource = Literal["request", "operator"]
Command = Literal["start", "stop", "skip"]
OutputState = Literal["starting", "running", "restarting", "failed", "stopped"]
COMMANDS: tuple[str, ...] = get_args(Command)
QUEUE_SOURCES: tuple[str, ...] = get_args(QueueSource)
OUTPUT_STATES: tuple[str, ...] = get_args(OutputState)
# Commands older than this are history, not orders: a streamer that starts
# late must not replay a skip an operator sent minutes ago.
COMMAND_HISTORY = 100

Clock = Callable[[], datetime]
T = TypeVar("T")


def utcnow() -> datetime:
    return datetime.now(UTC)


def _encode(obj: Any) -> str:
    def default(value: Any) -> Any:
        if isinstance(value, datetime):
            return value.isoformat()
        raise TypeError(f"cannot encode {type(value).__name__}")

    return json.dumps(asdict(obj), default=default, separators=(",", ":"))


def _decode(cls: type[T], raw: str | bytes) -> T:
    data = json.loads(raw)
    for f in fields(cls):  # type: ignore[arg-type]
        if "datetime" in str(f.type) and isinstance(data.get(f.name), str):
            data[f.name] = datetime.fromisoformat(data[f.name])
    return cls(**data)


@dataclass(frozen=True)
class QueueEntry:
    """A track waiting to air before the rotation's picks."""

    entry_id: str
    track_id: str
    source: QueueSource
    requested_by: str | None
    added_at: datetime


@dataclass(frozen=True)
class NowPlaying:
    """What is on air; ``position_s`` is as of ``updated_at``."""

    track_id: str
    title: str
    artist: str
    genre: str
    started_at: datetime
    position_s: float
    duration_s: float
    play_id: str | None = None
    source: str = "rotation"
    updated_at: datetime | None = None

    def position_at(self, now: datetime) -> float:
        """The position extrapolated to ``now`` (clients between updates)."""
        base = self.updated_at or self.started_at
        return min(self.duration_s, self.position_s + max(0.0, (now - base).total_seconds()))


@dataclass(frozen=True)
class NowPlayingChange:
    """A published change: a new track, or ``None`` when the station stops."""

    now_playing: NowPlaying | None
    published_at: datetime

    def to_json(self) -> str:
        np = _encode(self.now_playing) if self.now_playing else "null"
        return f'{{"now_playing":{np},"published_at":"{self.published_at.isoformat()}"}}'

    @classmethod
    def from_json(cls, raw: str | bytes) -> NowPlayingChange:
        data = json.loads(raw)
        np = data["now_playing"]
        return cls(
            now_playing=_decode(NowPlaying, json.dumps(np)) if np else None,
            published_at=datetime.fromisoformat(data["published_at"]),
        )


@dataclass(frozen=True)
class ControlCommand:
    """An operator command; ids increase by one per command, station-wide."""

    command_id: int
    command: Command
    issued_at: datetime
    issued_by: str | None = None


@dataclass(frozen=True)
class OutputStatus:
    """The health of one output (``hls``, ``mp3``, ``rtmp:youtube`` …)."""

    name: str
    state: OutputState
    detail: str = ""
    restarts: int = 0
    updated_at: datetime = field(default_factory=utcnow)


@dataclass(frozen=True)
class Heartbeat:
    """The streamer's last sign of life and what it reported."""

    at: datetime
    info: dict[str, Any]

    def age_s(self, now: datetime) -> float:
        return (now - self.at).total_seconds()


def check_command(command: str) -> Command:
    if command not in COMMANDS:
        raise UnknownCommandError(
            f"unknown command {command!r}; allowed commands: {', '.join(COMMANDS)}"
        )
    return command  # type: ignore[return-value]


def check_source(source: str) -> QueueSource:
    if source not in QUEUE_SOURCES:
        raise StationStateError(
            f"unknown queue source {source!r}; allowed sources: {', '.join(QUEUE_SOURCES)}"
        )
    return source  # type: ignore[return-value]


def new_entry(track_id: str, source: str, requested_by: str | None, now: datetime) -> QueueEntry:
    if not track_id:
        raise StationStateError("track_id must be a non-empty string")
    return QueueEntry(uuid.uuid4().hex, track_id, check_source(source), requested_by, now)


def reordered(current: Sequence[str], entry_ids: Sequence[str]) -> list[str]:
    """``entry_ids`` first, in that order, then the others as they were."""
    if len(set(entry_ids)) != len(entry_ids):
        raise StationStateError(f"entry ids repeat in the new order: {list(entry_ids)}")
    unknown = [e for e in entry_ids if e not in current]
    if unknown:
        raise QueueEntryNotFoundError(
            f"entries not in the queue: {', '.join(unknown)}; queued: {', '.join(current) or 'none'}"
        )
    return [*entry_ids, *(e for e in current if e not in set(entry_ids))]


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
        self, track_id: str, *, source: QueueSource = "request", requested_by: str | None = None
    ) -> QueueEntry: ...

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
        self, track_id: str, *, source: QueueSource = "request", requested_by: str | None = None
    ) -> QueueEntry:
        entry = new_entry(track_id, source, requested_by, self._clock())
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
        if count < 0:
            raise StationStateError(f"listener count must be >= 0, got {count}")
        expires = self._clock() + timedelta(seconds=ttl_s)
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
    if url and url.startswith(("redis://", "rediss://", "unix://")):
        from sonicforge.station_redis import RedisStationState

        return RedisStationState.from_url(url)
    if url and url not in ("memory://", "memory"):
        raise ConfigurationError(
            f"unsupported station state URL {url!r}; allowed: redis://, rediss://, unix://, "
            "memory://, or no URL for the in-process state"
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
