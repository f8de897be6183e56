"""Votes and charts."""

from __future__ import annotations

from datetime import datetime
from typing import Literal, Self

from pydantic import ConfigDict, Field, model_validator

from serving.schemas.common import Schema, TrackId

Direction = Literal["up", "down"]
Period = Literal["day", "week", "month", "year", "all"]


class VoteBase(Schema):
    stars: int | None = Field(default=None, ge=1, le=5, description="1 to 5.", examples=[4])
    direction: Direction | None = Field(
        default=None, description="A thumb: 'up' or 'down'.", examples=["up"]
    )


class VoteCreate(VoteBase):
    """A vote: stars, a thumb, or both (at least one of them, not null).
    Voting again replaces the vote."""

    track_id: TrackId
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"track_id": "t-3f9a2c1be07d4e11", "stars": 4}],
            # The rule of _something, for schema-driven clients.
            "anyOf": [
                {"required": ["stars"], "properties": {"stars": {"type": "integer"}}},
                {"required": ["direction"], "properties": {"direction": {"type": "string"}}},
            ],
        }
    )

    @model_validator(mode="after")
    def _something(self) -> Self:
        if self.stars is None and self.direction is None:
            raise ValueError("give stars (1-5), a direction ('up' or 'down'), or both")
        return self


class VotePublic(VoteBase):
    track_id: str
    created_at: datetime
    updated_at: datetime


class VoteAggregate(Schema):
    track_id: str
    votes: int = Field(ge=0, examples=[12])
    stars_count: int = Field(ge=0, examples=[10])
    stars_avg: float | None = Field(examples=[4.2])
    ups: int = Field(ge=0, examples=[7])
    downs: int = Field(ge=0, examples=[1])
    score: float | None = Field(
        description="Bayesian average rating (1-5) that the charts rank by.", examples=[3.91]
    )
    mine: VotePublic | None = Field(default=None, description="The caller's own vote.")


class TopTrack(Schema):
    rank: int = Field(ge=1, examples=[1])
    track_id: str
    genre: str = Field(examples=["house"])
    bpm: float | None = Field(examples=[124.0])
    duration_s: float | None = Field(examples=[180.0])
    votes: int = Field(examples=[12])
    stars_avg: float | None = Field(examples=[4.2])
    ups: int
    downs: int
    score: float = Field(examples=[3.91])


class TopTracksPublic(Schema):
    genre: str | None = Field(examples=["house"])
    period: Period
    prior_mean: float = Field(description="The mean rating the prior pulls toward.")
    prior_votes: float = Field(description="The prior's weight, in votes.")
    items: list[TopTrack]
    generated_at: datetime
