"""What every layer renderer needs to know about the track being made, and
the mix buses it renders into."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from models.generation.procedural.arrangement import Arrangement, Bar
from models.generation.procedural.genres import GenreStyle
from models.generation.procedural.grid import Grid
from models.generation.procedural.presets import Preset
from models.generation.procedural.theory import Chord, Key, midi_to_hz


@dataclass
class Buses:
    """Stereo float32 mix buses: ``dry`` (drums, effects, textures), ``bass``
    (ducked a little), ``pump`` (chords and pads, ducked by the kick) and
    ``lead`` (leads, arps, stabs: delay and reverb sends)."""

    dry: np.ndarray
    bass: np.ndarray
    pump: np.ndarray
    lead: np.ndarray
    kick_positions: list[int] = field(default_factory=list)

    @classmethod
    def empty(cls, n: int) -> Buses:
        def z() -> np.ndarray:
            return np.zeros((2, n), dtype=np.float32)

        return cls(dry=z(), bass=z(), pump=z(), lead=z())


@dataclass
class TrackContext:
    """Tempo grid, key, harmony and arrangement of one track."""

    style: GenreStyle
    sr: int
    n: int
    seed: int
    rng: np.random.Generator
    grid: Grid
    key: Key
    chords: list[Chord]
    bars_per_chord: int
    arrangement: Arrangement
    choices: dict[str, str] = field(default_factory=dict)
    #: Offset of the tuning reference from A440, in cents (0: standard pitch).
    tuning_cents: float = 0.0
    #: Sound-design parameters drawn per track (``presets.draw_preset``).
    preset: Preset | None = None
    _notes: dict[tuple[object, ...], np.ndarray] = field(default_factory=dict)

    def hz(self, midi: float) -> float:
        """The frequency of a MIDI note at this track's tuning."""
        return midi_to_hz(midi) * 2.0 ** (self.tuning_cents / 1200.0)

    def chord_index(self, bar: int) -> int:
        return (bar // self.bars_per_chord) % len(self.chords)

    def chord(self, bar: int) -> Chord:
        return self.chords[self.chord_index(bar)]

    def bars_with(self, layer: str) -> list[Bar]:
        return [b for b in self.arrangement.bars if layer in b.layers]

    def note(self, key: tuple[object, ...], make: Callable[[], np.ndarray]) -> np.ndarray:
        """A rendered note from the per-track cache: each distinct note is
        synthesised once and then copied into place."""
        hit = self._notes.get(key)
        if hit is None:
            hit = make()
            self._notes[key] = hit
        return hit

    def sub_rng(self, *labels: int) -> np.random.Generator:
        """An independent, reproducible random stream for one purpose."""
        return np.random.Generator(np.random.PCG64([self.seed, *labels]))
