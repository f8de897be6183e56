"""Content features of a track: one fixed-length vector from what the
pipeline already knows (genre, bpm, key and scale, loudness, spectrum).

A track has a vector the moment it has a ``tracks`` row; measurements
(``track_scores``) sharpen it when present and fall back to the genre's
typical values when not. The layout is versioned: a model trained on one
layout refuses vectors of another.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

FEATURE_VERSION = "v1"

#: The station's genres, in a fixed order (the one-hot block). A genre
#: outside the list goes to the last slot.
GENRES: tuple[str, ...] = (
    "house",
    "techno",
    "trance",
    "drum_and_bass",
    "lofi_hip_hop",
    "ambient",
)
OTHER_GENRE = "other"
#: Tempo is encoded as soft membership of bands centred here (bpm), so a
#: linear model can like 120-130 and dislike 170 at once. Beatless = 0.
TEMPO_CENTRES = (70.0, 85.0, 100.0, 115.0, 125.0, 135.0, 150.0, 172.0)
TEMPO_WIDTH = 9.0
PITCH_CLASSES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
_FLATS = {"Db": "C#", "Eb": "D#", "Gb": "F#", "Ab": "G#", "Bb": "A#", "Cb": "B", "Fb": "E"}
MINOR_MODES = frozenset({"minor", "dorian", "phrygian", "aeolian", "locrian"})
#: Typical measured values per genre, used before a track is scored.
GENRE_DEFAULTS: dict[str, dict[str, float]] = {
    "house": {"energy": 0.7, "centroid_hz": 2200.0, "flatness": 0.12, "lra": 6.0},
    "techno": {"energy": 0.8, "centroid_hz": 2500.0, "flatness": 0.16, "lra": 5.0},
    "trance": {"energy": 0.75, "centroid_hz": 2600.0, "flatness": 0.1, "lra": 7.0},
    "drum_and_bass": {"energy": 0.85, "centroid_hz": 2800.0, "flatness": 0.14, "lra": 6.0},
    "lofi_hip_hop": {"energy": 0.35, "centroid_hz": 1400.0, "flatness": 0.08, "lra": 8.0},
    "ambient": {"energy": 0.15, "centroid_hz": 1100.0, "flatness": 0.05, "lra": 11.0},
    OTHER_GENRE: {"energy": 0.5, "centroid_hz": 2000.0, "flatness": 0.1, "lra": 7.0},
}

FEATURE_NAMES: tuple[str, ...] = (
    *(f"genre={g}" for g in (*GENRES, OTHER_GENRE)),
    "beatless",
    *(f"tempo~{c:g}" for c in TEMPO_CENTRES),
    "key_sin",
    "key_cos",
    "minor",
    "energy",
    "energy_sq",
    "brightness",
    "flatness",
    "dynamics",
    "quality",
)
DIM = len(FEATURE_NAMES)


@dataclass(frozen=True)
class KeyInfo:
    """A musical key: its pitch class (0 = C) and whether its scale is minor-like."""

    root: int
    minor: bool

    @property
    def name(self) -> str:
        return f"{PITCH_CLASSES[self.root]} {'minor' if self.minor else 'major'}"


_KEY = re.compile(r"^\s*([A-Ga-g])([#b♯♭]?)\s*(\w+)?\s*$")


def parse_key(text: str | None) -> KeyInfo | None:
    """``"F# minor"`` → KeyInfo(6, True); None for text that names no key."""
    if not text:
        return None
    m = _KEY.match(text)
    if m is None:
        return None
    letter = m.group(1).upper()
    accidental = {"♯": "#", "♭": "b"}.get(m.group(2), m.group(2))
    name = _FLATS.get(letter + accidental, letter + accidental)
    if name not in PITCH_CLASSES:
        return None
    mode = (m.group(3) or "major").lower()
    return KeyInfo(PITCH_CLASSES.index(name), mode in MINOR_MODES or mode == "m")


def canonical_genre(genre: str | None) -> str:
    g = (genre or "").strip().lower()
    return g if g in GENRES else OTHER_GENRE


def energy_from_loudness(integrated_lufs: float | None, centroid_hz: float | None) -> float | None:
    """A 0..1 energy estimate from raw loudness and brightness (louder and
    brighter is more energetic); None when neither was measured."""
    if integrated_lufs is None and centroid_hz is None:
        return None
    parts = []
    if integrated_lufs is not None and math.isfinite(integrated_lufs):
        parts.append(min(1.0, max(0.0, (integrated_lufs + 30.0) / 22.0)))
    if centroid_hz is not None and math.isfinite(centroid_hz) and centroid_hz > 0:
        parts.append(min(1.0, max(0.0, (math.log2(centroid_hz) - 9.5) / 2.8)))
    return float(sum(parts) / len(parts)) if parts else None


def _num(row: Mapping[str, Any], name: str) -> float | None:
    value = row.get(name)
    if value is None:
        return None
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) else None


def feature_vector(row: Mapping[str, Any]) -> np.ndarray:
    """The content vector of one track from a row with ``genre``, ``bpm``,
    ``musical_key`` and optionally the ``track_scores`` measurements
    (``integrated_lufs``, ``spectral_centroid_hz``, ``spectral_flatness``,
    ``loudness_range_lu``, ``quality_score``) or an ``energy`` in 0..1."""
    genre = canonical_genre(row.get("genre"))
    defaults = GENRE_DEFAULTS[genre]
    out = np.zeros(DIM, dtype=np.float32)
    out[(*GENRES, OTHER_GENRE).index(genre)] = 1.0
    i = len(GENRES) + 1
    bpm = _num(row, "tempo_bpm_est") or _num(row, "bpm") or 0.0
    if bpm <= 0:
        out[i] = 1.0
    else:
        for j, c in enumerate(TEMPO_CENTRES):
            out[i + 1 + j] = math.exp(-0.5 * ((bpm - c) / TEMPO_WIDTH) ** 2)
    i += 1 + len(TEMPO_CENTRES)
    key = parse_key(row.get("musical_key"))
    if key is not None:
        # The circle of fifths: neighbouring keys (C, G) lie close together.
        angle = 2 * math.pi * ((key.root * 7) % 12) / 12
        out[i], out[i + 1], out[i + 2] = math.sin(angle), math.cos(angle), float(key.minor)
    i += 3
    centroid = _num(row, "spectral_centroid_hz")
    energy = _num(row, "energy")
    if energy is None:
        energy = energy_from_loudness(_num(row, "integrated_lufs"), centroid)
    if energy is None:
        energy = defaults["energy"]
    centroid = centroid or defaults["centroid_hz"]
    flatness = _num(row, "spectral_flatness")
    lra = _num(row, "loudness_range_lu")
    quality = _num(row, "quality_score")
    out[i] = energy
    out[i + 1] = energy * energy
    out[i + 2] = min(1.5, max(0.0, (math.log2(max(centroid, 1.0)) - 9.0) / 3.0))
    out[i + 3] = min(1.0, max(0.0, flatness if flatness is not None else defaults["flatness"]))
    out[i + 4] = min(2.0, max(0.0, (lra if lra is not None else defaults["lra"]) / 10.0))
    out[i + 5] = (quality if quality is not None else 70.0) / 100.0
    return out


def feature_matrix(rows: Sequence[Mapping[str, Any]]) -> np.ndarray:
    """``feature_vector`` of each row, stacked (n, DIM) float32."""
    if not rows:
        return np.zeros((0, DIM), dtype=np.float32)
    return np.stack([feature_vector(r) for r in rows])


def describe_similarity(a: Mapping[str, Any], b: Mapping[str, Any]) -> str:
    """Why track ``b`` resembles ``a``, in words: ``similar tempo and key``,
    ``same genre, similar tempo``, ..."""
    parts = []
    same_genre = canonical_genre(a.get("genre")) == canonical_genre(b.get("genre"))
    ba, bb = _num(a, "bpm") or 0.0, _num(b, "bpm") or 0.0
    if ba > 0 and bb > 0 and abs(ba - bb) <= 6.0:
        parts.append("tempo")
    elif ba <= 0 and bb <= 0:
        parts.append("beatless feel")
    ka, kb = parse_key(a.get("musical_key")), parse_key(b.get("musical_key"))
    if ka is not None and kb is not None:
        fifths = min((ka.root - kb.root) * 7 % 12, (kb.root - ka.root) * 7 % 12)
        if fifths <= 1 and ka.minor == kb.minor:
            parts.append("key")
    text = "similar " + " and ".join(parts) if parts else "similar sound"
    return f"same genre, {text}" if same_genre and parts != ["tempo", "key"] else text
