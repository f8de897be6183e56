"""Recommendations: tracks with the reason each was chosen."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from serving.schemas.common import Schema

ReasonKind = Literal["because_you_liked", "similar", "trending_in_genre", "trending"]
Strategy = Literal["personalized", "cold_start", "similar", "trending"]


class RecommendationReason(Schema):
    kind: ReasonKind
    text: str = Field(examples=["because you liked trk_3f9a2c1be07d4e11a2b3 (house, 124 bpm)"])
    track_id: str | None = Field(
        default=None, description="The track the reason refers to (liked or seed track)."
    )


class RecommendedTrack(Schema):
    track_id: str = Field(examples=["trk_3f9a2c1be07d4e11a2b3"])
    genre: str = Field(examples=["house"])
    bpm: float = Field(examples=[124.0])
    musical_key: str = Field(examples=["A minor"])
    duration_s: float = Field(examples=[180.0])
    audio_url: str | None = Field(examples=["/api/v1/tracks/trk_3f9a2c1be07d4e11a2b3/audio"])
    score: float = Field(
        description="The ranking score (higher first); comparable within one list."
    )
    reason: RecommendationReason


class RecommendationList(Schema):
    items: list[RecommendedTrack]
    strategy: Strategy = Field(
        description="personalized: from the champion model; cold_start: a listener the model "
        "does not know yet (trending in their favourite genre, then overall); similar; trending."
    )
    model_version: str | None = Field(
        description="The registered recommender version that ranked the list, if one did.",
        examples=["3"],
    )
