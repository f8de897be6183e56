"""Musical judgement: the analysis against the track's labels and its
genre's target, as sub-scores in 0..1 with a reason for each shortfall.

Four parts, each a weighted mean of its measures: tempo (the beat is
clear, steady and the labelled tempo under octave equivalence), key (the
labelled key is what plays: the key estimate agrees, the chroma sits on the
labelled scale, the tuning is A440), structure (sections with contrast,
material that comes back, not one literal loop) and genre fit (tempo range,
drum pattern, tonal balance, harmonic rhythm, loudness range, mono lows,
width, onset density). A reason is written for every measure that scores
under ``REASON_BELOW``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from models.features import OCTAVE_CENTRES_HZ
from models.musicality.analysis import MusicalAnalysis
from models.musicality.genre import (
    BEATLESS,
    BOOM_BAP,
    FOUR_ON_THE_FLOOR,
    TARGETS,
    TWO_STEP,
    GenreTarget,
    balance_excess_db,
    in_range,
)
from models.musicality.rhythm import DrumPattern
from models.musicality.tempo import octave_equivalent_error

REASON_BELOW = 0.6
#: Tracks shorter than this are too short to have a form; their structure
#: part reads neutral.
MIN_FORM_S = 45.0
NEUTRAL = 0.75


@dataclass
class Part:
    """One part of the judgement: measures (name -> (score, weight)) and
    reasons for the measures that fell short."""

    measures: dict[str, tuple[float, float]] = field(default_factory=dict)
    reasons: list[str] = field(default_factory=list)
    #: 0..1: how clearly the part's label wins over the alternatives (genre:
    #: the labelled genre's fit over the best other genre's). The part's
    #: score is scaled by 0.5 + 0.5 * identity: a mislabelled track loses
    #: half of what it fits.
    identity: float = 1.0

    def add(self, name: str, score: float, weight: float, reason: str | None = None) -> None:
        s = float(min(max(score, 0.0), 1.0))
        self.measures[name] = (s, weight)
        if reason is not None and s < REASON_BELOW:
            self.reasons.append(reason)

    @property
    def score(self) -> float:
        total = sum(w for _, w in self.measures.values())
        fit = sum(s * w for s, w in self.measures.values()) / total if total else NEUTRAL
        return fit * (0.5 + 0.5 * self.identity)


@dataclass
class Judgement:
    tempo: Part
    key: Part
    structure: Part
    genre: Part

    @property
    def reasons(self) -> list[str]:
        return [
            *self.tempo.reasons,
            *self.key.reasons,
            *self.structure.reasons,
            *self.genre.reasons,
        ]


def _ramp(value: float, ok: float, zero: float) -> float:
    if ok == zero:
        return 1.0 if value == ok else 0.0
    return float(min(max((value - zero) / (ok - zero), 0.0), 1.0))


def judge_tempo(a: MusicalAnalysis, intended_bpm: float | None, beatless: bool) -> Part:
    p = Part()
    t = a.tempo
    if beatless:
        p.add(
            "beatless",
            _ramp(t.confidence, 0.3, 0.8),
            1.0,
            f"tempo: a beat plays ({t.bpm:.1f} BPM, confidence {t.confidence:.2f}) where none "
            "is meant",
        )
        return p
    if intended_bpm is None:
        # No tempo labelled: an unlabelled beat track still gets credit for
        # a steady beat.
        if t.bpm > 0:
            p.add("stability", t.stability, 1.0)
        return p
    if t.bpm == 0.0:
        p.add("beat", 0.0, 3.0, f"tempo: no beat found, {intended_bpm:.1f} BPM intended")
        return p
    err, factor = octave_equivalent_error(t.bpm, intended_bpm)
    octave = "" if factor == 1.0 else f" (≡ {t.bpm * factor:.1f} at the octave, ×{factor:g})"
    p.add(
        "error",
        _ramp(err, 0.01, 0.08),
        4.0,
        f"tempo: measured {t.bpm:.1f} BPM{octave} for {intended_bpm:.1f} intended, {err:.1%} off",
    )
    p.add(
        "confidence",
        t.confidence,
        3.0,
        f"tempo: the beat is weak (salience {t.salience:.1f}, confidence {t.confidence:.2f})",
    )
    p.add(
        "stability",
        t.stability,
        2.0,
        f"tempo: unsteady, {t.stability:.0%} of 30 s windows agree with {t.bpm:.1f} BPM",
    )
    return p


_RELATION_SCORE = {"same": 1.0, "relative": 0.85, "fifth": 0.45, "parallel": 0.4, "other": 0.0}


def judge_key(a: MusicalAnalysis, label_key: str | None) -> Part:
    p = Part()
    k = a.key
    cents = abs(k.tuning_cents)
    if k.tuning_strength >= 0.15:
        p.add(
            "tuning",
            _ramp(cents, 8.0, 35.0),
            3.0,
            f"key: detuned, partials sit {k.tuning_cents:+.0f} cents off the A440 grid "
            f"(allowed ±8)",
        )
    else:
        p.add("tuning", 0.3, 3.0, "key: no clear pitched partials (tuning unreadable)")
    if label_key is None:
        p.add("clarity", _ramp(k.correlation, 0.7, 0.2), 3.0, "key: no clear key in the chroma")
        return p
    rel = _RELATION_SCORE.get(k.label_relation, 0.0)
    p.add(
        "agreement",
        rel,
        5.0,
        f"key: labelled {label_key} but {k.key} plays ({k.label_relation})",
    )
    p.add(
        "scale_fit",
        _ramp(k.scale_rank, 0.97, 0.5),
        3.0,
        f"key: the {label_key} scale is not where the notes are ({k.scale_fit:.0%} of the "
        f"chroma on it, {k.scale_rank:.2f} of the best transposition's share)",
    )
    p.add(
        "tonality",
        _ramp(k.tuning_strength, 0.35, 0.1),
        2.0,
        f"key: little pitched content (partial coherence {k.tuning_strength:.2f}, want ≥ 0.35)",
    )
    return p


def judge_structure(a: MusicalAnalysis) -> Part:
    p = Part()
    s = a.structure
    if a.duration_s < MIN_FORM_S:
        return p  # neutral
    minutes = a.duration_s / 60.0
    p.add(
        "loop",
        _ramp(s.loop_share, 0.15, 0.6),
        6.0,
        f"structure: one loop, {s.loop_share:.0%} of the track repeats itself exactly every "
        f"{s.loop_s:.1f} s",
    )
    p.add(
        "contrast",
        _ramp(s.contrast, 0.3, 0.12),
        6.0,
        f"structure: little contrast between sections (novelty {s.contrast:.2f}, want ≥ 0.3)",
    )
    p.add(
        "arc",
        _ramp(s.arc_db, 3.0, 0.8),
        5.0,
        f"structure: no arc, the loudest 15 s is only {s.arc_db:.1f} dB over the quietest "
        "(want ≥ 3 dB: builds, drops, breakdowns)",
    )
    per_minute = s.sections / minutes
    p.add(
        "sections",
        in_range(per_minute, (1.3, 4.5), 1.5),
        2.0,
        f"structure: {s.sections} sections in {minutes:.1f} min (want 1.3–4.5 a minute)",
    )
    p.add(
        "recurrence",
        in_range(s.recurrence, (0.55, 0.9), 0.15),
        4.0,
        f"structure: recurrence {s.recurrence:.2f}; want 0.55–0.9 (material that comes back, "
        "but not the same thing throughout)",
    )
    return p


def _pattern_score(
    a: MusicalAnalysis, pat: DrumPattern, drums: str, genre: str
) -> tuple[float, str]:
    t = a.tempo
    if drums == BEATLESS:
        score = _ramp(t.confidence, 0.3, 0.8)
        return (
            score,
            f"genre: {genre} should be beatless, a beat plays (confidence {t.confidence:.2f})",
        )
    if t.bpm == 0.0:
        return 0.0, f"genre: {genre} needs a beat, none found"
    if drums == FOUR_ON_THE_FLOOR:
        score = _ramp(pat.kick_every_beat, 0.9, 0.55)
        return score, (
            f"genre: {genre} wants a kick on every beat; {pat.kick_every_beat:.0%} of beats "
            f"have one"
        )
    if drums == TWO_STEP:
        score = _ramp(pat.kick_every_beat, 0.5, 0.8)
        return score, (
            f"genre: {genre} wants a two-step (kick on 1 and the & of 3); the kick is on "
            f"{pat.kick_every_beat:.0%} of beats"
        )
    # Boom-bap: not four-on-the-floor, and swung.
    straight = _ramp(pat.kick_every_beat, 0.65, 0.9)
    return straight, (
        f"genre: {genre} wants a boom-bap (kick on 1 and the & of 2/3); the kick is on "
        f"{pat.kick_every_beat:.0%} of beats"
    )


def genre_part(a: MusicalAnalysis, target: GenreTarget, lra_lu: float) -> Part:
    """How ``a`` fits ``target``: tempo range, drums, swing, balance,
    harmonic rhythm, loudness range, width, onsets, mono lows, pitched
    content."""
    p = Part()
    m = a.mix
    name = target.name.replace("_", " ")
    bpm, pattern = a.at_genre(target.name)
    p.add(
        "low_mono",
        _ramp(m.low_side_db, target.low_side_db_max, -3.0),
        3.0,
        f"genre: the low end is not mono (side {m.low_side_db:.0f} dB under the mid below 120 Hz)",
    )
    if target.drums != BEATLESS:
        lo, hi = target.bpm
        p.add(
            "tempo_range",
            in_range(bpm, target.bpm, 0.08 * (lo + hi) / 2),
            4.0,
            f"genre: {bpm:.1f} BPM is outside {name}'s {lo:g}–{hi:g}",
        )
    score, reason = _pattern_score(a, pattern, target.drums, name)
    p.add("drums", score, 9.0, reason)
    if target.drums in (FOUR_ON_THE_FLOOR, BOOM_BAP) and a.tempo.bpm > 0:
        p.add(
            "bass_line",
            _ramp(pattern.low_offbeat, 0.45, 0.1),
            5.0,
            f"genre: no bass line moving between the kicks (low off-beat onsets "
            f"{pattern.low_offbeat:.2f} of the on-beat ones, want ≥ 0.45)",
        )
    if target.drums == BOOM_BAP and a.tempo.bpm > 0:
        p.add(
            "swing",
            in_range(pattern.swing, target.swing, 0.04),
            3.0,
            f"genre: {name} wants swung 16ths ({target.swing[0]:.0%}–{target.swing[1]:.0%}); "
            f"measured {pattern.swing:.1%}",
        )
    excess, worst, dev = balance_excess_db(m.balance_db, target)
    closeness = sum(
        min(abs(v - t) / tol, 1.0)
        for v, t, tol in zip(
            m.balance_db, target.balance_db, target.balance_tolerance_db, strict=True
        )
    ) / len(target.balance_db)
    band = OCTAVE_CENTRES_HZ[worst]
    band_name = f"{band / 1000:g} kHz" if band >= 1000 else f"{band:g} Hz"
    p.add(
        "balance",
        1.0 - 0.3 * closeness - excess / 2.5,
        8.0,
        f"genre: tonal balance off {name}'s curve, the {band_name} band is {dev:+.0f} dB "
        f"from it ({excess:.1f} dB outside tolerance on average)",
    )
    p.add(
        "harmonic_rhythm",
        in_range(a.structure.harmonic_change, target.harmonic_change, 0.08),
        4.0,
        f"genre: harmonic rhythm {a.structure.harmonic_change:.2f} is not {name}'s "
        f"({target.harmonic_change[0]:.2f}–{target.harmonic_change[1]:.2f})",
    )
    p.add(
        "pitched",
        _ramp(a.key.tuning_strength, 0.3, 0.1),
        4.0,
        f"genre: no bass, chords or melody to speak of (partial coherence "
        f"{a.key.tuning_strength:.2f})",
    )
    p.add(
        "fullness",
        _ramp(a.fullness, 2.45, 1.9),
        4.0,
        f"genre: a thin arrangement, few notes sound together (chroma entropy "
        f"{a.fullness:.2f} nats where the track is fullest, want ≥ 2.45)",
    )
    p.add(
        "lra",
        in_range(lra_lu, target.lra_lu, 4.0),
        3.0,
        f"genre: loudness range {lra_lu:.1f} LU outside {name}'s {target.lra_lu[0]:g}–"
        f"{target.lra_lu[1]:g}",
    )
    p.add(
        "width",
        in_range(m.width, target.width, 0.15),
        2.0,
        f"genre: stereo width {m.width:.2f} outside {name}'s {target.width[0]:g}–"
        f"{target.width[1]:g}",
    )
    p.add(
        "onsets",
        in_range(m.onsets_per_s, target.onsets_per_s, 2.0),
        3.0,
        f"genre: {m.onsets_per_s:.1f} onsets a second, {name} wants "
        f"{target.onsets_per_s[0]:g}–{target.onsets_per_s[1]:g}",
    )
    return p


def genre_fits(a: MusicalAnalysis, lra_lu: float) -> dict[str, float]:
    """Every genre target's fit to ``a`` (0..1)."""
    return {name: genre_part(a, t, lra_lu).score for name, t in TARGETS.items()}


