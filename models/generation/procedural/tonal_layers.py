"""The pitched layers: bass, chords, pads, lead, arpeggio and acid line.

Every distinct note is rendered once (``TrackContext.note``) and copied to
each place it plays with its own humanised time and velocity.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np
from scipy.ndimage import uniform_filter1d

from models.generation.procedural import instruments as ins
from models.generation.procedural import melody
from models.generation.procedural.arrangement import Bar
from models.generation.procedural.context import Buses, TrackContext
from models.generation.procedural.drums import place
from models.generation.procedural.grid import parse_pattern
from models.generation.procedural.theory import bass_root, snap_to_key, voice_chords

_PADS = {
    # sound: (wave, bandwidth in cents, cutoff Hz, attack s, release s, add top octave)
    "warm": ("saw", 20.0, 1600.0, 0.8, 1.2, False),
    "airy": ("saw", 35.0, 3200.0, 1.5, 2.0, True),
    "dark": ("square", 28.0, 700.0, 1.0, 1.5, False),
    "supersaw": ("saw", 45.0, 5500.0, 0.006, 0.25, True),
    "drone": ("saw", 12.0, 420.0, 3.0, 3.0, False),
}


def _peak1(x: np.ndarray) -> np.ndarray:
    """Scale a note to peak 1 so the genre table's gains mean the same for
    every instrument."""
    peak = float(np.max(np.abs(x)))
    return (x / peak).astype(np.float32) if peak > 0 else x


def _vel_bucket(v: float) -> float:
    """Velocity rounded to three timbres (soft, medium, hard) for caching."""
    return float(min(max(round(v * 3.0) / 3.0, 1.0 / 3.0), 1.0))


def _bass_note(ctx: TrackContext, sound: str, midi: int, gate: int) -> np.ndarray:
    f, sr = ctx.hz(midi), ctx.sr

    pre = ctx.preset

    def make() -> np.ndarray:
        if sound == "reese":
            detune = pre.reese_detune_cents if pre else 9.0
            return ins.reese(
                f, gate=gate, sr=sr, rng=ctx.sub_rng(301, midi, gate), detune_cents=detune
            )
        params = {
            "pluck": (0.35, 0.12, 0.6),
            "offbeat": (0.55, 0.09, 0.7),
            "rolling": (0.22, 0.06, 0.8),
            "round": (0.06, 0.25, 1.0),
        }[sound]
        bright = params[0] * (pre.bass_brightness if pre else 1.0)
        decay = params[1] * (pre.bass_decay if pre else 1.0)
        return ins.pluck_bass(f, gate=gate, sr=sr, brightness=bright, decay_s=decay, sub=params[2])

    return ctx.note(("bass", sound, midi, gate), lambda: _peak1(make()))


def render_bass(ctx: TrackContext, buses: Buses) -> None:
    """The bass line: pattern steps on the chord roots (or a drone)."""
    style, grid = ctx.style, ctx.grid
    bars = ctx.bars_with("bass")
    if not bars:
        return
    gain = style.gains.get("bass", 0.5)
    if style.bass_sound == "drone":
        _sustained(ctx, buses.bass, bars, "drone", gain, low=36, high=52)
        return
    first = int(ctx.sub_rng(302).integers(len(style.bass_patterns)))
    legato = style.bass_sound in ("reese", "round")
    for bar in bars:
        pattern = style.bass_patterns[(first + bar.variation % 2) % len(style.bass_patterns)]
        if len(pattern) > 16:
            half = bar.index % (len(pattern) // 16)
            pattern = pattern[16 * half : 16 * half + 16]
        chord = ctx.chord(bar.index)
        root = bass_root(chord.root)
        for s in parse_pattern(pattern):
            if s.symbol == "b":
                # A passing note: the scale step below the next chord's root.
                midi = snap_to_key(bass_root(ctx.chord(bar.index + 1).root) - 1, ctx.key)
                midi += 12 if midi < root - 6 else 0
            else:
                ivs = chord.intervals
                offset = {"o": 12, "5": ivs[2], "3": ivs[1], "7": ivs[3] if len(ivs) > 3 else 10}
                midi = snap_to_key(root + offset.get(s.symbol, 0), ctx.key)
            gate = int(grid.samples(s.length) * (0.95 if legato else 0.7))
            note = _bass_note(ctx, style.bass_sound, midi, gate)
            t = grid.time(bar.index, s.index) + grid.jitter(0.3)
            vel = 1.0 if s.index % 4 == 0 else 0.85
            place(buses.bass, note, [(grid.sample(t), gain * grid.velocity(vel, 0.05))])


def _pad_loop(ctx: TrackContext, sound: str, chord_idx: int, notes: tuple[int, ...]) -> np.ndarray:
    """PADsynth loops (V, 2, n) for a chord: one, or for ambient pads a dark
    and a bright one with the same phases, whose slow crossfade is a filter
    LFO costing one multiply-add per sample."""
    wave, bw, cutoff, _, _, top = _PADS[sound]
    if ctx.preset is not None:
        bw *= ctx.preset.pad_bandwidth
        cutoff *= ctx.preset.pad_cutoff
    freqs = [ctx.hz(m) for m in notes] + ([ctx.hz(max(notes) + 12)] if top else [])
    lfo = ctx.style.beatless and sound != "drone"
    return ctx.note(
        ("pad", sound, chord_idx),
        lambda: ins.pad_loop(
            freqs,
            n=2**18,
            sr=ctx.sr,
            rng=ctx.sub_rng(401, chord_idx, len(sound)),
            bandwidth_cents=bw,
            cutoffs_hz=(cutoff * 0.35, cutoff) if lfo else (cutoff,),
            shape=wave,
            # Ambient pads carry the whole mix: fully independent channels
            # would leave it with no centre.
            width=0.55 if ctx.style.beatless else (ctx.preset.width if ctx.preset else 1.0),
        ),
    )


def _sustained(
    ctx: TrackContext,
    bus: np.ndarray,
    bars: list[Bar],
    sound: str,
    gain: float,
    *,
    low: int,
    high: int,
    gate: str = "",
) -> None:
    """Held chords: one segment per run of bars on the same chord, cut from a
    PADsynth loop with a slow attack and a release that overlaps the next.

    ``gate``: a 16th-note pattern ("x" open, "-" shut) chopping the chord in
    builds and mains (the trance gate)."""
    grid = ctx.grid
    voicings = voice_chords(ctx.chords, low=low, high=high)
    _, _, _, attack, release, _ = _PADS[sound]
    rng = ctx.sub_rng(402, len(sound))
    runs: list[tuple[int, int]] = []
    for bar in bars:
        ci = ctx.chord_index(bar.index)
        if runs and runs[-1][1] == bar.index and ctx.chord_index(runs[-1][0]) == ci:
            runs[-1] = (runs[-1][0], bar.index + 1)
        else:
            runs.append((bar.index, bar.index + 1))
    for start_bar, end_bar in runs:
        ci = ctx.chord_index(start_bar)
        loops = _pad_loop(ctx, sound, ci, voicings[ci])
        start = grid.sample(grid.time(start_bar, 0))
        hold = grid.sample(grid.time(end_bar, 0)) - start
        rel = int(release * ctx.sr)
        length = hold + rel
        size = loops.shape[-1]
        idx = (int(rng.integers(size)) + np.arange(length)) % size
        seg = np.take(loops, idx, axis=-1)
        if seg.shape[0] == 2:
            t = (start + np.arange(length)) / ctx.sr
            lfo = (0.5 + 0.5 * np.sin(2 * np.pi * t / 23.0 + ctx.seed % 7)).astype(np.float32)
            seg = seg[0] + lfo * (seg[1] - seg[0])
        else:
            seg = seg[0]
        env = ins.adsr(hold, rel, sr=ctx.sr, attack_s=attack, decay_s=1.0, sustain=1.0)
        if gate:
            env = env * _gate_curve(ctx, start, length, gate)
        place(bus, seg * env, [(start, gain)])


def _gate_curve(ctx: TrackContext, start: int, length: int, pattern: str) -> np.ndarray:
    """The trance gate over samples ``start .. start + length``: open on the
    pattern's "x" 16ths of bars in builds and mains, with 4 ms edges."""
    grid = ctx.grid
    pos = start + np.arange(length)
    step = np.floor(pos / (grid.step_s * ctx.sr)).astype(np.int64)
    mask = np.array([c == "x" for c in pattern], dtype=np.float32)
    gated_bars = np.array(
        [b.section in ("build", "main") for b in ctx.arrangement.bars] + [False], dtype=bool
    )
    bar = np.minimum(step // 16, gated_bars.size - 1)
    g = np.where(gated_bars[bar], mask[step % 16], 1.0).astype(np.float32)
    k = max(1, int(0.004 * ctx.sr))
    return np.asarray(uniform_filter1d(g, size=k), dtype=np.float32)


def render_pad(ctx: TrackContext, buses: Buses) -> None:
    bars = ctx.bars_with("pad")
    if bars and ctx.style.pad_sound != "none":
        _sustained(
            ctx,
            buses.pump,
            bars,
            ctx.style.pad_sound,
            ctx.style.gains.get("pad", 0.25),
            low=52,
            high=71,
            gate=ctx.style.pad_gate,
        )


def _keys_note(ctx: TrackContext, sound: str, midi: int, gate: int, vel: float) -> np.ndarray:
    f, sr, vb = ctx.hz(midi), ctx.sr, _vel_bucket(vel)
    pre = ctx.preset
    lb = pre.lead_brightness if pre else 1.0
    ld = pre.lead_decay if pre else 1.0
    detune = pre.supersaw_detune_cents if pre else 22.0
    makers: dict[str, Callable[[], np.ndarray]] = {
        "rhodes": lambda: ins.rhodes(f, gate=gate, sr=sr, velocity=vb),
        "piano": lambda: ins.felt_piano(f, gate=gate, sr=sr, velocity=vb),
        "organ": lambda: ins.organ(f, gate=gate, sr=sr),
        "stab": lambda: ins.pluck(
            f, gate=gate, sr=sr, brightness=0.5 * lb, decay_s=0.16 * ld, square=0.5
        ),
        "pluck": lambda: ins.pluck(
            f, gate=gate, sr=sr, brightness=0.55 * lb, decay_s=0.22 * ld, square=0.3
        ),
        "bell": lambda: ins.bell(f, gate=gate, sr=sr),
        "supersaw": lambda: ins.supersaw(
            f, gate=gate, sr=sr, rng=ctx.sub_rng(501, midi, gate), detune_cents=detune
        ),
    }
    return ctx.note(("keys", sound, midi, gate, vb), lambda: _peak1(makers[sound]()))


def render_chords(ctx: TrackContext, buses: Buses) -> None:
    """Chord stabs or comping on the chords' voicings, lightly strummed."""
    style, grid = ctx.style, ctx.grid
    sound = ctx.choices.get("chords", "none")
    bars = ctx.bars_with("chords")
    if not bars or sound == "none":
        return
    gain = style.gains.get("chords", 0.25)
    if sound == "supersaw" and ctx.choices.get("chord_pattern", "0") == "0":
        _sustained(ctx, buses.pump, bars, "supersaw", gain, low=55, high=74)
        return
    low, high = (50, 65) if sound == "stab" else (53, 72)
    voicings = voice_chords(ctx.chords, low=low, high=high)
    bus = buses.lead if sound == "stab" else buses.pump
    first = int(ctx.choices.get("chord_pattern", "0"))
    for bar in bars:
        pattern = style.chord_patterns[(first + bar.variation % 2) % len(style.chord_patterns)]
        voicing = voicings[ctx.chord_index(bar.index)]
        for s in parse_pattern(pattern):
            # Held chords ring into the next one (legato); stabs stay short.
            gate = int(grid.samples(s.length) * (1.0 if s.length >= 8 else 0.85))
            vel = grid.velocity(s.velocity, 0.1)
            t0 = grid.time(bar.index, s.index) + grid.jitter(0.5)
            strum = 0.006 if sound in ("rhodes", "piano") else 0.0
            for k, midi in enumerate(voicing):
                note = _keys_note(ctx, sound, midi, gate, vel)
                # Voices spread across the stereo field, low left to high right.
                spread = 0.5 * (2.0 * k / max(len(voicing) - 1, 1) - 1.0)
                hit = [(grid.sample(t0 + k * strum), gain * vel / len(voicing) ** 0.5)]
                place(bus, note, hit, pan=spread)


def render_lead(ctx: TrackContext, buses: Buses) -> None:
    """The lead: a two-bar motif developed phrase by phrase (``melody.develop``),
    or a 303 line, or sparse ambient fragments."""
    sound = ctx.choices.get("lead", "none")
    bars = ctx.bars_with("lead")
    if not bars or sound == "none":
        return
    if sound == "acid":
        _render_acid(ctx, buses, bars)
        return
    if ctx.style.beatless:
        _render_fragments(ctx, buses, bars, sound)
        return
    grid = ctx.grid
    rng = ctx.sub_rng(601)
    sparse = ctx.style.name in ("lofi_hip_hop", "drum_and_bass")
    a = melody.make_motif(rng, sparse=sparse)
    n_phrases = max(1, -(-len(ctx.arrangement.bars) // 8))
    phrases = melody.develop(a, rng, phrases=n_phrases)
    base = 60 + (ctx.key.tonic - 60) % 12 + (12 if sound in ("supersaw", "pluck", "bell") else 0)
    gain = ctx.style.gains.get("lead", 0.2)
    legato = 0.95 if sound == "supersaw" else 0.8
    for bar in bars:
        half = bar.index % 2
        first_bar = bar.index - half
        motif = phrases[(bar.index // 8) % len(phrases)][(bar.index // 2) % 4]
        chords = [ctx.chord(first_bar), ctx.chord(first_bar + 1)]
        notes = melody.realise(motif, key=ctx.key, chords=chords, base_midi=base, pentatonic=sparse)
        for offset, note in notes:
            if offset != half:
                continue
            gate = int(grid.samples(note.length) * legato)
            vel = grid.velocity(note.velocity, 0.06)
            rendered = _keys_note(ctx, sound, note.midi, gate, vel)
            t = grid.time(bar.index, note.step) + grid.jitter(0.5)
            place(buses.lead, rendered, [(grid.sample(t), gain * vel)])


def _render_acid(ctx: TrackContext, buses: Buses, bars: list[Bar]) -> None:
    """A 303 line with accents and slides (glides into the next note, held
    legato), whose cutoff breathes over 32 bars and opens through builds."""
    grid, sr = ctx.grid, ctx.sr
    rng = ctx.sub_rng(701)
    riffs = [melody.acid_riff(rng)]
    riffs.append(melody.mutate_riff(riffs[0], rng))
    resonance = float(rng.uniform(5.0, 8.0))
    gain = ctx.style.gains.get("lead", 0.2)
    for bar in bars:
        if bar.section == "build":
            level = bar.bar_in_section / max(bar.section_bars - 1, 1)
        else:
            level = 0.5 - 0.5 * np.cos(2 * np.pi * bar.index / 32.0)
        q_level = round(float(level) * 12) / 12
        cutoff = 260.0 * 2.0 ** (3.0 * q_level)
        root = bass_root(ctx.chord(bar.index).root) + 12
        riff = riffs[bar.variation % 2]
        for i, note in enumerate(riff):
            midi = snap_to_key(root + note.midi, ctx.key)
            glide = None
            steps: float = note.length
            if note.slide and i + 1 < len(riff):
                glide = snap_to_key(root + riff[i + 1].midi, ctx.key)
                steps += 0.5  # held into the next note: a slide does not retrigger
            gate = int(grid.samples(steps) * (1.0 if glide is not None else 0.8))
            make = functools.partial(
                ins.acid,
                ctx.hz(midi),
                gate=gate,
                sr=sr,
                cutoff_hz=cutoff,
                resonance=resonance,
                accent=note.accent,
                glide_to=None if glide is None else ctx.hz(glide),
            )
            rendered = ctx.note(("acid", midi, gate, note.accent, q_level, glide), make)
            t = grid.time(bar.index, note.step) + grid.jitter(0.2)
            place(buses.lead, rendered, [(grid.sample(t), gain * note.velocity)])


def _render_fragments(ctx: TrackContext, buses: Buses, bars: list[Bar], sound: str) -> None:
    """Ambient: a few slow pentatonic notes per chord, freely placed."""
    grid = ctx.grid
    rng = ctx.sub_rng(801)
    base = 67 + (ctx.key.tonic - 67) % 12
    gain = ctx.style.gains.get("lead", 0.14)
    span = ctx.bars_per_chord
    for bar in bars:
        if bar.index % span != 0 or rng.random() > 0.35 + 0.55 * bar.energy:
            continue
        for note in melody.ambient_fragment(
            rng, key=ctx.key, chord=ctx.chord(bar.index), base_midi=base, span_steps=16 * span
        ):
            gate = grid.samples(note.length)
            rendered = _keys_note(ctx, sound, note.midi, gate, note.velocity)
            t = grid.time(bar.index, note.step) + float(rng.normal(0.0, 0.05))
            place(buses.lead, rendered, [(grid.sample(max(t, 0.0)), gain * note.velocity)])


def render_arp(ctx: TrackContext, buses: Buses) -> None:
    """A 16th-note arpeggio over the chord tones, changing shape every 8 bars."""
    bars = ctx.bars_with("arp")
    if not bars or not ctx.style.arp:
        return
    grid = ctx.grid
    voicings = voice_chords(ctx.chords, low=62, high=77)
    gain = ctx.style.gains.get("arp", 0.12)
    gate = int(grid.samples(1) * 0.8)
    offset = int(ctx.sub_rng(901).integers(4))
    for bar in bars:
        notes = melody.arp_bar(
            voicings[ctx.chord_index(bar.index)],
            variant=offset + bar.variation,
            octave_up=bar.variation % 3 == 2,
        )
        for note in notes:
            rendered = _keys_note(ctx, "pluck", note.midi, gate, 0.7)
            t = grid.time(bar.index, note.step) + grid.jitter(0.2)
            hit = [(grid.sample(t), gain * grid.velocity(note.velocity, 0.05))]
            place(buses.lead, rendered, hit, pan=0.35 if note.step % 2 else -0.35)
