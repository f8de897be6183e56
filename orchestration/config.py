"""Run parameters of the generation job."""

from __future__ import annotations

import hashlib

import dagster as dg
from pydantic import Field

DEFAULT_GENRES = ["house", "techno", "trance", "drum_and_bass", "lofi_hip_hop", "ambient"]


class GenerationConfig(dg.Config):
    """What one batch generates."""

    genres: list[str] = Field(default_factory=lambda: list(DEFAULT_GENRES))
    count: int = Field(default=6, ge=1, le=64, description="Tracks in the batch.")
    duration_s: float = Field(default=180.0, ge=10.0, le=600.0)
    seed: int | None = Field(default=None, description="Defaults to a hash of the batch id.")
    backend: str | None = Field(default=None, description="Defaults to the resource's backend.")
    bpm: float | None = Field(default=None, description="Defaults to one chosen per track.")
    prompt: str | None = None
    request_id: str | None = None

    def resolved_seed(self, batch_id: str) -> int:
        if self.seed is not None:
            return self.seed
        return int.from_bytes(hashlib.sha256(batch_id.encode()).digest()[:4], "big")
