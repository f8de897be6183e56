"""Render a whole track: choose the material from the seed, render the layers
into buses, then mix (side-chain, sends, reverb, delay, lo-fi wear) and
leave headroom for mastering."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from models.generation.procedural import effects as fx
from models.generation.procedural.arrangement import plan_arrangement
from models.generation.procedural.context import Buses, TrackContext
from models.generation.procedural.drum_layers import render_drums
from models.generation.procedural.genres import GenreStyle
from models.generation.procedural.grid import Grid
from models.generation.procedural.oscillators import padsynth
from models.generation.procedural.presets import draw_preset
from models.generation.procedural.theory import Chord, Key, consonant_degrees, progression
from models.generation.procedural.tonal_layers import (
    render_arp,
    render_bass,
    render_chords,
    render_lead,
    render_pad,
)

PEAK_DBFS = -6.0
_RELEASED = np.zeros((2, 0), dtype=np.float32)


@dataclass(frozen=True)
class Variant:
    """A deliberately changed rendering of a seed, for calibration and A/B
    tests of the score: layers muted, the arrangement flattened to its main
    section, or the whole track detuned (cents off A440)."""

    mute: frozenset[str] = frozenset()
    flatten: bool = False
    tuning_cents: float = 0.0


NORMAL = Variant()


@dataclass
class RenderedTrack:
    """The audio and what it truly contains."""

    audio: np.ndarray
    bpm: float  # the tempo the drums play; 0.0 when beatless
    pulse_bpm: float  # the grid that paces the chords (ambient: no beat on it)
    key: Key
    chords: list[Chord]
    sections: list[tuple[str, float, float]]
    section_layers: list[list[str]]
    layers: list[str]
    swing: float
    choices: dict[str, str] = field(default_factory=dict)


def _choose(rng: np.random.Generator, options: tuple[str, ...] | list[str]) -> str:
    return str(options[int(rng.integers(len(options)))])


def _build_context(
    style: GenreStyle,
    *,
    bpm: float,
    key: Key,
    duration_s: float,
    seed: int,
    sr: int,
    variant: Variant = NORMAL,
) -> TrackContext:
    rng = np.random.Generator(np.random.PCG64(seed))
    progs = style.progressions_minor if key.is_minor else style.progressions_major
    degrees = consonant_degrees(key, progs[int(rng.integers(len(progs)))])
    bars_per_chord = int(style.bars_per_chord[int(rng.integers(len(style.bars_per_chord)))])
    swing = float(rng.uniform(*style.swing))
    grid = Grid(
        bpm=bpm,
        sr=sr,
        swing=swing,
        humanise_s=style.humanise_ms / 1000.0,
        rng=np.random.Generator(np.random.PCG64([seed, 11])),
    )
    n_bars = max(1, int(duration_s / grid.bar_s + 1e-9))
    arrangement = plan_arrangement(
        style,
        n_bars,
        np.random.Generator(np.random.PCG64([seed, 12])),
        flatten=variant.flatten,
        mute=variant.mute,
    )
    choices = {
        "chords": _choose(rng, style.chord_sounds),
        "chord_pattern": str(int(rng.integers(len(style.chord_patterns)))),
        "lead": _choose(rng, style.lead_sounds),
        "pad": style.pad_sound,
        "bass": style.bass_sound,
    }
    preset = draw_preset(style, np.random.Generator(np.random.PCG64([seed, 13])))
    choices["preset"] = preset.name
    return TrackContext(
        style=style,
        sr=sr,
        n=round(duration_s * sr),
        seed=seed,
        rng=rng,
        grid=grid,
        key=key,
        chords=progression(key, degrees, size=style.chord_size),
        bars_per_chord=bars_per_chord,
        arrangement=arrangement,
        choices=choices,
        tuning_cents=variant.tuning_cents,
        preset=preset,
    )


def _audible_layers(ctx: TrackContext, layers: frozenset[str] | set[str]) -> list[str]:
    silent = {"chords"} if ctx.choices["chords"] == "none" else set()
    silent |= {"pad"} if ctx.style.pad_sound == "none" else set()
    silent |= {"arp"} if not ctx.style.arp else set()
    silent |= {"break"} if not ctx.style.breaks else set()
    drums = {p.layer for p in ctx.style.drums}
    silent |= {x for x in ("kick", "snare", "hats", "open_hats", "perc") if x not in drums}
    return sorted(set(layers) - silent)


def _section_span(ctx: TrackContext, start_bar: int, bars: int) -> slice:
    a = ctx.grid.sample(ctx.grid.time(start_bar, 0))
    b = ctx.grid.sample(ctx.grid.time(start_bar + bars, 0))
    return slice(min(a, ctx.n), min(b, ctx.n))


def _crossfaded(bus: np.ndarray, span: slice, processed: np.ndarray, sr: int) -> None:
    """Write ``processed`` over ``bus[:, span]`` with 10 ms crossfades in and
    out, so a filter's fresh state never makes a step (a click) at the edges."""
    k = min(int(0.01 * sr), processed.shape[-1] // 2)
    ramp = np.linspace(0.0, 1.0, k, dtype=np.float32)
    dry = bus[:, span]
    processed[:, :k] = dry[:, :k] + ramp * (processed[:, :k] - dry[:, :k])
    processed[:, -k:] = processed[:, -k:] + ramp * (dry[:, -k:] - processed[:, -k:])
    bus[:, span] = processed


def _dip(x: np.ndarray, low_hz: float, *, sr: int) -> np.ndarray:
    """A low-pass move over ``x``: closing from 14 kHz to ``low_hz`` and
    opening again, the DJ's filter ride over a phrase."""
    half = x.shape[-1] // 2
    down = fx.sweep_filter(x[:, :half], "lowpass", 14000.0, low_hz, sr=sr, block=4096)
    up = fx.sweep_filter(x[:, half:], "lowpass", low_hz, 14000.0, sr=sr, block=4096)
    return np.concatenate([down, up], axis=1)


def _automate(ctx: TrackContext, buses: Buses) -> None:
    """Fader and filter moves per section, on the music buses."""
    style, sr = ctx.style, ctx.sr
    for sec in ctx.arrangement.sections:
        span = _section_span(ctx, sec.start_bar, sec.bars)
        if span.stop - span.start < 2:
            continue
        if sec.name == "build" and style.sweep_builds:
            # Builds open a low-pass on the music: the tension before the drop.
            for bus in (buses.pump, buses.lead):
                swept = fx.sweep_filter(bus[:, span], "lowpass", 400.0, 14000.0, sr=sr, block=4096)
                _crossfaded(bus, span, swept, sr)
        if sec.name == "intro" and style.lowpass_hz is not None:
            # Lo-fi intros come in as if through a small speaker.
            for bus in (buses.pump, buses.lead):
                _crossfaded(bus, span, fx.filt(bus[:, span], "lowpass", 1100.0, sr=sr), sr)
        if sec.name == "breakdown" and not style.beatless:
            # Without kick and bass the music carries the breakdown; ride it
            # up so the section does not sound like a hole.
            lift = _lift_curve(span.stop - span.start, sr=sr, gain=1.6)
            buses.pump[:, span] *= lift
            buses.lead[:, span] *= lift
        if sec.name == "main" and style.filter_moves and sec.bars >= 16:
            # One phrase of each long main gets a filter ride: a new idea
            # that is not a new part.
            rng = ctx.sub_rng(1201, sec.start_bar)
            phrase = 8 * int(rng.integers(1, sec.bars // 8))
            move = _section_span(ctx, sec.start_bar + phrase - 8, 8)
            low = float(rng.uniform(700.0, 1800.0))
            for bus in (buses.pump, buses.lead):
                _crossfaded(bus, move, _dip(bus[:, move], low, sr=sr), sr)


def _drift(x: np.ndarray, *, sr: int, rng: np.random.Generator, depth: float) -> None:
    """Slow stereo movement in place: the image leans left and right over
    20-40 s (a constant-power pan of the whole bus)."""
    n = x.shape[-1]
    t = np.arange(n, dtype=np.float32) / np.float32(sr)
    pos = np.float32(depth) * np.sin(
        np.float32(2 * np.pi / rng.uniform(20.0, 40.0)) * t + np.float32(rng.uniform(0, 6))
    )
    angle = (pos + np.float32(1.0)) * np.float32(np.pi / 4)
    x[0] *= np.cos(angle) * np.float32(np.sqrt(2.0))
    x[1] *= np.sin(angle) * np.float32(np.sqrt(2.0))


def _mono_send(buses: Buses, gains: dict[str, float]) -> np.ndarray:
    """The mono sum of the buses times their send levels (reverb input)."""
    send = np.zeros(buses.dry.shape[-1], dtype=np.float32)
    for name, gain in gains.items():
        if gain > 0:
            bus = getattr(buses, name)
            send += np.float32(0.5 * gain) * bus[0]
            send += np.float32(0.5 * gain) * bus[1]
    return send


def _mix(ctx: TrackContext, buses: Buses) -> np.ndarray:
    """Sends, side-chain and the sum of the buses (reuses ``buses.dry``)."""
    style, sr, n = ctx.style, ctx.sr, ctx.n
    beat = ctx.grid.beat_s
    _automate(ctx, buses)
    if style.stereo_drift:
        _drift(buses.pump, sr=sr, rng=ctx.sub_rng(1301), depth=0.35)
        _drift(buses.lead, sr=sr, rng=ctx.sub_rng(1302), depth=0.6)
    delay_send = max(style.delay_sends.values(), default=0.0)
    if delay_send > 0:
        fx.add_delay(
            buses.lead,
            delay_samples=round(style.delay_beats * beat * sr),
            feedback=ctx.preset.delay_feedback if ctx.preset else 0.45,
            send=delay_send,
        )
    sends = {
        "pump": max(style.sends.get("pad", 0.0), style.sends.get("chords", 0.0)),
        "lead": max(style.sends.get(k, 0.0) for k in ("lead", "arp", "chords")),
        "bass": style.sends.get("bass", 0.0),
    }
    send = _mono_send(buses, sends)
    duck: np.ndarray | None = None
    if style.sidechain > 0 and buses.kick_positions:
        kicks = np.asarray(buses.kick_positions)
        duck = fx.sidechain_gain(n, kicks, depth=style.sidechain, release_s=0.8 * beat, sr=sr)
        buses.pump *= duck
        # Bass and leads pump less: the same curve, scaled towards 1.
        for bus, amount in ((buses.bass, 0.7), (buses.lead, 0.35)):
            bus *= np.float32(1.0 - amount) + np.float32(amount) * duck
    # Sum into the dry bus and let go of each bus as soon as it is added:
    # a long track's buses are hundreds of megabytes each.
    mix = buses.dry
    for name in ("bass", "pump", "lead"):
        mix += getattr(buses, name)
        setattr(buses, name, _RELEASED)
    reverb_s = round(style.reverb_s * (ctx.preset.reverb if ctx.preset else 1.0), 1)
    ir = fx.reverb_ir(sr, reverb_s, 5000.0 if style.beatless else 6500.0, 0.02)
    wet = fx.reverb(send, ir, sr=sr)
    del send
    wet *= np.float32(style.reverb_return)
    if duck is not None:
        wet *= duck  # the reverb pumps with the pads it carries
    mix += wet
    return mix


def _master(ctx: TrackContext, mix: np.ndarray) -> np.ndarray:
    """Lo-fi wear or ambient air, then mono lows (in place where it can)."""
    style, sr, n = ctx.style, ctx.sr, ctx.n
    rng = ctx.sub_rng(1001)
    if style.lowpass_hz is not None:
        fx.filt(mix, "lowpass", float(rng.uniform(*style.lowpass_hz)), sr=sr, out=mix)
        mix = fx.tape_wow(mix, sr=sr, rng=rng, wow_ms=0.35, flutter_ms=0.03)
        mix /= np.float32(np.max(np.abs(mix)) + 1e-9)
        mix = fx.saturate(mix, 1.6)
    if style.crackle:
        level = 0.06 * float(np.max(np.abs(mix)))
        mix += fx.vinyl_crackle(n, sr=sr, rng=rng, clicks_per_s=7.0, level=level)
    if style.beatless and "texture" in style.main:
        mix += _wind(n, sr=sr, rng=rng, level=0.03 * float(np.max(np.abs(mix))))
    return fx.mono_low_end(mix, sr=sr, cutoff_hz=120.0)


def _lift_curve(n: int, *, sr: int, gain: float) -> np.ndarray:
    """``gain`` over ``n`` samples with 50 ms ramps at both ends."""
    curve = np.full(n, gain, dtype=np.float32)
    ramp = min(int(0.05 * sr), n // 2)
    if ramp > 0:
        r = np.linspace(1.0, gain, ramp, dtype=np.float32)
        curve[:ramp] = r
        curve[n - ramp :] = r[::-1]
    return curve


def _wind(n: int, *, sr: int, rng: np.random.Generator, level: float) -> np.ndarray:
    """Air: a 12 s loop of band-limited noise (one PADsynth band around 1 kHz,
    different in each ear), swelling slowly."""
    size = 2**19
    loop = padsynth(
        np.array([1000.0]), np.array([1.0]), n=size, sr=sr, bandwidth_cents=2400.0, rng=rng
    )
    reps = -(-n // size)
    noise = np.tile(loop, (1, reps))[:, :n]
    t = np.arange(n, dtype=np.float32) / np.float32(sr)
    swell = np.float32(0.5) + np.float32(0.5) * np.sin(
        np.float32(2 * np.pi / rng.uniform(17.0, 29.0)) * t + np.float32(rng.uniform(0, 6))
    )
    swell *= np.float32(level / (float(np.max(np.abs(loop))) or 1.0))
    noise *= swell
    return noise


def render(
    style: GenreStyle,
    *,
    bpm: float,
    key: Key,
    duration_s: float,
    seed: int,
    sr: int = 44100,
    variant: Variant = NORMAL,
) -> RenderedTrack:
    """Render ``duration_s`` seconds of ``style`` at ``bpm`` in ``key`` (deterministic in ``seed``)."""
    ctx = _build_context(
        style, bpm=bpm, key=key, duration_s=duration_s, seed=seed, sr=sr, variant=variant
    )
    buses = Buses.empty(ctx.n)
    render_drums(ctx, buses)
    render_bass(ctx, buses)
    render_pad(ctx, buses)
    render_chords(ctx, buses)
    render_lead(ctx, buses)
    render_arp(ctx, buses)
    mix = _master(ctx, _mix(ctx, buses))
    del buses
    end_s = ctx.arrangement.sections[-1].start_bar + ctx.arrangement.sections[-1].bars
    tail = max(duration_s - end_s * ctx.grid.bar_s, 0.0)
    fade_out = min(max(0.1 * duration_s, tail + 0.5), 8.0, duration_s / 3.0)
    fade_in = 2.5 if style.beatless else 0.005
    fx.fades(mix, sr=sr, fade_in_s=fade_in, fade_out_s=fade_out)
    audio = fx.normalize_peak(mix, peak_dbfs=PEAK_DBFS)
    sections = [
        (
            s.name,
            round(ctx.grid.time(s.start_bar, 0), 3),
            round(min(ctx.grid.time(s.start_bar + s.bars, 0), duration_s), 3),
        )
        for s in ctx.arrangement.sections
    ]
    sections[-1] = (sections[-1][0], sections[-1][1], round(duration_s, 3))
    section_layers: list[list[str]] = []
    for s in ctx.arrangement.sections:
        present: set[str] = set()
        for b in ctx.arrangement.bars[s.start_bar : s.start_bar + s.bars]:
            present |= b.layers
        section_layers.append(_audible_layers(ctx, present))
    return RenderedTrack(
        audio=audio,
        bpm=0.0 if style.beatless else float(bpm),
        pulse_bpm=float(bpm),
        key=key,
        chords=ctx.chords,
        sections=sections,
        section_layers=section_layers,
        layers=sorted({x for layer_list in section_layers for x in layer_list}),
        swing=ctx.grid.swing,
        choices=ctx.choices,
    )
