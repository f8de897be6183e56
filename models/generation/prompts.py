"""Text prompts for text-to-music models, built from a versioned template.

MusicGen follows short descriptive prompts best: genre, tempo, key, mood,
instruments and a few production words (see shared/MUSIC.md). The template
is versioned and the version is stored with every track, so a change of
wording shows up in the data as a change of ``prompt_version`` rather than as
an unexplained shift in quality.
"""

from __future__ import annotations

import random
import re
import unicodedata
from dataclasses import dataclass

from models.errors import InvalidSpecError
from models.generation.base import TrackSpec

#: Bump when the wording of any template changes.
PROMPT_TEMPLATE_VERSION = "v1"

#: Longest listener request kept in a prompt: MusicGen's text encoder sees
#: about 64 tokens in training, and long requests drown the genre words.
MAX_REQUEST_CHARS = 200


@dataclass(frozen=True)
class GenreStyle:
    """How a genre is described to a text-to-music model."""

    words: str  # the genre as the model's training captions name it
    bpm: tuple[int, int]  # the genre's tempo range; a bpm is drawn from it when none is asked
    keys: tuple[str, ...]
    mood: str
    instruments: str
    production: str
    beatless: bool = False


GENRES: dict[str, GenreStyle] = {
    "house": GenreStyle(
        "deep house",
        (120, 128),
        ("A minor", "F minor", "G minor", "D minor"),
        "warm, groovy",
        "four-on-the-floor kick, claps, shuffled hi-hats, minor 7th chord stabs, Rhodes, plucky bass",
        "side-chained, club mix",
    ),
    "techno": GenreStyle(
        "techno",
        (125, 135),
        ("A minor", "F# minor", "E minor"),
        "dark, hypnotic",
        "heavy kick with rumble, off-beat hats, rolling acid bassline, metallic stabs",
        "driving, warehouse",
    ),
    "trance": GenreStyle(
        "uplifting trance",
        (136, 140),
        ("A minor", "C# minor", "F minor"),
        "euphoric, emotional",
        "supersaw pads and lead, 16th-note arpeggios, rolling off-beat bass, snare rolls",
        "big reverb, festival",
    ),
    "drum_and_bass": GenreStyle(
        "liquid drum and bass",
        (170, 176),
        ("F minor", "D minor", "G minor"),
        "energetic, atmospheric",
        "breakbeat drums, fast hi-hats, deep sub bass, reese bass, atmospheric pads",
        "crisp, rolling",
    ),
    "lofi_hip_hop": GenreStyle(
        "lo-fi hip hop",
        (70, 90),
        ("D minor", "F major", "Bb major", "E minor"),
        "mellow, relaxing",
        "dusty boom-bap drums, swung hats, jazzy Rhodes chords, round bass",
        "vinyl crackle, tape wow, low-passed",
    ),
    "ambient": GenreStyle(
        "ambient",
        (60, 90),
        ("C major", "D dorian", "E minor"),
        "calm, floating",
        "slow evolving pads, soft drones, sparse pentatonic piano",
        "long reverb, wide stereo",
        beatless=True,
    ),
}

_ALIASES = {
    "dnb": "drum_and_bass",
    "drum & bass": "drum_and_bass",
    "drum and bass": "drum_and_bass",
    "drum-and-bass": "drum_and_bass",
    "lofi": "lofi_hip_hop",
    "lo-fi": "lofi_hip_hop",
    "lo-fi hip hop": "lofi_hip_hop",
    "lofi hip hop": "lofi_hip_hop",
    "lofi-hip-hop": "lofi_hip_hop",
}


def normalize_genre(genre: str) -> str:
    """The canonical genre name, or ``InvalidSpecError`` listing the allowed ones."""
    key = genre.strip().lower()
    key = _ALIASES.get(key, key).replace(" ", "_").replace("-", "_")
    if key not in GENRES:
        raise InvalidSpecError(f"unknown genre {genre!r}; allowed: {', '.join(sorted(GENRES))}")
    return key


@dataclass(frozen=True)
class Prompt:
    """A prompt and the musical facts it asked for."""

    text: str
    version: str
    genre: str
    bpm: float  # 0.0 for beatless genres
    musical_key: str


def clean_request(text: str) -> str:
    """A listener's request made safe to put in a prompt: printable
    characters only, whitespace collapsed, at most ``MAX_REQUEST_CHARS``."""
    printable = "".join(ch if unicodedata.category(ch)[0] not in ("C",) else " " for ch in text)
    collapsed = re.sub(r"\s+", " ", printable).strip(" ,.;")
    if len(collapsed) > MAX_REQUEST_CHARS:
        collapsed = collapsed[:MAX_REQUEST_CHARS].rsplit(" ", 1)[0]
    return collapsed


def build_prompt(spec: TrackSpec, *, seed: int, version: str = PROMPT_TEMPLATE_VERSION) -> Prompt:
    """The prompt for one track. Values the spec leaves open (bpm, key,
    mood) are drawn from the genre's ranges with ``seed``, so the same spec
    and seed always give the same prompt."""
    if version != PROMPT_TEMPLATE_VERSION:
        raise InvalidSpecError(
            f"unknown prompt template version {version!r}; allowed: {PROMPT_TEMPLATE_VERSION}"
        )
    genre = normalize_genre(spec.genre)
    style = GENRES[genre]
    rng = random.Random(seed)
    if style.beatless and not spec.bpm:
        bpm = 0.0
    else:
        bpm = float(spec.bpm) if spec.bpm is not None else float(rng.randint(*style.bpm))
        # The station's format, as the procedural synthesizer keeps it: a
        # house track at 200 bpm is not house, whichever model makes it.
        lo, hi = style.bpm
        if not lo <= bpm <= hi:
            hint = " (beatless: give 0, none, or a pulse in that range)" if style.beatless else ""
            raise InvalidSpecError(
                f"value {bpm:g} for 'bpm' is out of range [{lo:g}, {hi:g}] for genre '{genre}'{hint}"
            )
    key = spec.musical_key or rng.choice(style.keys)
    mood = spec.mood or style.mood
    parts = [style.words]
    if bpm > 0:
        parts.append(f"{bpm:g} bpm")
    parts += [key, mood, style.instruments, style.production]
    if spec.prompt:
        # A listener's words lead: the model weights early tokens most, and
        # the genre facts after them keep the track on the station's format.
        request = clean_request(spec.prompt)
        if request:
            parts.insert(0, request)
    return Prompt(", ".join(parts), version, genre, bpm, key)
