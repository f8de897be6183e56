"""The musical analysis on synthetic signals with known answers: tempo
(blind, octave-equivalent), key and tuning, form and loops, drum patterns."""

from __future__ import annotations

from functools import cache

import numpy as np
import pytest

from models.features import spectral_features
from models.musicality import analyse
from models.musicality.genre import in_range
from models.musicality.rhythm import analyse_pattern
from models.musicality.tempo import at_octave, estimate_tempo, octave_equivalent_error
from models.musicality.tonal import chromagram, estimate_key, fine_spectrogram, tuning
from tests.signals import dance_mix

SR = 22050


def _kick(n: int) -> np.ndarray:
    t = np.arange(n) / SR
    return np.sin(2 * np.pi * (50 * t + 2.0 * (1 - np.exp(-t / 0.03)))) * np.exp(-t / 0.08)


def _hit(n: int, rng: np.random.Generator, hp: bool) -> np.ndarray:
    x = rng.standard_normal(n) * np.exp(-np.arange(n) / (0.01 * SR))
    return np.diff(x, prepend=0.0) if hp else x


def _drums(
    bpm: float, seconds: float, kick_steps: tuple[int, ...], *, swing: float = 0.5
) -> np.ndarray:
    """A one-bar pattern (16 steps) of kicks on ``kick_steps``, a snare on 4
    and 12 and hats on every 16th, the odd 16ths delayed by ``swing``."""
    rng = np.random.default_rng(1)
    n = int(seconds * SR)
    out = np.zeros(n)
    step = 60.0 / bpm / 4.0
    kick, snare, hat = (
        _kick(int(0.3 * SR)),
        _hit(int(0.15 * SR), rng, False),
        _hit(int(0.04 * SR), rng, True),
    )
    bar = 0
    while bar * 16 * step < seconds:
        for s in range(16):
            t = (bar * 16 + s) * step + ((swing - 0.5) * 2 * step if s % 2 else 0.0)
            i = int(t * SR)
            for sound, on, gain in (
                (kick, s in kick_steps, 0.9),
                (snare, s in (4, 12), 0.4),
                (hat, True, 0.15 if s % 2 else 0.25),
            ):
                if on and i < n:
                    piece = sound[: n - i]
                    out[i : i + piece.size] += gain * piece
        bar += 1
    return np.stack([out, out]).astype(np.float32)


def _tones(midis: list[int], seconds: float, *, cents: float = 0.0) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    x = sum(
        np.sin(2 * np.pi * 440.0 * 2 ** ((m - 69 + cents / 100) / 12) * t) / (1 + 0.3 * k)
        for k, m in enumerate(midis)
    )
    return x * 0.2


def _progression(
    chords: list[list[int]], bar_s: float, seconds: float, *, cents: float = 0.0
) -> np.ndarray:
    n = int(seconds * SR)
    out = np.zeros(n)
    per = int(bar_s * SR)
    for i, start in enumerate(range(0, n, per)):
        seg = _tones(chords[i % len(chords)], bar_s, cents=cents)
        out[start : start + per] += seg[: n - start]
    return np.stack([out, out]).astype(np.float32)


C_MAJOR = [[60, 64, 67, 48], [65, 69, 72, 53], [67, 71, 74, 55], [60, 64, 67, 48]]


# --- tempo ------------------------------------------------------------------


@pytest.mark.parametrize("bpm", [72.0, 128.0, 140.0, 174.0])
def test_blind_tempo_is_the_beat_or_an_octave_of_it(bpm: float) -> None:
    x = dance_mix(SR, 20.0, bpm=bpm).astype(np.float32)
    est = estimate_tempo(spectral_features(x, SR))
    err, factor = octave_equivalent_error(est.bpm, bpm)
    assert err < 0.01, (est.bpm, bpm)
    assert factor in (0.5, 1.0, 2.0)
    assert est.confidence > 0.8 and est.stability == 1.0


def test_no_beat_reads_zero_with_no_confidence() -> None:
    pad = _progression(C_MAJOR, 4.0, 20.0)
    est = estimate_tempo(spectral_features(pad, SR))
    assert est.bpm == 0.0 and est.confidence == 0.0


def test_octave_equivalence_is_explicit() -> None:
    assert octave_equivalent_error(87.0, 174.0) == (0.0, 2.0)
    assert octave_equivalent_error(348.0, 174.0) == (0.0, 0.5)
    err, _ = octave_equivalent_error(120.0, 170.0)
    assert err == pytest.approx(50 / 170)  # wrong under every octave
    assert octave_equivalent_error(0.0, 120.0) == (1.0, 1.0)
    assert at_octave(87.0, 170.0, 176.0) == 174.0
    assert at_octave(156.0, 70.0, 90.0) == 78.0


# --- key and tuning ----------------------------------------------------------


