"""The drum layers of a track: patterns per bar with 8-bar variations, fills
at phrase ends, snare rolls into drops, crashes, impacts and risers."""

from __future__ import annotations

import functools
from collections import defaultdict

import numpy as np

from models.generation.procedural import drums
from models.generation.procedural.arrangement import Bar
from models.generation.procedural.context import Buses, TrackContext
from models.generation.procedural.genres import DrumPart
from models.generation.procedural.grid import Step, parse_pattern

# Round-robin variants per sound, so repeated hits are never identical.
_VARIANTS = {"hat": 4, "snare": 2, "clap": 2, "shaker": 3, "rim": 2}
_TOMS = (220, 180, 140, 110)


def _bar_steps(part: DrumPart, bar: Bar, ctx: TrackContext) -> list[Step]:
    pattern = part.patterns[bar.variation % len(part.patterns)]
    if bar.halftime and part.layer in ctx.style.halftime_patterns:
        pattern = ctx.style.halftime_patterns[part.layer]
    if len(pattern) > 16:
        half = bar.index % (len(pattern) // 16)
        pattern = pattern[16 * half : 16 * half + 16]
    return parse_pattern(pattern)


def _fill(kind: str, part: DrumPart, steps: list[Step]) -> list[tuple[str, Step]]:
    """The part's steps with the last beat (or half bar) replaced by a fill."""
    if kind == "dropout" and part.layer == "kick":
        return [(part.sound, s) for s in steps if s.index < 12]
    if part.layer != "snare":
        if kind == "open_hat" and part.layer == "hats":
            kept = [(part.sound, s) for s in steps if s.index < 14]
            return [*kept, ("open_hat", Step(14, 0.9, 1, "x"))]
        return [(part.sound, s) for s in steps]
    kept = [(part.sound, s) for s in steps if s.index < 12]
    if kind == "snare_roll":
        return kept + [(part.sound, Step(i, 0.45 + 0.15 * (i - 12), 1, "x")) for i in range(12, 16)]
    if kind == "toms":
        return kept + [(f"tom_{hz}", Step(12 + i, 0.8, 1, "x")) for i, hz in enumerate(_TOMS)]
    if kind == "ghost":
        ghosts = [Step(i, 0.35, 1, ".") for i in (9, 11, 14)] + [Step(15, 0.8, 1, "x")]
        return [(part.sound, s) for s in steps if s.index < 9] + [(part.sound, s) for s in ghosts]
    return [(part.sound, s) for s in steps]


def _roll(bar: Bar) -> list[tuple[float, float]]:
    """(step, velocity) of a snare roll that doubles speed each bar into the drop."""
    stage = min(3, max(0, int(np.ceil(bar.roll * 4)) - 1))
    spacing = (4.0, 2.0, 1.0, 0.5)[stage]
    base = 0.3 + 0.6 * bar.roll
    return [(float(t), base * (0.8 + 0.2 * t / 16.0)) for t in np.arange(0.0, 16.0, spacing)]


def render_drums(ctx: TrackContext, buses: Buses) -> None:
    """Render every drum hit of the arrangement into ``buses.dry`` (and the
    rumble into ``buses.bass``, which is ducked by the kick)."""
    style, grid = ctx.style, ctx.grid
    if not style.drums:
        return
    kit = drums.DrumSet(ctx.preset.kit if ctx.preset else style.kit, sr=ctx.sr, seed=ctx.seed)
    rng = ctx.sub_rng(101)
    hits: dict[tuple[str, int], list[tuple[int, float]]] = defaultdict(list)
    counters: dict[str, int] = defaultdict(int)

    def add(sound: str, bar: int, step: float, velocity: float, gain: float, tight: float) -> None:
        t = grid.time(bar, step) + grid.jitter(tight)
        variant = counters[sound] % _VARIANTS.get(sound, 1)
        counters[sound] += 1
        hits[(sound, variant)].append((grid.sample(t), gain * grid.velocity(velocity)))

    for bar in ctx.arrangement.bars:
        fill_kind = str(rng.choice(list(style.fills))) if bar.phrase_end and style.fills else ""
        if fill_kind == "dropout" and not bar.layers & {"bass", "chords", "pad", "lead"}:
            # Dropping the kick under nothing but hats sounds like a glitch.
            fill_kind = "open_hat"
        for part in style.drums:
            if part.layer not in bar.layers or (bar.dropout and part.layer != "hats"):
                continue
            steps = _bar_steps(part, bar, ctx)
            if part.layer == "snare" and bar.roll > 0:
                for step, vel in _roll(bar):
                    add("snare", bar.index, step, vel, part.gain * 0.9, 0.3)
                continue
            events = (
                _fill(fill_kind, part, steps) if fill_kind else [(part.sound, s) for s in steps]
            )
            for sound, s in events:
                add(sound, bar.index, s.index, s.velocity, part.gain, part.humanise)
        if bar.crash and bar.index > 0:
            add("crash", bar.index, 0, 0.9, 0.22, 0.0)
        if bar.drop and any(p.layer == "kick" for p in style.drums):
            add("impact", bar.index, 0, 1.0, 0.5, 0.0)
    for (sound, variant), placed in sorted(hits.items()):
        sample = kit.get(sound, variant)
        drums.place(buses.dry, sample, placed)
        if sound == "kick":
            buses.kick_positions.extend(p for p, _ in placed)
            if style.kit.rumble > 0:
                rumble = kit.get("rumble")
                drums.place(
                    buses.bass, rumble, [(p, g * 0.28 * style.kit.rumble) for p, g in placed]
                )
    buses.kick_positions.sort()
    _reverse_cymbals(ctx, buses, kit)
    _risers(ctx, buses)
    if style.breaks:
        render_break(ctx, buses, kit)


# A one-bar break in the manner of the classic funk breaks drum & bass is cut
# from: (sound, 16th step, velocity).
_BREAK = (
    ("kick", 0, 1.0), ("hat", 0, 0.6), ("hat", 2, 0.5), ("kick", 2, 0.7),
    ("snare", 4, 1.0), ("hat", 4, 0.5), ("hat", 6, 0.5), ("snare", 7, 0.35),
    ("hat", 8, 0.6), ("snare", 9, 0.4), ("kick", 10, 0.9), ("kick", 11, 0.6),
    ("snare", 12, 1.0), ("hat", 12, 0.5), ("hat", 14, 0.5), ("snare", 15, 0.35),
)  # fmt: skip


def _break_loop(ctx: TrackContext, kit: drums.DrumSet) -> np.ndarray:
    """One bar of the break, played dry into its own buffer (2, bar)."""
    grid = ctx.grid
    n = grid.samples(16)
    loop = np.zeros((2, n + ctx.sr), dtype=np.float32)
    for k, (sound, step, vel) in enumerate(_BREAK):
        drums.place(loop, kit.get(sound, k % 2), [(grid.samples(step) if step else 0, vel)])
    # The break's own tail wraps onto its start, as a sampled loop does.
    loop[:, : ctx.sr] += loop[:, n : n + ctx.sr]
    return loop[:, :n]


def _chop_order(rng: np.random.Generator, bar: Bar) -> list[tuple[int, bool]]:
    """Which of the eight 8th-note slices plays in each slot, and whether it
    plays reversed: mostly the break as it is, a few slices swapped or
    repeated (a stutter), a reversed slice at a phrase end."""
    order = list(range(8))
    for _ in range(int(rng.integers(0, 3))):
        i, j = (int(v) for v in rng.integers(0, 8, size=2))
        order[i], order[j] = order[j], order[i]
    if rng.random() < 0.3:
        i = int(rng.integers(4, 8))
        order[i] = order[i - 1]  # stutter
    rev = [False] * 8
    if bar.phrase_end:
        rev[7] = True
    return list(zip(order, rev, strict=True))


def render_break(ctx: TrackContext, buses: Buses, kit: drums.DrumSet) -> None:
    """Drum & bass chopped breaks: the break loop cut into 8th-note slices
    and re-sequenced per bar (``_chop_order``), under the two-step."""
    bars = ctx.bars_with("break")
    if not bars:
        return
    grid = ctx.grid
    loop = _break_loop(ctx, kit)
    slice_len = loop.shape[-1] // 8
    fade = np.ones(slice_len, dtype=np.float32)
    k = min(int(0.003 * ctx.sr), slice_len // 4)
    fade[:k] = np.linspace(0.0, 1.0, k)
    fade[-k:] = np.linspace(1.0, 0.0, k)
    rng = ctx.sub_rng(103)
    gain = 0.42
    for bar in bars:
        if bar.dropout:
            continue
        for slot, (src, reverse) in enumerate(_chop_order(rng, bar)):
            piece = loop[:, src * slice_len : (src + 1) * slice_len]
            if reverse:
                piece = piece[:, ::-1]
            start = grid.sample(grid.time(bar.index, 2 * slot))
            drums.place(buses.dry, piece * fade, [(start, gain * grid.velocity(1.0, 0.05))])


def _reverse_cymbals(ctx: TrackContext, buses: Buses, kit: drums.DrumSet) -> None:
    """A reversed crash swelling into each section turn that lands on a crash."""
    grid = ctx.grid
    crash = kit.get("crash")
    length = min(crash.shape[-1], grid.samples(16))
    swell = np.ascontiguousarray(crash[:, :length][:, ::-1])
    for bar in ctx.arrangement.bars:
        if bar.index > 0 and bar.bar_in_section == 0 and (bar.drop or bar.crash):
            end = grid.sample(grid.time(bar.index, 0))
            drums.place(buses.dry, swell, [(end - length, 0.16)])


def _risers(ctx: TrackContext, buses: Buses) -> None:
    """White-noise risers over the run-up bars into each drop."""
    grid = ctx.grid
    bars = ctx.arrangement.bars
    i = 0
    while i < len(bars):
        if not bars[i].riser:
            i += 1
            continue
        j = i
        while (
            j + 1 < len(bars)
            and bars[j + 1].riser
            and bars[j + 1].section_index == bars[i].section_index
        ):
            j += 1
        start = grid.sample(grid.time(bars[i].index, 0))
        end = grid.sample(grid.time(bars[j].index + 1, 0))
        noise = ctx.note(
            ("riser", end - start),
            functools.partial(drums.riser, end - start, sr=ctx.sr, rng=ctx.sub_rng(202, i)),
        )
        drums.place(buses.dry, noise, [(start, 0.16)])
        i = j + 1
