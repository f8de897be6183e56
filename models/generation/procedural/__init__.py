"""The procedural generation backend: genre-true music from synthesis alone,
no model weights, deterministic in the seed, far faster than real time."""

from __future__ import annotations

from models.generation.procedural.backend import MODEL_NAME, MODEL_VERSION, ProceduralBackend
from models.generation.procedural.composer import Variant
from models.generation.procedural.genres import (
    GENRE_BPM_RANGES,
    SUPPORTED_GENRES,
    normalize_genre,
)
from models.generation.procedural.theory import parse_key

__all__ = [
    "GENRE_BPM_RANGES",
    "MODEL_NAME",
    "MODEL_VERSION",
    "SUPPORTED_GENRES",
    "ProceduralBackend",
    "Variant",
    "normalize_genre",
    "parse_key",
]
