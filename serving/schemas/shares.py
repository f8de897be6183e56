"""Sharing a track."""

from __future__ import annotations

from datetime import datetime

from pydantic import ConfigDict, Field

from serving.schemas.common import Schema, TrackId
from serving.schemas.tracks import TrackBase


class ShareCreate(Schema):
    track_id: TrackId
    model_config = ConfigDict(json_schema_extra={"examples": [{"track_id": "t-3f9a2c1be07d4e11"}]})


class ShareUrls(Schema):
    x: str = Field(examples=["https://twitter.com/intent/tweet?url=..."])
    facebook: str
    whatsapp: str
    telegram: str
    reddit: str
    linkedin: str
    email: str = Field(examples=["mailto:?subject=...&body=..."])


class SharePublic(Schema):
    code: str = Field(
        description="Unguessable short code (72 random bits).", examples=["q3Zt9LmX2bVw"]
    )
    track_id: str
    landing_url: str = Field(
        examples=["https://radio.example.com/listen?track=...&ref=q3Zt9LmX2bVw"]
    )
    created_at: datetime


class ShareDetail(SharePublic):
    track: TrackBase
    share_urls: ShareUrls
    clicks: int = Field(ge=0)