def judge_genre(a: MusicalAnalysis, genre: str | None, lra_lu: float) -> Part:
    target = TARGETS.get(genre or "")
    if target is None:
        p = Part()
        p.add(
            "low_mono",
            _ramp(a.mix.low_side_db, -15.0, -3.0),
            3.0,
            f"genre: the low end is not mono (side {a.mix.low_side_db:.0f} dB under the mid "
            "below 120 Hz)",
        )
        p.add("lra", in_range(lra_lu, (1.5, 14.0), 6.0), 2.0)
        return p
    p = genre_part(a, target, lra_lu)
    # Identity: the label should be the genre the track fits best; a
    # techno track labelled house loses what techno wins over house.
    fits = genre_fits(a, lra_lu)
    own = fits[target.name]
    other, best = max(((g, f) for g, f in fits.items() if g != target.name), key=lambda gf: gf[1])
    p.identity = _ramp(best - own, -0.04, 0.1)
    if p.identity < REASON_BELOW:
        p.reasons.append(
            f"genre: sounds more like {other.replace('_', ' ')} (fit {best:.2f}) than "
            f"{target.name.replace('_', ' ')} (fit {own:.2f})"
        )
    return p


def judge(
    a: MusicalAnalysis,
    *,
    genre: str | None,
    intended_bpm: float | None,
    label_key: str | None,
    lra_lu: float,
) -> Judgement:
    target = TARGETS.get(genre or "")
    beatless = target is not None and target.drums == BEATLESS
    return Judgement(
        tempo=judge_tempo(a, intended_bpm, beatless),
        key=judge_key(a, label_key),
        structure=judge_structure(a),
        genre=judge_genre(a, genre, lra_lu),
    )
