"""Tracks from the lakehouse."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from serving.schemas.common import Schema
from serving.schemas.votes import VoteAggregate


class TrackScore(Schema):
    quality_score: float = Field(ge=0, le=100, examples=[82.5])
    passed: bool
    integrated_lufs: float = Field(examples=[-15.2])
    true_peak_dbtp: float = Field(examples=[-0.8])
    tempo_bpm_est: float | None = Field(examples=[124.1])
    reasons: list[str] = Field(examples=[[]])
    scored_at: datetime


class Rendition(Schema):
    codec: str = Field(examples=["mp3"])
    bitrate_kbps: int | None = Field(examples=[192])


class TrackMaster(Schema):
    lufs_after: float = Field(examples=[-14.0])
    true_peak_after: float = Field(examples=[-1.0])
    chain_version: str
    mastered_at: datetime
    renditions: list[Rendition]


class TrackBase(Schema):
    track_id: str = Field(examples=["t-3f9a2c1be07d4e11"])
    genre: str = Field(examples=["house"])
    bpm: float = Field(examples=[124.0])
    musical_key: str = Field(examples=["A minor"])
    duration_s: float = Field(examples=[180.0])


class TrackPublic(TrackBase):
    prompt: str
    backend: str = Field(examples=["procedural"])
    model_name: str
    model_version: str
    created_at: datetime
    score: TrackScore | None
    master: TrackMaster | None
    plays: int = Field(ge=0, examples=[3])
    on_air: bool = Field(description="In the rotation and not retired.")
    audio_url: str | None = Field(
        description="Where the MP3 rendition downloads from, when mastered.",
        examples=["/api/v1/tracks/t-3f9a2c1be07d4e11/audio"],
    )


class TrackDetail(TrackPublic):
    votes: VoteAggregate
