"""Generation runs and benchmark figures."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import ConfigDict, Field

from serving.schemas.common import GENRE_PATTERN, Prompt, Schema

RunMode = Literal["graphql", "embedded"]


class PipelineRunCreate(Schema):
    """Parameters of one generation batch (the job's GenerationConfig)."""

    genres: list[Annotated[str, Field(pattern=GENRE_PATTERN)]] = Field(
        default_factory=lambda: ["house"],
        min_length=1,
        max_length=16,
        examples=[["house", "techno"]],
    )
    count: int = Field(default=4, ge=1, le=64)
    duration_s: float = Field(default=180.0, ge=10.0, le=600.0)
    seed: int | None = Field(default=None, ge=0, le=2**31 - 1)
    backend: str | None = Field(default=None, pattern=r"^[a-z0-9_]{1,32}$", examples=["procedural"])
    bpm: float | None = Field(default=None, ge=40.0, le=220.0)
    prompt: Prompt | None = None
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"genres": ["house"], "count": 2, "duration_s": 60}]}
    )


class PipelineRunPublic(Schema):
    run_id: str = Field(examples=["3c1e0a2b-5d4f-4e6a-9b8c-7d6e5f4a3b2c"])
    batch_id: str | None = Field(examples=["b20261124-154500-3f9a"])
    status: str = Field(description="Dagster's run status.", examples=["STARTED"])
    mode: RunMode
    job_name: str = Field(examples=["generate_tracks_job"])
    started_at: datetime | None = None
    ended_at: datetime | None = None


BenchmarkWeights = Literal["real", "random", "none"]


class BenchmarkPublic(Schema):
    """One measurement and what was measured: the same backend on another
    model, device or with random weights is another measurement."""

    backend: str = Field(examples=["musicgen"])
    model: str = Field(examples=["facebook/musicgen-small"])
    device: str = Field(examples=["cuda"], description="cpu, cuda or mps.")
    weights: BenchmarkWeights = Field(
        description="real: trained weights were loaded; random: the published architecture "
        "with random weights (speed and memory of the real model, noise for audio); "
        "none: a backend without weights (procedural)."
    )
    figures: dict[str, float | int | str | bool | None] = Field(
        examples=[{"tracks_per_min": 12.5, "realtime_factor": 40.2}]
    )
    measured_at: datetime
    source: str = Field(description="The file under var/bench it was read from.")


class BenchmarksPublic(Schema):
    items: list[BenchmarkPublic]
