"""Reading the station state into the API's stream schemas."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from serving.schemas.stream import NowPlayingPublic, OutputPublic, QueueEntryPublic, StreamStatus
from serving.services.health import HEARTBEAT_STALE_S
from sonicforge.station import Heartbeat, NowPlaying, OutputStatus, QueueEntry, StationState


@dataclass(frozen=True)
class StationView:
    """One read of the station state (cached for a second per worker)."""

    now_playing: NowPlaying | None
    heartbeat: Heartbeat | None
    outputs: list[OutputStatus]
    listeners: dict[str, int]
    queue_length: int


def read_station(station: StationState) -> StationView:
    return StationView(
        now_playing=station.now_playing(),
        heartbeat=station.heartbeat(),
        outputs=station.outputs(),
        listeners=station.listener_counts(),
        queue_length=len(station.queue()),
    )


def _uptime(hb: Heartbeat, now: datetime) -> float | None:
    """The streamer reports ``started_at`` (ISO time) or ``uptime_s`` in its
    heartbeat; uptime is extrapolated from the beat to now."""
    started = hb.info.get("started_at")
    if isinstance(started, str):
        try:
            return max(0.0, (now - datetime.fromisoformat(started)).total_seconds())
        except ValueError:
            return None
    uptime = hb.info.get("uptime_s")
    if isinstance(uptime, (int, float)):
        return float(uptime) + max(0.0, hb.age_s(now))
    return None


def stream_status(view: StationView, now: datetime | None = None) -> StreamStatus:
    now = now or datetime.now(UTC)
    hb = view.heartbeat
    state: Literal["on_air", "stalled", "offline"]
    if hb is None:
        state, age, uptime = "offline", None, None
    else:
        age = max(0.0, hb.age_s(now))
        state = "on_air" if age <= HEARTBEAT_STALE_S else "stalled"
        uptime = _uptime(hb, now)
    np = view.now_playing
    return StreamStatus(
        state=state,
        now_playing=None
        if np is None
        else NowPlayingPublic(
            track_id=np.track_id,
            title=np.title,
            artist=np.artist,
            genre=np.genre,
            started_at=np.started_at,
            position_s=round(np.position_at(now), 3) if state == "on_air" else np.position_s,
            duration_s=np.duration_s,
            source=np.source,
        ),
        listeners=sum(view.listeners.values()),
        uptime_s=round(uptime, 3) if uptime is not None else None,
        heartbeat_age_s=round(age, 3) if age is not None else None,
        outputs=[
            OutputPublic(
                name=o.name,
                state=o.state,
                detail=o.detail,
                restarts=o.restarts,
                listeners=view.listeners.get(o.name, 0),
                updated_at=o.updated_at,
            )
            for o in view.outputs
        ],
        queue_length=view.queue_length,
    )


def queue_entry(entry: QueueEntry, *, show_requester: bool) -> QueueEntryPublic:
    return QueueEntryPublic(
        entry_id=entry.entry_id,
        track_id=entry.track_id,
        source=entry.source,
        requested_by=entry.requested_by if show_requester else None,
        added_at=entry.added_at,
    )
