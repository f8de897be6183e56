"""Generation backends behind one interface (see ``base``)."""

from models.generation.base import (
    GeneratedTrack,
    GenerationBackend,
    TrackSpec,
)

__all__ = ["GeneratedTrack", "GenerationBackend", "TrackSpec"]
