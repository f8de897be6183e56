"""The arrangement: sections on phrase boundaries, which layers play in each
bar, and the turns between sections (fills, crashes, risers, drops)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from models.generation.procedural.genres import GenreStyle

# Added to the template, repeatedly, for long tracks.
_CYCLE = (("breakdown", 1), ("build", 1), ("main", 2))
_ENERGY = {"intro": 0.4, "build": 0.7, "main": 1.0, "breakdown": 0.5, "outro": 0.4}


@dataclass(frozen=True)
class Section:
    name: str
    start_bar: int
    bars: int


@dataclass(frozen=True)
class Bar:
    """What happens in one bar."""

    index: int
    section: str
    section_index: int
    bar_in_section: int
    section_bars: int
    layers: frozenset[str]
    variation: int  # changes every 8 bars so nothing loops audibly
    phrase_end: bool  # last bar of a phrase: play a fill
    crash: bool  # first bar of a section or phrase that lands with a crash
    drop: bool  # first bar of a main section after a build or breakdown
    riser: bool  # inside the run-up to a drop
    roll: float  # 0..1 progress of a snare roll (trance builds)
    dropout: bool  # lo-fi: the drums sit this bar out
    halftime: bool
    energy: float


@dataclass(frozen=True)
class Arrangement:
    sections: tuple[Section, ...]
    bars: tuple[Bar, ...]
    phrase_bars: int


def _section_counts(
    template: list[tuple[str, int]], phrases: int, *, cycles_allowed: bool
) -> list[tuple[str, int]]:
    """Spread ``phrases`` over the template, inserting extra
    breakdown-build-main cycles when the track is long."""
    base = sum(c for _, c in template)
    extra = phrases - base
    cycles = max(0, extra // 10) if cycles_allowed else 0
    body = list(template[:-1])
    for _ in range(cycles):
        body.extend(_CYCLE)
    counts = [*body, template[-1]]
    extra = phrases - sum(c for _, c in counts)
    order = [i for i, (n, _) in enumerate(counts) if n == "main"]
    order += [i for i, (n, _) in enumerate(counts) if n in ("intro", "outro", "breakdown")]
    k = 0
    while extra > 0 and order:
        i = order[k % len(order)]
        counts[i] = (counts[i][0], counts[i][1] + 1)
        extra -= 1
        k += 1
    return counts


def plan_sections(style: GenreStyle, n_bars: int) -> tuple[list[Section], int]:
    """Sections covering ``n_bars`` and the phrase length used.

    Short tracks shrink the phrase (8 → 4 → 2 → 1 bars) before dropping
    sections, so even a 10 s render has an intro, a main part and an outro.
    """
    template = list(style.template)
    need = sum(c for _, c in template)
    phrase = style.phrase_bars
    while phrase > 1 and n_bars // phrase < need:
        phrase //= 2
    if n_bars // phrase >= need:
        # With shortened phrases the sections are already short: grow them
        # rather than adding more turns.
        counts = [
            (name, c * phrase)
            for name, c in _section_counts(
                template, n_bars // phrase, cycles_allowed=phrase == style.phrase_bars
            )
        ]
        counts[-1] = (counts[-1][0], counts[-1][1] + n_bars % phrase)
    elif n_bars >= 5:
        counts = [("intro", 1), ("build", 1), ("main", n_bars - 3), ("outro", 1)]
    elif n_bars >= 3:
        counts = [("intro", 1), ("main", n_bars - 1)]
    else:
        counts = [("intro", 1), ("main", max(n_bars - 1, 1))][: max(n_bars, 1)]
    sections: list[Section] = []
    start = 0
    for name, bars in counts:
        sections.append(Section(name, start, bars))
        start += bars
    return sections, phrase


def _stage(stages: tuple[tuple[str, ...], ...], bar_in: int, bars: int, phrase: int) -> set[str]:
    """Layers of an intro/outro stage; stages change on phrase boundaries."""
    n_phrases = max(1, -(-bars // phrase))
    if n_phrases >= len(stages):
        idx = min(len(stages) - 1, (bar_in // phrase) * len(stages) // n_phrases)
    else:
        idx = min(len(stages) - 1, bar_in * len(stages) // max(bars, 1))
    return set(stages[idx])


def plan_arrangement(
    style: GenreStyle,
    n_bars: int,
    rng: np.random.Generator,
    *,
    flatten: bool = False,
    mute: frozenset[str] = frozenset(),
) -> Arrangement:
    """Plan every bar of a track of ``n_bars`` bars.

    ``flatten`` plays the main section from start to end (no intro, build,
    breakdown or outro) and ``mute`` drops layers everywhere: the degraded
    copies the score's A/B test compares against the real arrangement.
    """
    sections, phrase = plan_sections(style, n_bars)
    if flatten:
        sections = [Section("main", 0, n_bars)]
    bars: list[Bar] = []
    main_count = 0
    for si, sec in enumerate(sections):
        nxt = sections[si + 1].name if si + 1 < len(sections) else None
        prev = sections[si - 1].name if si > 0 else None
        run_up = nxt == "main" and sec.name in ("build", "breakdown")
        riser_bars = min(4, max(1, sec.bars // 2)) if run_up else 0
        for j in range(sec.bars):
            layers: set[str]
            if sec.name == "intro":
                layers = _stage(style.intro, j, sec.bars, phrase)
            elif sec.name == "outro":
                layers = _stage(style.outro, j, sec.bars, phrase)
            elif sec.name == "build":
                layers = set(style.build)
            elif sec.name == "breakdown":
                layers = set(style.breakdown)
            else:
                rot = style.rotate[(main_count + j // phrase) % len(style.rotate)]
                layers = set(style.main) | set(rot)
            layers -= mute
            index = sec.start_bar + j
            last_of_phrase = (j % phrase == phrase - 1) or j == sec.bars - 1
            has_drums = "kick" in layers or "snare" in layers
            dropout = (
                style.dropouts
                and sec.name == "main"
                and 0 < j % phrase < phrase - 1
                and rng.random() < 0.08
            )
            roll_len = min(4, sec.bars)
            roll = 0.0
            if style.roll_in_builds and run_up and j >= sec.bars - roll_len:
                roll = (j - (sec.bars - roll_len) + 1) / roll_len
            bars.append(
                Bar(
                    index=index,
                    section=sec.name,
                    section_index=si,
                    bar_in_section=j,
                    section_bars=sec.bars,
                    layers=frozenset(layers),
                    variation=index // 8,
                    phrase_end=last_of_phrase and has_drums and nxt is not None,
                    crash=has_drums
                    and j % phrase == 0
                    and sec.name in ("main", "build")
                    and not (sec.name == "build" and j > 0),
                    drop=sec.name == "main" and j == 0 and prev in ("build", "breakdown"),
                    riser=j >= sec.bars - riser_bars,
                    roll=roll,
                    dropout=dropout,
                    halftime=style.halftime_breakdown and sec.name == "breakdown",
                    energy=_ENERGY[sec.name],
                )
            )
        if sec.name == "main":
            main_count += 1
    return Arrangement(sections=tuple(sections), bars=tuple(bars), phrase_bars=phrase)
