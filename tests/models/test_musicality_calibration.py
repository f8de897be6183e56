"""Calibration of the score on inputs known to be worse than the generator's
normal output (``models.musicality.calibration``), and the degraded-copy A/B
proxy. ``bench/music.py`` runs the same on 24 tracks of 180 s."""

from __future__ import annotations

from functools import cache

import pytest

from models.generation.procedural import SUPPORTED_GENRES
from models.musicality.calibration import Case, calibration_cases, degraded_pairs, render
from models.scoring import TrackScore, score_audio

DURATION_S = 180.0


def _score(case: Case) -> TrackScore:
    return score_audio(case.audio, case.sample_rate, **case.score_kwargs())  # type: ignore[arg-type]


@cache
def _normal_scores() -> dict[str, TrackScore]:
    """One normal track per genre, 120 s (house with the calibration cases' seed)."""
    out = {}
    for genre in SUPPORTED_GENRES:
        track = render(genre, 7 if genre == "house" else 3, 120.0)
        out[genre] = score_audio(
            track.audio,
            track.sample_rate,
            intended_bpm=track.bpm or None,
            genre=genre,
            musical_key=track.musical_key,
        )
    return out


@cache
def _case_scores() -> dict[str, tuple[Case, TrackScore]]:
    return {c.name: (c, _score(c)) for c in calibration_cases(seed=7, duration_s=DURATION_S)}


def test_normal_tracks_pass_with_room_to_spare() -> None:
    for genre, s in _normal_scores().items():
        assert s.passed, (genre, s.reasons)
        assert s.quality_score >= 60.0, (genre, s.quality_score, s.musical_reasons)


@pytest.mark.parametrize(
    "name",
    [
        "white_noise",
        "one_bar_loop",
        "drums_only",
        "detuned",
        "techno_as_house",
        "clipped",
        "silence",
    ],
)
def test_calibration_case_scores_clearly_below_normal_output_with_the_reason(name: str) -> None:
    case, s = _case_scores()[name]
    floor = min(n.quality_score for n in _normal_scores().values())
    assert s.quality_score < floor - 10.0, (name, s.quality_score, floor)
    reasons = [*s.reasons, *s.musical_reasons]
    assert any(case.expected_reason in r for r in reasons), (name, reasons)


def test_gross_cases_fail_the_gate_with_their_own_reason() -> None:
    scores = _case_scores()
    for name, prefix in (
        ("white_noise", "noise:"),
        ("one_bar_loop", "loop:"),
        ("detuned", "detuned:"),
        ("clipped", "clipping:"),
        ("silence", "silence:"),
    ):
        _, s = scores[name]
        assert not s.passed and any(r.startswith(prefix) for r in s.reasons), (name, s.reasons)


def test_a_mislabelled_genre_is_named() -> None:
    _, s = _case_scores()["techno_as_house"]
    assert any("sounds more like techno" in r for r in s.musical_reasons), s.musical_reasons


@pytest.mark.parametrize("genre", SUPPORTED_GENRES)
def test_the_original_outscores_its_degraded_copies(genre: str) -> None:
    """A/B proxy: one layer muted, and the arrangement flattened to its main
    section, each score below the original (90 s tracks here)."""
    for kind, original, degraded in degraded_pairs(genre, 5, duration_s=90.0):
        so, sd = _score(original), _score(degraded)
        assert so.quality_score > sd.quality_score, (
            genre,
            kind,
            so.quality_score,
            sd.quality_score,
        )