def test_key_of_a_c_major_progression() -> None:
    x = _progression(C_MAJOR, 2.0, 24.0)
    spec = fine_spectrogram(x, SR)
    key = estimate_key(chromagram(spec), spec, label="C major")
    assert key.key == "C major"
    assert key.label_relation == "same"
    assert key.scale_fit > 0.9 and key.scale_rank == pytest.approx(1.0)
    assert abs(key.tuning_cents) < 5
    relative = estimate_key(chromagram(spec), spec, label="A minor")
    assert relative.label_relation == "relative"
    assert estimate_key(chromagram(spec), spec, label="F# major").label_relation == "other"


def test_a_quarter_tone_detune_is_measured() -> None:
    x = _progression(C_MAJOR, 2.0, 24.0, cents=50.0)
    cents, strength = tuning(fine_spectrogram(x, SR))
    assert abs(abs(cents) - 50.0) < 6.0 and strength > 0.5
    x = _progression(C_MAJOR, 2.0, 24.0, cents=-20.0)
    cents, _ = tuning(fine_spectrogram(x, SR))
    assert cents == pytest.approx(-20.0, abs=4.0)


# --- structure -----------------------------------------------------------------


@cache
def _sections() -> np.ndarray:
    """A (pads) B (drums and other chords) A B, 20 s each."""
    a = _progression(C_MAJOR, 2.0, 20.0)
    b = _drums(124.0, 20.0, (0, 4, 8, 12)) + 0.6 * _progression(
        [[57, 60, 64, 45], [62, 65, 69, 50]], 2.0, 20.0
    )
    return np.concatenate([a, b, a, b], axis=1)


def test_sections_are_found_where_they_change() -> None:
    x = _sections()
    st = analyse(x, SR, spectral_features(x, SR), genre=None, label_key=None).structure
    for change in (20.0, 40.0, 60.0):
        assert any(abs(b - change) < 3.0 for b in st.boundaries_s), st.boundaries_s
    assert st.contrast > 0.2  # produced tracks' clearest turns read 0.25-0.35
    assert st.recurrence > 0.8  # A and B both come back
    assert st.loop_share < 0.5


def test_a_literal_loop_is_one_loop() -> None:
    bar = _drums(124.0, 60.0 / 124.0 * 4, (0, 4, 8, 12)) + 0.5 * _progression(
        [[60, 64, 67]], 2.0, 60.0 / 124.0 * 4
    )
    x = np.ascontiguousarray(np.tile(bar, (1, 30)))
    st = analyse(x, SR, spectral_features(x, SR), genre="house", label_key=None).structure
    assert st.loop_share > 0.9
    assert st.loop_s == pytest.approx(60.0 / 124.0 * 4, abs=0.02)
    assert st.sections == 1 and st.contrast < 0.1


# --- drum patterns ----------------------------------------------------------------


def _pattern(x: np.ndarray, bpm: float) -> object:
    sp = spectral_features(x, SR)
    return analyse_pattern(sp.band_onsets, sp.frames_per_s, bpm)


def test_four_on_the_floor_and_two_step_are_told_apart() -> None:
    four = _pattern(_drums(126.0, 30.0, (0, 4, 8, 12)), 126.0)
    two = _pattern(_drums(174.0, 30.0, (0, 10)), 174.0)
    assert four.kick_every_beat > 0.9  # type: ignore[attr-defined]
    assert two.kick_every_beat < 0.5  # type: ignore[attr-defined]
    assert two.backbeat > 0.3  # type: ignore[attr-defined]


@pytest.mark.parametrize("swing", [0.5, 0.58, 0.62])
def test_swing_is_measured(swing: float) -> None:
    pattern = _pattern(_drums(84.0, 40.0, (0, 10), swing=swing), 84.0)
    assert pattern.swing == pytest.approx(swing, abs=0.025)  # type: ignore[attr-defined]


def test_in_range_peaks_at_the_centre_and_falls_outside() -> None:
    assert in_range(5.0, (0.0, 10.0), 2.0) == 1.0
    assert in_range(10.0, (0.0, 10.0), 2.0) == pytest.approx(0.6)
    assert in_range(11.0, (0.0, 10.0), 2.0) == pytest.approx(0.3)
    assert in_range(12.5, (0.0, 10.0), 2.0) == 0.0


# --- sonicforge inspect ---------------------------------------------------------


def test_inspect_writes_the_three_pictures_with_the_score(tmp_path: object) -> None:
    from pathlib import Path

    from cli.inspect import inspect_audio
    from cli.main import main

    x = _sections()
    out = Path(str(tmp_path))
    files = inspect_audio(
        x,
        SR,
        {"track_id": "trk_test", "genre": "house", "bpm": 124.0, "musical_key": "C major"},
        out,
    )
    names = sorted(p.name for p in files)
    assert names == [
        "trk_test-chromagram.png",
        "trk_test-score.txt",
        "trk_test-similarity.png",
        "trk_test-spectrogram.png",
    ]
    for p in files:
        if p.suffix == ".png":
            assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and p.stat().st_size > 10_000
    text = (out / "trk_test-score.txt").read_text()
    assert "quality_score:" in text and "musical_reasons:" in text
    # The CLI refuses a missing file with a clear message, exit status 2.
    assert main(["inspect", "--file", str(out / "nope.flac"), "--out", str(out)]) == 2
