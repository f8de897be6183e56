"""Listener track requests: a prompt that becomes a track on air."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import ConfigDict, Field

from serving.schemas.common import GENRE_PATTERN, Prompt, Schema

RequestStatus = Literal[
    "queued", "generating", "scoring", "mastering", "failed", "queued_on_air", "aired"
]
REQUEST_STATUSES: tuple[str, ...] = RequestStatus.__args__  # type: ignore[attr-defined]
TERMINAL_STATUSES = frozenset({"failed", "aired"})
REQUEST_ID_PATTERN = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"


class TrackRequestCreate(Schema):
    prompt: Prompt = Field(examples=["warm rolling bassline, late night"])
    genre: str = Field(pattern=GENRE_PATTERN, examples=["house"])
    duration_s: float = Field(ge=10.0, le=600.0, examples=[60.0])
    bpm: float | None = Field(default=None, ge=40.0, le=220.0, examples=[124.0])
    mood: str | None = Field(default=None, pattern=r"^[a-z][a-z -]{0,31}$", examples=["uplifting"])
    generator: str | None = Field(
        default=None,
        pattern=r"^[a-z0-9_]{1,32}$",
        description="A generation backend your plan may use (GET /api/v1/plans); unset, the "
        "station's production generator (or, for paid requests, a commercial one).",
        examples=["procedural"],
    )
    show_name: bool = Field(
        default=False,
        description="Show your display name in the now-playing metadata when it airs.",
    )
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"prompt": "dreamy pads at dawn", "genre": "ambient", "duration_s": 60}]
        }
    )


class TrackRequestPublic(Schema):
    request_id: str
    status: RequestStatus
    reason: str | None = Field(
        default=None, description="Why it failed (or why it waits), in words."
    )
    prompt: str
    genre: str
    duration_s: float
    bpm: float | None
    mood: str | None
    plan: str
    charge: Literal["quota", "credit"]
    paid: bool = Field(
        description="Commercial use: served only by commercially licensed generators."
    )
    generator: str | None
    batch_id: str = Field(description="The request's own Dagster partition.")
    run_id: str | None
    track_id: str | None
    expected_air_at: datetime | None = Field(
        default=None, description="When it should start on air (queued_on_air)."
    )
    aired_at: datetime | None
    refunded: bool = Field(description="Its quota or credit was given back (a failed request).")
    created_at: datetime
    updated_at: datetime
