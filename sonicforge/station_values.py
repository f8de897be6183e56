"""The values of the station-state contract (``sonicforge.station``): small
frozen dataclasses that travel as JSON, and the checks every implementation
applies to what it is given."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, TypeVar, get_args

from sonicforge.errors import QueueEntryNotFoundError, StationStateError, UnknownCommandError

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
    # A listener's paid track request (serving): its id, its plan's
    # priority among queued requests, and the name shown while it airs
    # (None unless the listener allowed it).
    request_id: str | None = None
    priority: int = 0
    display_name: str | None = None


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
    # Set while a listener's request airs: its id, and the requester's
    # display name if they allowed it to be shown.
    request_id: str | None = None
    requested_by: str | None = None

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


def new_entry(
    track_id: str,
    source: str,
    requested_by: str | None,
    now: datetime,
    *,
    request_id: str | None = None,
    priority: int = 0,
    display_name: str | None = None,
) -> QueueEntry:
    if not track_id:
        raise StationStateError("track_id must be a non-empty string")
    return QueueEntry(
        uuid.uuid4().hex,
        track_id,
        check_source(source),
        requested_by,
        now,
        request_id=request_id,
        priority=priority,
        display_name=display_name,
    )


def listener_expiry(count: int, ttl_s: float, now: datetime) -> datetime:
    """When a replica's report of ``count`` listeners lapses; refuses a negative count."""
    if count < 0:
        raise StationStateError(f"listener count must be >= 0, got {count}")
    return now + timedelta(seconds=ttl_s)


def reordered(current: Sequence[str], entry_ids: Sequence[str]) -> list[str]:
    """``entry_ids`` first, in that order, then the others as they were."""
    moved = set(entry_ids)
    if len(moved) != len(entry_ids):
        raise StationStateError(f"entry ids repeat in the new order: {list(entry_ids)}")
    queued = set(current)
    unknown = [e for e in entry_ids if e not in queued]
    if unknown:
        raise QueueEntryNotFoundError(
            f"entries not in the queue: {', '.join(unknown)}; queued: {', '.join(current) or 'none'}"
        )
    return [*entry_ids, *(e for e in current if e not in moved)]
