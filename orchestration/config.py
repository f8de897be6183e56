"""Run parameters of the generation job."""

from __future__ import annotations

import hashlib
from typing import Literal

import dagster as dg
from pydantic import Field

from models.generation.base import TrackSpec
from models.pipeline import MAX_BATCH, MIN_BATCH, plan_specs

DEFAULT_GENRES = ["house", "techno", "trance", "drum_and_bass", "lofi_hip_hop", "ambient"]


class PlannedTrack(dg.Config):
    """One track of the generation plan (assets/ml.py): what listener demand asks for."""

    genre: str
    bpm: float | None = None
    musical_key: str | None = None
    mood: str | None = None


class GenerationConfig(dg.Config):
    """What one batch generates."""

    genres: list[str] = Field(default_factory=lambda: list(DEFAULT_GENRES))
    count: int = Field(default=6, ge=MIN_BATCH, le=MAX_BATCH, description="Tracks in the batch.")
    duration_s: float = Field(default=180.0, ge=10.0, le=600.0)
    seed: int | None = Field(default=None, description="Defaults to a hash of the batch id.")
    backend: str | None = Field(default=None, description="Defaults to the resource's backend.")
    bpm: float | None = Field(default=None, description="Defaults to one chosen per track.")
    prompt: str | None = None
    request_id: str | None = None
    # From the generation plan: per track a genre, bpm, key and mood, taken
    # in turn (instead of cycling ``genres``).
    planned: list[PlannedTrack] | None = None
    # Sold work (a paid listener request): only a generator whose license
    # allows commercial use; a non-commercial choice falls back or fails.
    commercial_only: bool = False
    license_policy: Literal["fallback", "refuse"] = "fallback"
    # Sampling of model backends (musicgen, audiocraft); unset, the
    # generator's registered parameters apply.
    guidance_scale: float | None = Field(default=None, ge=1.0, le=20.0)
    temperature: float | None = Field(default=None, gt=0.0, le=5.0)
    top_k: int | None = Field(default=None, ge=0, le=4096)

    def sampling(self) -> dict[str, float | int]:
        """The sampling options this run sets."""
        values = {
            "guidance_scale": self.guidance_scale,
            "temperature": self.temperature,
            "top_k": self.top_k,
        }
        return {k: v for k, v in values.items() if v is not None}

    def track_specs(self) -> list[TrackSpec]:
        """The batch's specs: the planned tracks in turn, else ``genres`` cycled."""
        specs = plan_specs(self.genres, self.count, bpm=self.bpm, prompt=self.prompt)
        if not self.planned:
            return specs
        return [
            TrackSpec(
                genre=p.genre,
                bpm=self.bpm if self.bpm is not None else p.bpm,
                musical_key=p.musical_key,
                mood=p.mood,
                prompt=self.prompt,
            )
            for p in (self.planned[i % len(self.planned)] for i in range(len(specs)))
        ]

    def resolved_seed(self, batch_id: str) -> int:
        if self.seed is not None:
            return self.seed
        return int.from_bytes(hashlib.sha256(batch_id.encode()).digest()[:4], "big")
