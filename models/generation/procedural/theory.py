"""Keys, scales, diatonic chords, roman numerals and voice leading."""

from __future__ import annotations

from dataclasses import dataclass

from models.errors import InvalidSpecError

# Spellings accepted for a tonic; output uses the spelling asked for or the
# conventional one from CANONICAL_TONICS.
TONICS: dict[str, int] = {
    "C": 0,
    "C#": 1,
    "Db": 1,
    "D": 2,
    "D#": 3,
    "Eb": 3,
    "E": 4,
    "F": 5,
    "F#": 6,
    "Gb": 6,
    "G": 7,
    "G#": 8,
    "Ab": 8,
    "A": 9,
    "A#": 10,
    "Bb": 10,
    "B": 11,
}
CANONICAL_TONICS = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
_SHARP_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
_FLAT_NAMES = ("C", "Db", "D", "Eb", "E", "F", "Gb", "G", "Ab", "A", "Bb", "B")

SCALES: dict[str, tuple[int, ...]] = {
    "major": (0, 2, 4, 5, 7, 9, 11),
    "minor": (0, 2, 3, 5, 7, 8, 10),
    "dorian": (0, 2, 3, 5, 7, 9, 10),
    "phrygian": (0, 1, 3, 5, 7, 8, 10),
    "lydian": (0, 2, 4, 6, 7, 9, 11),
    "mixolydian": (0, 2, 4, 5, 7, 9, 10),
    "harmonic minor": (0, 2, 3, 5, 7, 8, 11),
}
_SCALE_ALIASES = {
    "maj": "major",
    "ionian": "major",
    "min": "minor",
    "m": "minor",
    "aeolian": "minor",
    "natural minor": "minor",
    "harmonic_minor": "harmonic minor",
    "harmonicminor": "harmonic minor",
}
_NUMERALS = ("I", "II", "III", "IV", "V", "VI", "VII")


@dataclass(frozen=True)
class Key:
    """A tonic (pitch class 0–11) and a seven-note scale."""

    tonic: int
    scale: str
    tonic_name: str

    @property
    def intervals(self) -> tuple[int, ...]:
        return SCALES[self.scale]

    @property
    def is_minor(self) -> bool:
        """True when the scale's third is minor (minor, dorian, phrygian, ...)."""
        return self.intervals[2] == 3

    @property
    def name(self) -> str:
        return f"{self.tonic_name} {self.scale}"

    def pitch_name(self, pc: int) -> str:
        """Spell a pitch class the way this key's signature does."""
        return (_FLAT_NAMES if _prefers_flats(self) else _SHARP_NAMES)[pc % 12]

    def degree_pc(self, degree: int) -> int:
        return (self.tonic + self.intervals[degree % 7]) % 12

    def pentatonic(self) -> tuple[int, ...]:
        """Five scale degrees (as semitones) without the half steps, for melodies."""
        if self.scale == "harmonic minor":
            return (0, 2, 3, 7, 8)
        return (0, 3, 5, 7, 10) if self.is_minor else (0, 2, 4, 7, 9)


_PARENT_MAJOR_OFFSET = {
    "major": 0,
    "minor": 3,
    "dorian": -2,
    "phrygian": -4,
    "lydian": -5,
    "mixolydian": 5,
    "harmonic minor": 3,
}


def _prefers_flats(key: Key) -> bool:
    if "b" in key.tonic_name:
        return True
    if "#" in key.tonic_name:
        return False
    # The parent major scale decides which side of the circle of fifths we are on.
    parent = (key.tonic + _PARENT_MAJOR_OFFSET[key.scale]) % 12
    return parent in (5, 10, 3, 8, 1)


def allowed_key_text() -> str:
    return (
        f"tonics {', '.join(TONICS)}; scales {', '.join(SCALES)} "
        "(e.g. 'A minor', 'F# dorian', 'Bb major')"
    )


def parse_key(text: str) -> Key:
    """Parse "A minor", "F# dorian", "Bbm" or "C#" (major) into a Key."""
    raw = text.strip()
    if not raw:
        raise InvalidSpecError(f"musical key {text!r} is empty; allowed: {allowed_key_text()}")
    tonic_len = 2 if len(raw) > 1 and raw[1] in "#b♯♭" else 1
    tonic_text = raw[0].upper() + raw[1:tonic_len].replace("♯", "#").replace("♭", "b")
    rest = raw[tonic_len:].strip().lower().replace("-", " ")
    scale = _SCALE_ALIASES.get(rest, rest) if rest else "major"
    if tonic_text not in TONICS or scale not in SCALES:
        raise InvalidSpecError(f"unknown musical key {text!r}; allowed: {allowed_key_text()}")
    return Key(tonic=TONICS[tonic_text], scale=scale, tonic_name=tonic_text)


def key_from_parts(tonic: int, scale: str) -> Key:
    """A Key with the conventional spelling of its tonic."""
    return Key(tonic=tonic % 12, scale=scale, tonic_name=CANONICAL_TONICS[tonic % 12])


