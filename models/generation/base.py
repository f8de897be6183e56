"""The generation backend interface shared by every backend.

Audio travels as float32 numpy arrays shaped ``(channels, samples)``, the
layout pedalboard uses, with values nominally in [-1, 1].
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class TrackSpec:
    """What one track should be. ``None`` fields are chosen by the backend."""

    genre: str
    bpm: float | None = None
    musical_key: str | None = None  # e.g. "A minor", "F# dorian"
    mood: str | None = None
    prompt: str | None = None


@dataclass
class GeneratedTrack:
    """One generated track: the audio and what it really is."""

    audio: np.ndarray  # float32, (channels, samples)
    sample_rate: int
    genre: str
    bpm: float  # 0.0 for beatless tracks (ambient)
    musical_key: str
    prompt: str
    seed: int
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def duration_s(self) -> float:
        return self.audio.shape[-1] / float(self.sample_rate)


class GenerationBackend(abc.ABC):
    """Turns track specs into audio. Implementations must be deterministic
    for a given seed where the underlying model allows it."""

    name: str = "abstract"

    @property
    @abc.abstractmethod
    def model_name(self) -> str:
        """The model identifier stored with each track."""

    @property
    @abc.abstractmethod
    def model_version(self) -> str:
        """The model version (or revision) stored with each track."""

    #: True when one ``generate`` call over many specs is faster than one
    #: call per spec (model backends batching on an accelerator).
    supports_batching: bool = False

    def run_params(self) -> dict[str, Any]:
        """Settings worth recording with a generation run (MLflow params):
        sampling parameters, device, precision, prompt template version."""
        return {}

    def validate(self, specs: Sequence[TrackSpec], *, duration_s: float) -> list[TrackSpec]:
        """Check a request before any work starts; returns the specs with
        names normalised. Raises ``InvalidSpecError`` listing what is allowed."""
        return list(specs)

    @abc.abstractmethod
    def generate(
        self, specs: Sequence[TrackSpec], *, duration_s: float, seed: int
    ) -> list[GeneratedTrack]:
        """Generate one track per spec. Track ``i`` uses seed ``seed + i``.

        Raises ``InvalidSpecError`` for a genre, bpm or duration the backend
        does not support, with the allowed values in the message.
        """
