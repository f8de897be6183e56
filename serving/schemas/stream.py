"""The stream: status, control and the upcoming queue."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import ConfigDict, Field

from serving.schemas.common import Schema, TrackId


class NowPlayingPublic(Schema):
    track_id: str
    title: str
    artist: str
    genre: str
    started_at: datetime
    position_s: float = Field(ge=0, examples=[42.5])
    duration_s: float = Field(ge=0, examples=[180.0])
    source: str = Field(examples=["rotation"])
    requested_by: str | None = Field(
        default=None,
        description="The requester's display name while a listener's request airs, if they "
        "allowed it to be shown.",
        examples=["Ada"],
    )


class OutputPublic(Schema):
    name: str = Field(examples=["hls"])
    state: str = Field(examples=["running"])
    detail: str
    restarts: int
    listeners: int = Field(ge=0)
    updated_at: datetime


class StreamStatus(Schema):
    state: Literal["on_air", "stalled", "offline"] = Field(
        description="on_air: the streamer's heartbeat is fresh; stalled: it is late; "
        "offline: no streamer has reported."
    )
    now_playing: NowPlayingPublic | None
    listeners: int = Field(ge=0, examples=[17])
    uptime_s: float | None = Field(examples=[86400.0])
    heartbeat_age_s: float | None = Field(examples=[1.2])
    outputs: list[OutputPublic]
    queue_length: int = Field(ge=0)


class ControlCreate(Schema):
    command: Literal["start", "stop", "skip"] = Field(examples=["skip"])
    model_config = ConfigDict(json_schema_extra={"examples": [{"command": "skip"}]})


class ControlPublic(Schema):
    command_id: int
    command: str
    issued_at: datetime
    issued_by: str | None


class QueueEntryCreate(Schema):
    track_id: TrackId
    model_config = ConfigDict(json_schema_extra={"examples": [{"track_id": "t-3f9a2c1be07d4e11"}]})


class QueueEntryPublic(Schema):
    entry_id: str = Field(examples=["9b2f6c0e1d3a4b5c8e7f6a5b4c3d2e1f"])
    track_id: str
    source: str = Field(examples=["operator"])
    requested_by: str | None
    added_at: datetime


ENTRY_ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"


class QueueReorder(Schema):
    entry_ids: list[Annotated[str, Field(pattern=ENTRY_ID_PATTERN)]] = Field(
        min_length=1,
        max_length=500,
        description="Entries to move to the front, in this order; the rest keep theirs.",
        examples=[["9b2f6c0e1d3a4b5c8e7f6a5b4c3d2e1f", "0a1b2c3d4e5f60718293a4b5c6d7e8f9"]],
    )


class QueuePublic(Schema):
    items: list[QueueEntryPublic]
    total: int = Field(ge=0)
