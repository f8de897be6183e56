"""One GenreStyle per genre: tempo range, drum patterns, bass, palette,
harmony, swing, mix and arrangement (see shared/MUSIC.md for the facts).

Patterns use the notation of ``grid``: 16 characters a bar, 32 for two.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from models.errors import InvalidSpecError
from models.generation.procedural.drums import DrumKit


@dataclass(frozen=True)
class DrumPart:
    """One drum voice: the layer it belongs to, its sound and its patterns
    (one per 8-bar variation, cycled)."""

    layer: str
    sound: str
    patterns: tuple[str, ...]
    gain: float
    humanise: float = 1.0  # kicks stay tight, hats wander more


@dataclass(frozen=True)
class GenreStyle:
    """Everything that makes a genre sound like itself."""

    name: str
    label: str
    bpm_range: tuple[float, float]
    scales: tuple[str, ...]
    progressions_minor: tuple[tuple[int, ...], ...]
    progressions_major: tuple[tuple[int, ...], ...]
    chord_size: int
    bars_per_chord: tuple[int, ...]
    kit: DrumKit
    drums: tuple[DrumPart, ...]
    fills: tuple[str, ...]
    swing: tuple[float, float]
    humanise_ms: float
    bass_sound: str
    bass_patterns: tuple[str, ...]
    chord_sounds: tuple[str, ...]
    chord_patterns: tuple[str, ...]
    pad_sound: str
    lead_sounds: tuple[str, ...]
    arp: bool
    sidechain: float
    reverb_s: float
    sends: dict[str, float]
    delay_beats: float
    delay_sends: dict[str, float]
    gains: dict[str, float]
    phrase_bars: int
    template: tuple[tuple[str, int], ...]
    intro: tuple[tuple[str, ...], ...]
    build: tuple[str, ...]
    main: tuple[str, ...]
    rotate: tuple[tuple[str, ...], ...]
    breakdown: tuple[str, ...]
    outro: tuple[tuple[str, ...], ...]
    words: tuple[str, ...]
    beatless: bool = False
    roll_in_builds: bool = False
    halftime_breakdown: bool = False
    dropouts: bool = False
    lowpass_hz: tuple[float, float] | None = None
    crackle: bool = False
    sweep_builds: bool = True
    halftime_patterns: dict[str, str] = field(default_factory=dict)
    reverb_return: float = 0.6
    #: A 16th-note gate on the pads in builds and mains (trance gate).
    pad_gate: str = ""
    #: A breakbeat loop chopped and re-sequenced bar by bar (the "break" layer).
    breaks: bool = False
    #: Slow stereo movement of pads and leads (ambient).
    stereo_drift: bool = False
    #: A low-pass filter move over one eight-bar phrase in four of the mains.
    filter_moves: bool = False


FOUR = "X---X---X---X---"
BACKBEAT = "----X-------X---"
OFFBEAT = "--x---x---x---x-"
_DANCE_TEMPLATE = (
    ("intro", 2),
    ("build", 1),
    ("main", 2),
    ("breakdown", 1),
    ("build", 1),
    ("main", 2),
    ("outro", 2),
)

HOUSE = GenreStyle(
    name="house",
    label="house",
    bpm_range=(120.0, 128.0),
    scales=("minor", "minor", "dorian", "major"),
    progressions_minor=((0, 5, 2, 6), (0, 3, 6, 5), (0, 6, 5, 6)),
    progressions_major=((1, 4, 0, 5), (3, 4, 2, 5), (0, 5, 1, 4)),
    chord_size=4,
    bars_per_chord=(1, 2),
    kit=DrumKit(kick_start_hz=150.0, kick_end_hz=52.0, kick_decay_s=0.3, kick_click=0.3),
    drums=(
        DrumPart("kick", "kick", (FOUR,), 0.62, 0.2),
        DrumPart("snare", "clap", (BACKBEAT,), 0.8, 0.6),
        DrumPart("hats", "hat", ("x.-.x.-.x.-.x.-.", "x.-ox.-.x.-ox.-x"), 0.5),
        DrumPart("open_hats", "open_hat", (OFFBEAT,), 0.3),
        DrumPart("perc", "shaker", ("o.o.o.o.o.o.o.o.", ".o.x.o.x.o.x.o.x"), 0.2),
        DrumPart("perc", "rim", ("---x------x--x--", "------x---x----x"), 0.25),
    ),
    fills=("snare_roll", "open_hat", "dropout"),
    swing=(0.5, 0.54),
    humanise_ms=6.0,
    bass_sound="pluck",
    bass_patterns=("--r_--r_--r_--o_", "r_-r--o_--r_-5-r", "--r--r--r-o--r--"),
    chord_sounds=("rhodes", "organ", "piano"),
    chord_patterns=("--x_--x_--x_--x_", "x__x__x___x_x___", "x_______x_____x_"),
    pad_sound="warm",
    lead_sounds=("pluck",),
    arp=False,
    sidechain=0.55,
    reverb_s=1.8,
    sends={"chords": 0.25, "pad": 0.35, "lead": 0.3, "snare": 0.0},
    delay_beats=0.75,
    delay_sends={"lead": 0.3, "chords": 0.08},
    gains={"bass": 0.55, "chords": 0.3, "pad": 0.45, "lead": 0.4},
    phrase_bars=8,
    template=(("intro", 2), ("build", 1), ("main", 2), ("breakdown", 1), ("main", 2), ("outro", 2)),
    intro=(("kick", "hats"), ("kick", "hats", "open_hats", "snare", "perc", "bass")),
    build=("kick", "hats", "open_hats", "snare", "perc", "bass", "chords"),
    main=("kick", "hats", "open_hats", "snare", "perc", "bass", "chords"),
    rotate=(("pad",), ("lead",), ("lead", "pad"), ()),
    breakdown=("chords", "pad", "lead", "perc"),
    outro=(("kick", "hats", "open_hats", "snare", "perc", "bass"), ("kick", "hats")),
    words=("four-on-the-floor", "punchy kick", "claps on 2 and 4", "shuffling hats", "groovy"),
    filter_moves=True,
)

TECHNO = GenreStyle(
    name="techno",
    label="techno",
    bpm_range=(125.0, 135.0),
    scales=("minor", "phrygian", "minor"),
    progressions_minor=((0,), (0, 0, 0, 6), (0, 0, 5, 5)),
    progressions_major=((0,), (0, 0, 0, 6)),
    chord_size=3,
    bars_per_chord=(2, 4),
    kit=DrumKit(
        kick_start_hz=140.0,
        kick_end_hz=47.0,
        kick_decay_s=0.34,
        kick_drive=3.0,
        kick_click=0.45,
        hat_closed_s=0.035,
        hat_open_s=0.2,
        hat_hp_hz=8000.0,
        rumble=1.0,
    ),
    drums=(
        DrumPart("kick", "kick", (FOUR,), 0.62, 0.1),
        DrumPart("hats", "hat", ("o.x.o.x.o.x.o.x.", "o.x.o.xoo.x.o.xx"), 0.45),
        DrumPart("open_hats", "open_hat", (OFFBEAT,), 0.4),
        DrumPart("snare", "clap", (BACKBEAT, "----X-------X--x"), 0.6, 0.5),
        DrumPart("perc", "tom_310", ("---x--x---x-x---", "---x--x--x--x--x"), 0.22),
        DrumPart("perc", "rim", ("-x-----x-x------", "-x---x---x----x-"), 0.2),
    ),
    fills=("dropout", "open_hat", "dropout"),
    swing=(0.5, 0.52),
    humanise_ms=5.0,
    bass_sound="rolling",
    bass_patterns=("-rrr-rrr-rrr-rrr", "-rr--rro-rr--rrr"),
    chord_sounds=("stab",),
    chord_patterns=("---x------x-----", "---x--x----x----", "--x-----x--x----"),
    pad_sound="dark",
    lead_sounds=("acid",),
    arp=False,
    sidechain=0.45,
    reverb_s=2.2,
    sends={"chords": 0.45, "pad": 0.3, "lead": 0.12},
    delay_beats=0.75,
    delay_sends={"chords": 0.35, "lead": 0.25},
    gains={"bass": 0.52, "chords": 0.55, "pad": 0.56, "lead": 0.6},
    phrase_bars=8,
    template=(
        ("intro", 2),
        ("build", 2),
        ("main", 3),
        ("breakdown", 1),
        ("build", 1),
        ("main", 3),
        ("outro", 2),
    ),
    intro=(("kick", "hats"), ("kick", "hats", "open_hats", "perc")),
    build=("kick", "hats", "open_hats", "perc", "bass", "lead"),
    main=("kick", "hats", "open_hats", "perc", "bass", "lead", "snare", "chords"),
    rotate=((), ("pad",)),
    breakdown=("pad", "chords", "lead", "hats"),
    outro=(("kick", "hats", "open_hats", "perc", "bass"), ("kick", "hats")),
    words=("driving four-on-the-floor", "rumbling kick", "hypnotic", "dark", "metallic hats"),
    reverb_return=0.85,
    filter_moves=True,
)

TRANCE = GenreStyle(
    name="trance",
    label="trance",
    bpm_range=(136.0, 140.0),
    scales=("minor",),
    progressions_minor=((0, 5, 2, 6), (0, 3, 5, 6), (0, 5, 6, 4)),
    progressions_major=((5, 3, 0, 4), (0, 4, 5, 3)),
    chord_size=3,
    bars_per_chord=(2, 1),
    kit=DrumKit(kick_start_hz=160.0, kick_end_hz=50.0, kick_decay_s=0.27, kick_click=0.4),
    drums=(
        DrumPart("kick", "kick", (FOUR,), 0.62, 0.1),
        DrumPart("snare", "clap", (BACKBEAT,), 0.75, 0.5),
        DrumPart("hats", "hat", ("o.x.o.x.o.x.o.x.", "o.xxo.x.o.xxo.x."), 0.4),
        DrumPart("open_hats", "open_hat", (OFFBEAT,), 0.33),
    ),
    fills=("snare_roll", "open_hat"),
    swing=(0.5, 0.5),
    humanise_ms=5.0,
    bass_sound="offbeat",
    bass_patterns=("--r_--r_--r_--r_", "-rrr-rrr-rrr-rrr"),
    chord_sounds=("supersaw",),
    chord_patterns=("X_______________", "--x_--x_--x_--x_"),
    pad_sound="airy",
    lead_sounds=("supersaw",),
    arp=True,
    sidechain=0.65,
    reverb_s=2.8,
    sends={"chords": 0.3, "pad": 0.45, "lead": 0.4, "arp": 0.3},
    delay_beats=0.75,
    delay_sends={"lead": 0.25, "arp": 0.2},
    gains={"bass": 0.5, "chords": 0.5, "pad": 0.56, "lead": 0.46, "arp": 0.28},
    phrase_bars=8,
    template=_DANCE_TEMPLATE,
    intro=(("kick", "hats", "open_hats"), ("kick", "hats", "open_hats", "snare", "bass", "arp")),
    build=("kick", "hats", "open_hats", "snare", "bass", "arp", "chords"),
    main=("kick", "hats", "open_hats", "snare", "bass", "arp", "chords", "lead"),
    rotate=(("pad",), (), ("pad",)),
    breakdown=("pad", "lead", "chords"),
    outro=(("kick", "hats", "open_hats", "snare", "bass", "arp"), ("kick", "hats")),
    words=("uplifting", "four-on-the-floor", "16th-note arpeggios", "big reverb", "euphoric"),
    roll_in_builds=True,
    pad_gate="x-xxx-x-xx-x-xxx",
    filter_moves=True,
)

DRUM_AND_BASS = GenreStyle(
    name="drum_and_bass",
    label="drum and bass",
    bpm_range=(170.0, 176.0),
    scales=("minor", "dorian", "minor"),
    progressions_minor=((0, 5, 2, 6), (0, 3), (0, 5, 3, 4)),
    progressions_major=((5, 3, 0, 4), (1, 4, 0, 5)),
    chord_size=4,
    bars_per_chord=(2,),
    kit=DrumKit(
        kick_start_hz=170.0,
        kick_end_hz=55.0,
        kick_decay_s=0.2,
        kick_click=0.5,
        snare_tone_hz=215.0,
        snare_decay_s=0.14,
        hat_closed_s=0.03,
        room=0.25,
    ),
    drums=(
        DrumPart(
            "kick",
            "kick",
            ("X---------X-----X---------X-----", "X---------X-------X-------x-----"),
            0.8,
            0.2,
        ),
        DrumPart(
            "snare",
            "snare",
            ("----X-------X-------X-------X---", "----X--.----X-.-----X--.-.--X--."),
            0.66,
            0.5,
        ),
        DrumPart("hats", "hat", ("X.x.X.x.X.x.X.x.", "X.xxX.x.X.xxX.x."), 0.4),
        DrumPart("perc", "shaker", ("o-o-o-o-o-o-o-o-", "o.o-o-o.o-o-o-o."), 0.22),
    ),
    fills=("ghost", "toms", "snare_roll"),
    swing=(0.5, 0.52),
    humanise_ms=5.0,
    bass_sound="reese",
    bass_patterns=("r_______________________________", "r_________r_____________r_______"),
    chord_sounds=("rhodes",),
    chord_patterns=("X_______________", "X_________x_____"),
    pad_sound="warm",
    lead_sounds=("pluck", "bell"),
    arp=False,
    sidechain=0.3,
    reverb_s=2.5,
    sends={"chords": 0.3, "pad": 0.4, "lead": 0.4},
    delay_beats=0.75,
    delay_sends={"lead": 0.35},
    gains={"bass": 0.46, "chords": 0.21, "pad": 0.4, "lead": 0.45},
    phrase_bars=8,
    template=(
        ("intro", 2),
        ("build", 2),
        ("main", 4),
        ("breakdown", 2),
        ("build", 1),
        ("main", 3),
        ("outro", 2),
    ),
    intro=(
        ("kick", "snare", "hats", "perc", "pad"),
        ("kick", "snare", "hats", "perc", "pad", "chords"),
    ),
    build=("kick", "snare", "hats", "perc", "pad", "chords"),
    main=("kick", "snare", "hats", "perc", "bass", "pad"),
    rotate=(("chords", "break"), ("lead",), ("chords", "lead", "break"), ("break",)),
    breakdown=("kick", "snare", "hats", "pad", "chords", "lead"),
    outro=(("kick", "snare", "hats", "perc", "bass", "pad"), ("hats", "pad")),
    words=("two-step breakbeat", "chopped breaks", "fast hats", "reese bass", "atmospheric"),
    halftime_breakdown=True,
    halftime_patterns={"kick": "X-------------x-", "snare": "--------X-------"},
    breaks=True,
)

LOFI_HIP_HOP = GenreStyle(
    name="lofi_hip_hop",
    label="lo-fi hip hop",
    bpm_range=(70.0, 90.0),
    scales=("major", "minor", "dorian", "major"),
    progressions_minor=((0, 3, 6, 2), (0, 3), (5, 4, 0, 0)),
    progressions_major=((1, 4, 0, 0), (3, 2, 1, 0), (1, 4, 0, 5)),
    chord_size=4,
    bars_per_chord=(1,),
    kit=DrumKit(
        kick_start_hz=115.0,
        kick_end_hz=48.0,
        kick_decay_s=0.3,
        kick_click=0.1,
        kick_drive=1.5,
        snare_tone_hz=180.0,
        snare_decay_s=0.18,
        snare_top_hz=6000.0,
        hat_closed_s=0.05,
        hat_hp_hz=6000.0,
        room=0.35,
        soft=True,
    ),
    drums=(
        DrumPart("kick", "kick", ("X---------x-----X-----x---x-----",), 0.85, 0.5),
        DrumPart("snare", "snare", ("----X-------X-------X-------X---",), 0.6, 0.8),
        DrumPart("hats", "hat", ("x.o.x.o.x.o.x.oo", "x.o.x.o.x.o.x.o."), 0.35, 1.2),
        DrumPart("perc", "rim", ("-------x-------x", "------x-------.-"), 0.25),
    ),
    fills=("toms", "dropout"),
    swing=(0.55, 0.62),
    humanise_ms=8.0,
    bass_sound="round",
    bass_patterns=("r_____r___r_____", "r_______r_5_____", "r_____r___r___b_"),
    chord_sounds=("rhodes", "piano"),
    chord_patterns=("X_______________", "X_____x_________", "X___________x___"),
    pad_sound="none",
    lead_sounds=("piano", "rhodes"),
    arp=False,
    sidechain=0.25,
    reverb_s=1.6,
    sends={"chords": 0.25, "lead": 0.35},
    delay_beats=0.75,
    delay_sends={"lead": 0.15},
    gains={"bass": 0.17, "chords": 0.22, "lead": 0.22, "texture": 0.05},
    phrase_bars=4,
    template=(("intro", 1), ("build", 1), ("main", 3), ("breakdown", 1), ("main", 3), ("outro", 1)),
    intro=(("chords", "texture"),),
    build=("chords", "texture", "kick", "hats", "bass"),
    main=("kick", "snare", "hats", "bass", "chords", "texture"),
    rotate=((), ("lead",), ("lead", "perc"), ("perc",)),
    breakdown=("chords", "texture", "lead"),
    outro=(("chords", "texture", "hats", "bass"), ("chords", "texture")),
    words=("dusty boom-bap drums", "swung hats", "mellow", "vinyl crackle", "tape wobble"),
    dropouts=True,
    lowpass_hz=(4500.0, 7000.0),
    crackle=True,
    sweep_builds=False,
)

AMBIENT = GenreStyle(
    name="ambient",
    label="ambient",
    bpm_range=(60.0, 90.0),
    scales=("major", "lydian", "minor", "dorian"),
    progressions_minor=((0, 5), (0, 3, 5, 4), (0, 6, 5, 3)),
    progressions_major=((0, 3), (0, 5, 1, 4), (0, 1), (0, 5, 3, 0)),
    chord_size=5,
    bars_per_chord=(4,),
    kit=DrumKit(),
    drums=(),
    fills=(),
    swing=(0.5, 0.5),
    humanise_ms=0.0,
    bass_sound="drone",
    bass_patterns=("r_______________",),
    chord_sounds=("none",),
    chord_patterns=("X_______________",),
    pad_sound="airy",
    lead_sounds=("bell", "piano"),
    arp=False,
    sidechain=0.0,
    reverb_s=5.0,
    sends={"pad": 0.4, "lead": 0.7, "bass": 0.1},
    delay_beats=1.5,
    delay_sends={"lead": 0.3},
    gains={"bass": 0.35, "pad": 0.45, "lead": 0.2, "texture": 0.12},
    phrase_bars=4,
    template=(("intro", 1), ("build", 1), ("main", 2), ("breakdown", 1), ("main", 2), ("outro", 1)),
    intro=(("pad", "texture"),),
    build=("pad", "texture", "bass"),
    main=("pad", "texture", "bass", "lead"),
    rotate=((), ()),
    breakdown=("pad", "texture"),
    outro=(("pad", "texture", "bass"), ("pad", "texture")),
    words=("beatless", "slow-evolving pads", "long reverb", "sparse bells", "drone"),
    beatless=True,
    sweep_builds=False,
    reverb_return=0.9,
    stereo_drift=True,
)

STYLES: dict[str, GenreStyle] = {
    s.name: s for s in (DRUM_AND_BASS, TRANCE, HOUSE, TECHNO, LOFI_HIP_HOP, AMBIENT)
}
SUPPORTED_GENRES: tuple[str, ...] = tuple(STYLES)
# Ambient has no beat: its range is the slow pulse that paces chord changes,
# and tracks report bpm 0.0.
GENRE_BPM_RANGES: dict[str, tuple[float, float]] = {k: s.bpm_range for k, s in STYLES.items()}

_ALIASES = {
    "dnb": "drum_and_bass",
    "d&b": "drum_and_bass",
    "drum & bass": "drum_and_bass",
    "drum and bass": "drum_and_bass",
    "drum n bass": "drum_and_bass",
    "drumandbass": "drum_and_bass",
    "jungle": "drum_and_bass",
    "lofi": "lofi_hip_hop",
    "lo-fi": "lofi_hip_hop",
    "lo fi": "lofi_hip_hop",
    "lofi hip hop": "lofi_hip_hop",
    "lo-fi hip hop": "lofi_hip_hop",
    "lofi hiphop": "lofi_hip_hop",
    "lo-fi hip-hop": "lofi_hip_hop",
    "deep house": "house",
    "ambient music": "ambient",
}


def normalize_genre(name: str) -> str:
    """The canonical genre name for ``name`` or a friendly alias ("dnb", "lo-fi")."""
    text = " ".join(str(name).strip().lower().replace("_", " ").split())
    canonical = text.replace(" ", "_")
    if canonical in STYLES:
        return canonical
    if text in _ALIASES:
        return _ALIASES[text]
    if text.replace("-", " ") in _ALIASES:
        return _ALIASES[text.replace("-", " ")]
    raise InvalidSpecError(
        f"unknown genre {name!r}; allowed: {', '.join(SUPPORTED_GENRES)} "
        "(aliases: dnb, drum & bass, lo-fi, lofi)"
    )


def style_for(name: str) -> GenreStyle:
    return STYLES[normalize_genre(name)]