@dataclass(frozen=True)
class Chord:
    """A diatonic chord: root pitch class, intervals above it, its names."""

    root: int
    intervals: tuple[int, ...]
    roman: str
    name: str

    @property
    def pitch_classes(self) -> tuple[int, ...]:
        return tuple((self.root + i) % 12 for i in self.intervals)


def _quality(third: int, fifth: int) -> str:
    return {(4, 7): "maj", (3, 7): "min", (3, 6): "dim", (4, 8): "aug"}.get((third, fifth), "maj")


def diatonic_chord(key: Key, degree: int, *, size: int = 3) -> Chord:
    """The chord stacked in thirds on scale ``degree`` (0-based), 3 to 5 notes."""
    sc = key.intervals
    steps = [degree + 2 * i for i in range(size)]
    base = sc[degree % 7]
    intervals = tuple((sc[s % 7] + 12 * (s // 7)) - base for s in steps)
    quality = _quality(intervals[1], intervals[2])
    numeral = _NUMERALS[degree % 7]
    numeral = numeral.lower() if quality in ("min", "dim") else numeral
    suffix = {"dim": "°", "aug": "+"}.get(quality, "")
    chord_suffix = {"min": "m", "dim": "dim", "aug": "aug"}.get(quality, "")
    if size >= 4:
        seventh = intervals[3]
        if quality == "dim":
            suffix, chord_suffix = ("ø7", "m7b5") if seventh == 10 else ("°7", "dim7")
        elif seventh == 11:
            suffix += "maj7"
            chord_suffix += "maj7"
        else:
            suffix += "7"
            chord_suffix += "7"
        if size >= 5:
            suffix = suffix.replace("7", "9")
            chord_suffix = chord_suffix.replace("7", "9")
    root = (key.tonic + base) % 12
    return Chord(
        root=root,
        intervals=intervals,
        roman=numeral + suffix,
        name=key.pitch_name(root) + chord_suffix,
    )


def progression(key: Key, degrees: tuple[int, ...], *, size: int = 3) -> list[Chord]:
    return [diatonic_chord(key, d, size=size) for d in degrees]


# Where a mode puts its diminished (or augmented) triad, and the chord a player would use
# instead (the same function, more consonant): e.g. dorian's vi° -> IV.
_DIMINISHED_SUBSTITUTES: dict[str, dict[int, int]] = {
    "major": {6: 4},
    "minor": {1: 3},
    "dorian": {5: 3},
    "phrygian": {4: 6},
    "lydian": {3: 1},
    "mixolydian": {2: 4},
    "harmonic minor": {1: 3, 2: 5, 6: 4},
}


def consonant_degrees(key: Key, degrees: tuple[int, ...]) -> tuple[int, ...]:
    """``degrees`` with each diminished chord of ``key`` replaced by its substitute."""
    subs = _DIMINISHED_SUBSTITUTES[key.scale]
    return tuple(subs.get(d % 7, d) for d in degrees)


def voice_chords(chords: list[Chord], *, low: int, high: int) -> list[tuple[int, ...]]:
    """MIDI voicings inside [low, high] that move as little as possible.

    Fifths are dropped from chords of five notes, as a keyboard player would,
    so that the voicing stays clear.
    """
    voicings: list[tuple[int, ...]] = []
    previous: tuple[int, ...] | None = None
    for chord in chords:
        ivs = list(chord.intervals)
        if len(ivs) >= 5:
            ivs.pop(2)
        pcs = [(chord.root + i) % 12 for i in ivs]
        candidates = []
        for inversion in range(len(pcs)):
            order = pcs[inversion:] + pcs[:inversion]
            notes = [low + ((order[0] - low) % 12)]
            for pc in order[1:]:
                notes.append(notes[-1] + ((pc - notes[-1]) % 12 or 12))
            for shift in (0, 12, -12):
                cand = tuple(n + shift for n in notes)
                if cand[0] >= low and cand[-1] <= high + 4:
                    candidates.append(cand)
        if not candidates:
            candidates = [tuple(low + ((pc - low) % 12) for pc in sorted(pcs))]
        if previous is None:
            centre = (low + high) / 2
            best = min(candidates, key=lambda c: abs(sum(c) / len(c) - centre))
        else:
            prev = previous
            best = min(candidates, key=lambda c: _movement(prev, c))
        voicings.append(best)
        previous = best
    return voicings


def _movement(a: tuple[int, ...], b: tuple[int, ...]) -> float:
    """How far the voices move from ``a`` to ``b`` (nearest-note distance)."""
    return float(
        sum(min(abs(x - y) for y in a) for x in b) + abs(sum(a) / len(a) - sum(b) / len(b))
    )


def snap_to_key(midi: int, key: Key) -> int:
    """``midi`` if it is in ``key``'s scale, else the nearest scale note below it."""
    pcs = {key.degree_pc(d) for d in range(7)}
    for shift in (0, -1, 1, -2):
        if (midi + shift) % 12 in pcs:
            return midi + shift
    return midi


def midi_to_hz(note: float) -> float:
    return 440.0 * 2.0 ** ((note - 69.0) / 12.0)


def bass_root(pc: int, *, low: int = 28) -> int:
    """The MIDI note for pitch class ``pc`` in the octave starting at ``low`` (E1)."""
    return low + ((pc - low) % 12)
