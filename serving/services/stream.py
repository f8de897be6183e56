"""Reading the station state into the API's stream schemas."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

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


Liveness = Literal["on_air", "stalled", "offline"]


def _liveness(view: StationView, now: datetime) -> tuple[Liveness, float | None, float | None]:
    """The station's state, the heartbeat's age and the streamer's uptime at ``now``."""
    hb = view.heartbeat
    if hb is None:
        return "offline", None, None
    age = max(0.0, hb.age_s(now))
    return ("on_air" if age <= HEARTBEAT_STALE_S else "stalled"), age, _uptime(hb, now)


def stream_status(view: StationView, now: datetime | None = None) -> StreamStatus:
    now = now or datetime.now(UTC)
    state, age, uptime = _liveness(view, now)
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
            requested_by=np.requested_by,
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


# Stand-ins for the values that change with every response; JSON strings,
# so ``json.dumps`` writes them quoted and they are found in its output.
_DYNAMIC = ("state", "position_s", "uptime_s", "heartbeat_age_s")
_MARK = "\u0000sf:"


def _dump(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


class StatusRenderer:
    """``stream_status(view, now).model_dump_json()``, faster: the body is
    rendered with pydantic once per view, and each response only writes the
    values that move with time (state, position, uptime, heartbeat age)
    into it. Players poll this thousands of times a second, and building
    the five models per response cost more than the rest of the request."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._view: StationView | None = None
        self._parts: list[bytes] = []
        self._order: list[str] = []

    def _template(self, view: StationView) -> tuple[list[bytes], list[str]]:
        with self._lock:
            if self._view is not view:
                data = stream_status(view).model_dump(mode="json")
                data["state"] = _MARK + "state"
                data["uptime_s"] = _MARK + "uptime_s"
                data["heartbeat_age_s"] = _MARK + "heartbeat_age_s"
                if data["now_playing"] is not None:
                    data["now_playing"]["position_s"] = _MARK + "position_s"
                text = _dump(data)
                marker = _dump(_MARK)[:-1]  # '"\u0000sf:' as json.dumps writes it
                pieces = text.split(marker)
                parts, order = [pieces[0].encode()], []
                for piece in pieces[1:]:
                    name, rest = piece.split('"', 1)
                    order.append(name)
                    parts.append(rest.encode())
                self._view, self._parts, self._order = view, parts, order
            return self._parts, self._order

    def render(self, view: StationView, now: datetime | None = None) -> bytes:
        now = now or datetime.now(UTC)
        parts, order = self._template(view)
        values = _dynamic_values(view, now)
        out = [parts[0]]
        for name, part in zip(order, parts[1:], strict=True):
            out.append(_scalar(values[name]))
            out.append(part)
        return b"".join(out)


def _scalar(value: str | float | None) -> bytes:
    # The dynamic values are None, finite floats and one of three states.
    if value is None:
        return b"null"
    if isinstance(value, str):
        return b'"' + value.encode() + b'"'
    return repr(value).encode()


def _dynamic_values(view: StationView, now: datetime) -> dict[str, Any]:
    # The same rules as stream_status, for the values that move with time.
    state, age, uptime = _liveness(view, now)
    np = view.now_playing
    position = None
    if np is not None:
        position = round(np.position_at(now), 3) if state == "on_air" else np.position_s
        position = float(position)
    return {
        "state": state,
        "position_s": position,
        "uptime_s": round(uptime, 3) if uptime is not None else None,
        "heartbeat_age_s": round(age, 3) if age is not None else None,
    }


def queue_entry(entry: QueueEntry, *, show_requester: bool) -> QueueEntryPublic:
    return QueueEntryPublic(
        entry_id=entry.entry_id,
        track_id=entry.track_id,
        source=entry.source,
        requested_by=entry.requested_by if show_requester else None,
        added_at=entry.added_at,
    )
