"""Inputs known to be worse than the generator's normal output, for
calibrating the score (tests and ``bench/music.py``).

Every case carries the labels a track would carry in the ``tracks`` table
(genre, bpm, key), so the score judges it as it would judge a real track:

- ``white_noise``: three minutes of white noise labelled as house;
- ``one_bar_loop``: one bar of a house track's main section, repeated;
- ``drums_only``: a house track with every pitched layer muted;
- ``detuned``: a house track rendered a quarter tone (50 cents) sharp of
  its labelled key;
- ``techno_as_house``: a techno track labelled house (its own bpm and key);
- ``clipped``: a house track driven 18 dB into hard clipping;
- ``silence``: digital silence labelled as house.

``degraded_pairs`` gives the A/B proxy: a track and a copy with one layer
muted, and the same track with its arrangement flattened to its main section.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from models.generation.base import GeneratedTrack, TrackSpec
from models.generation.procedural import ProceduralBackend, Variant

SR = 44100
PITCHED = frozenset({"bass", "chords", "pad", "lead", "arp", "texture"})
#: The layer each genre's "one layer muted" copy loses: the one a listener
#: misses first. The bass in the dance genres; lo-fi's identity is its jazz
#: chords (its bass is soft and round, mixed far under them), ambient's its
#: pads.
MUTED_LAYER = {
    "house": "bass",
    "techno": "bass",
    "trance": "bass",
    "drum_and_bass": "bass",
    "lofi_hip_hop": "chords",
    "ambient": "pad",
}


@dataclass(frozen=True)
class Case:
    """Audio with the labels it is scored against."""

    name: str
    audio: np.ndarray
    sample_rate: int
    genre: str
    bpm: float | None
    musical_key: str | None
    expected_reason: str  # a word the score's reasons must contain

    def score_kwargs(self) -> dict[str, object]:
        return {
            "intended_bpm": self.bpm or None,
            "genre": self.genre,
            "musical_key": self.musical_key,
        }


def render(
    genre: str, seed: int, duration_s: float, variant: Variant | None = None, *, sr: int = SR
) -> GeneratedTrack:
    backend = ProceduralBackend(sample_rate=sr)
    spec = [TrackSpec(genre=genre)]
    if variant is None:
        return backend.generate(spec, duration_s=duration_s, seed=seed)[0]
    return backend.generate_variant(spec, duration_s=duration_s, seed=seed, variant=variant)[0]


def case_of(
    name: str, track: GeneratedTrack, expected_reason: str, audio: np.ndarray | None = None
) -> Case:
    return Case(
        name,
        track.audio if audio is None else audio,
        track.sample_rate,
        track.genre,
        track.bpm or None,
        track.musical_key,
        expected_reason,
    )


def one_bar(track: GeneratedTrack, duration_s: float) -> np.ndarray:
    """The first bar of the track's first main section, tiled to ``duration_s``."""
    start = next(s for name, s, _ in track.metadata["sections"] if name == "main")
    bar = round(4 * 60.0 / track.bpm * track.sample_rate)
    i = round(start * track.sample_rate)
    loop = track.audio[:, i : i + bar]
    reps = -(-round(duration_s * track.sample_rate) // bar)
    return np.ascontiguousarray(
        np.tile(loop, (1, reps))[:, : round(duration_s * track.sample_rate)]
    )


def calibration_cases(*, seed: int = 7, duration_s: float = 180.0) -> Iterator[Case]:
    """The seven cases, built one at a time (each is tens of megabytes)."""
    n = round(duration_s * SR)
    house = render("house", seed, duration_s)
    rng = np.random.default_rng(seed)
    noise = (0.1 * rng.standard_normal((2, n))).astype(np.float32)
    yield case_of("white_noise", house, "noise", noise)
    yield case_of("one_bar_loop", house, "loop", one_bar(house, duration_s))
    yield case_of("drums_only", render("house", seed, duration_s, Variant(mute=PITCHED)), "key")
    yield case_of(
        "detuned", render("house", seed, duration_s, Variant(tuning_cents=50.0)), "detuned"
    )
    techno = render("techno", seed, duration_s)
    yield Case(
        "techno_as_house", techno.audio, SR, "house", techno.bpm, techno.musical_key, "genre"
    )
    clipped = np.clip(house.audio * np.float32(8.0), -1.0, 1.0)
    yield case_of("clipped", house, "clipping", clipped)
    yield case_of("silence", house, "silence", np.zeros((2, n), np.float32))


def degraded_pairs(
    genre: str, seed: int, *, duration_s: float = 180.0
) -> Iterator[tuple[str, Case, Case]]:
    """(kind, original, degraded) for "muted" (one layer, ``MUTED_LAYER``)
    and "flattened" (the main section from start to end)."""
    original = case_of("original", render(genre, seed, duration_s), "")
    layer = MUTED_LAYER[genre]
    muted = render(genre, seed, duration_s, Variant(mute=frozenset({layer})))
    yield f"muted {layer}", original, case_of(f"muted {layer}", muted, "")
    flat = render(genre, seed, duration_s, Variant(flatten=True))
    yield "flattened", original, case_of("flattened", flat, "")
