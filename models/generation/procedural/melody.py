"""Note material: arpeggios, lead motifs (A A' B A' over 8 bars), acid riffs
and ambient fragments. Pure note lists; rendering happens in ``layers``."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from models.generation.procedural.theory import Chord, Key


@dataclass(frozen=True)
class Note:
    """A note on the 16th grid: ``step`` counts from the start of its bar."""

    step: int
    midi: int
    length: int
    velocity: float
    accent: bool = False
    slide: bool = False  # 303 slide: glide into the next note, no retrigger


_ARP_ORDERS = (
    (0, 1, 2, 3, 4, 5, 6, 7),
    (0, 1, 2, 3, 4, 3, 2, 1),
    (0, 2, 1, 3, 2, 4, 3, 5),
    (0, 1, 2, 4, 3, 5, 4, 6),
)


def arp_bar(voicing: tuple[int, ...], *, variant: int, octave_up: bool) -> list[Note]:
    """Sixteen 16th notes over the chord tones across two octaves."""
    tones = sorted(voicing) + [n + 12 for n in sorted(voicing)]
    order = _ARP_ORDERS[variant % len(_ARP_ORDERS)]
    notes: list[Note] = []
    for step in range(16):
        idx = order[step % len(order)] % len(tones)
        midi = tones[idx] + (12 if octave_up and step >= 8 else 0)
        vel = 0.95 if step % 4 == 0 else (0.7 if step % 2 == 0 else 0.55)
        notes.append(Note(step, midi, 1, vel))
    return notes


# Two-bar rhythms (32 steps) that suit a lead; lengths follow from the gaps.
_RHYTHMS = (
    "x-x-x--x-x-x--x-x-x-x--x-x--x---",
    "x--x--x---x-x---x--x--x---x--x--",
    "x---x-x-x---x---x---x-x-x--x----",
    "x-----x---x-x---x-----x-x-------",
)
_SPARSE = (
    "x-------x---x-----------x-------",
    "----x-----x-----x-------x---x---",
    "x-----------x-----x-------------",
)


@dataclass(frozen=True)
class Motif:
    """A two-bar rhythm with scale-degree pitches (relative to the tonic)."""

    steps: tuple[int, ...]
    lengths: tuple[int, ...]
    degrees: tuple[int, ...]


def make_motif(rng: np.random.Generator, *, sparse: bool = False) -> Motif:
    """A singable two-bar motif: mostly stepwise, ending on a stable degree."""
    rhythm = (_SPARSE if sparse else _RHYTHMS)[
        int(rng.integers(len(_SPARSE if sparse else _RHYTHMS)))
    ]
    steps = [i for i, c in enumerate(rhythm) if c == "x"]
    lengths = [b - a for a, b in zip(steps, [*steps[1:], 32], strict=True)]
    deg = int(rng.choice([0, 2, 4]))
    degrees = []
    for _ in steps:
        degrees.append(deg)
        move = int(
            rng.choice([-2, -1, -1, 0, 1, 1, 2, 3], p=[0.1, 0.2, 0.1, 0.1, 0.2, 0.15, 0.1, 0.05])
        )
        deg = int(np.clip(deg + move, -2, 9))
    degrees[-1] = int(rng.choice([0, 2, 4]))
    return Motif(tuple(steps), tuple(min(n, 6) for n in lengths), tuple(degrees))


def vary_motif(motif: Motif, rng: np.random.Generator, *, amount: int) -> Motif:
    """The same rhythm with the last ``amount`` pitches changed (A', B)."""
    degrees = list(motif.degrees)
    for i in range(max(0, len(degrees) - amount), len(degrees)):
        degrees[i] = int(np.clip(degrees[i] + int(rng.choice([-2, -1, 1, 2])), -2, 9))
    return Motif(motif.steps, motif.lengths, tuple(degrees))


def sequence(motif: Motif, steps: int) -> Motif:
    """The motif moved ``steps`` scale degrees up or down (a sequence)."""
    return Motif(
        motif.steps, motif.lengths, tuple(int(np.clip(d + steps, -3, 10)) for d in motif.degrees)
    )


def invert(motif: Motif) -> Motif:
    """The motif mirrored around its first degree (melodic inversion),
    ending back on a stable degree."""
    axis = motif.degrees[0]
    degrees = [int(np.clip(2 * axis - d, -3, 10)) for d in motif.degrees]
    degrees[-1] = axis
    return Motif(motif.steps, motif.lengths, tuple(degrees))


def develop(motif: Motif, rng: np.random.Generator, *, phrases: int) -> list[list[Motif]]:
    """``phrases`` eight-bar phrases of four two-bar motifs each: the motif
    stated, answered and developed by repetition, variation, sequence and
    inversion, so every eight bars the line says something new while the
    motif stays recognisable."""
    answer = vary_motif(motif, rng, amount=2)
    contrast = vary_motif(motif, rng, amount=4)
    up = int(rng.choice([1, 2, -1]))
    forms = [
        [motif, answer, motif, contrast],
        [motif, sequence(motif, up), answer, contrast],
        [invert(motif), answer, sequence(motif, -up), motif],
        [motif, answer, sequence(answer, up), invert(contrast)],
    ]
    out = [forms[0]]
    for i in range(1, phrases):
        out.append(forms[1 + (i - 1) % (len(forms) - 1)] if i % 4 else forms[0])
    return out


def realise(
    motif: Motif,
    *,
    key: Key,
    chords: list[Chord],
    base_midi: int,
    pentatonic: bool = False,
) -> list[tuple[int, Note]]:
    """(bar offset 0/1, note) pairs: degrees become pitches in ``key``, and
    notes on strong beats snap to the nearest tone of the chord under them."""
    scale = key.pentatonic() if pentatonic else key.intervals
    size = len(scale)
    out: list[tuple[int, Note]] = []
    for step, length, degree in zip(motif.steps, motif.lengths, motif.degrees, strict=True):
        # Motifs are written in seven-note steps; squeeze them onto five.
        d = round(degree * size / 7)
        midi = base_midi + 12 * (d // size) + scale[d % size]
        chord = chords[min(step // 16, len(chords) - 1)]
        if step % 4 == 0:
            midi = _nearest_chord_tone(midi, chord)
        vel = 0.95 if step % 8 == 0 else 0.8
        out.append((step // 16, Note(step % 16, midi, length, vel)))
    return out


def _nearest_chord_tone(midi: int, chord: Chord) -> int:
    pcs = chord.pitch_classes[:3]
    best = min(range(-6, 7), key=lambda d: (abs(d), d) if (midi + d) % 12 in pcs else (99, d))
    return midi + best


_ACID_INTERVALS = np.array([0, 0, 0, 12, 12, 7, 3, 10, 5, -2])


def acid_riff(rng: np.random.Generator) -> list[Note]:
    """A one-bar 303 line: root-heavy 16ths with octave jumps, rests and accents."""
    notes: list[Note] = []
    step = 0
    while step < 16:
        if step > 0 and rng.random() < 0.22:
            step += 1
            continue
        length = 2 if rng.random() < 0.2 and step < 15 else 1
        interval = 0 if step == 0 else int(rng.choice(_ACID_INTERVALS))
        accent = bool(rng.random() < 0.3)
        slide = bool(rng.random() < 0.25)
        notes.append(Note(step, interval, length, 1.0 if accent else 0.75, accent, slide))
        step += length
    # A slide needs a next note to slide into, right after it.
    for i, n in enumerate(notes):
        nxt = notes[i + 1] if i + 1 < len(notes) else None
        if n.slide and (nxt is None or nxt.step != n.step + n.length or nxt.midi == n.midi):
            notes[i] = Note(n.step, n.midi, n.length, n.velocity, n.accent, False)
    return notes


def mutate_riff(riff: list[Note], rng: np.random.Generator) -> list[Note]:
    """The riff with two notes moved (the 8-bar variation of a techno loop)."""
    notes = list(riff)
    for _ in range(2):
        i = int(rng.integers(len(notes)))
        n = notes[i]
        if i == 0:
            continue  # the downbeat stays on the root
        notes[i] = Note(
            n.step, int(rng.choice(_ACID_INTERVALS)), n.length, n.velocity, not n.accent
        )
    for i, n in enumerate(notes):  # slides only into a different next note
        nxt = notes[i + 1] if i + 1 < len(notes) else None
        if n.slide and (nxt is None or nxt.step != n.step + n.length or nxt.midi == n.midi):
            notes[i] = Note(n.step, n.midi, n.length, n.velocity, n.accent, False)
    return notes


def ambient_fragment(
    rng: np.random.Generator, *, key: Key, chord: Chord, base_midi: int, span_steps: int
) -> list[Note]:
    """Three to five slow pentatonic notes at unhurried, off-grid-feeling times."""
    scale = key.pentatonic()
    count = int(rng.integers(3, 6))
    start = int(rng.integers(0, max(1, span_steps // 4)))
    notes: list[Note] = []
    degree = int(rng.integers(0, 5))
    step = start
    for _ in range(count):
        if step >= span_steps:
            break
        midi = base_midi + 12 * (degree // 5) + scale[degree % 5]
        length = int(rng.choice([6, 8, 12, 16]))
        notes.append(Note(step, midi, length, float(rng.uniform(0.5, 0.9))))
        step += length + int(rng.choice([0, 2, 4, 6]))
        degree = int(np.clip(degree + rng.choice([-2, -1, 1, 2]), 0, 9))
    return notes
