"""Loudness, true peak, features and the quality gate, on synthetic signals
with known answers (BS.1770 calibration tones, EBU Tech 3342 cases)."""

from __future__ import annotations

import math
from functools import cache

import numpy as np
import pyloudnorm
import pytest
from scipy import signal

from models.audio_io import encode_flac, encode_wav
from models.loudness import (
    LUFS_FLOOR,
    TRUE_PEAK_FLOOR_DBTP,
    integrated_loudness,
    k_weighting_sos,
    measure_loudness,
    true_peak,
    true_peak_dbtp,
    true_peak_kernel,
)
from models.scoring import (
    SCORER_VERSION,
    ScoreThresholds,
    TrackScore,
    score_audio,
    score_bytes,
)
from sonicforge.tables import TRACK_SCORES
from tests.signals import dance_mix

RATES = (32000, 44100, 48000)
CHANNELS = (1, 2)


def _sine(sample_rate: int, hz: float, seconds: float, *, amplitude: float = 1.0) -> np.ndarray:
    t = np.arange(int(sample_rate * seconds)) / sample_rate
    return (amplitude * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def _fade(x: np.ndarray, sample_rate: int, seconds: float = 0.02) -> np.ndarray:
    n = x.shape[-1]
    ramp = np.minimum(1.0, np.minimum(np.arange(n), np.arange(n)[::-1]) / (seconds * sample_rate))
    return (x * ramp).astype(np.float32)


@cache
def _beat(sample_rate: int, bpm: float, seconds: float, channels: int = 2) -> np.ndarray:
    """Music-like and deterministic (``tests.signals.dance_mix``), peaking at
    -6 dBFS, about -18 LUFS."""
    out = dance_mix(sample_rate, seconds, bpm=bpm, seed=42, hat_gain=0.2)
    out *= 0.5 / np.abs(out).max()
    result = _fade(out[:channels], sample_rate, 0.01)
    result.setflags(write=False)  # cached: a test that edits it must copy
    return result


# --- loudness -------------------------------------------------------------


def test_k_weighting_matches_the_bs1770_table_at_48k() -> None:
    sos = k_weighting_sos(48000)
    np.testing.assert_allclose(
        sos[0], [1.53512485958697, -2.69169618940638, 1.19839281085285, 1.0,
                 -1.69065929318241, 0.73248077421585], atol=1e-9,
    )  # fmt: skip
    np.testing.assert_allclose(
        sos[1], [1.0, -2.0, 1.0, 1.0, -1.99004745483398, 0.99007225036621], atol=1e-9
    )


@pytest.mark.parametrize("sample_rate", RATES)
def test_997_hz_full_scale_in_one_channel_of_stereo_reads_minus_3_01(sample_rate: int) -> None:
    x = np.zeros((2, sample_rate * 5), dtype=np.float32)
    x[0] = _sine(sample_rate, 997.0, 5.0)
    assert integrated_loudness(x, sample_rate) == pytest.approx(-3.01, abs=0.05)


@pytest.mark.parametrize("sample_rate", RATES)
@pytest.mark.parametrize("channels", CHANNELS)
def test_1k_sine_at_minus_20_dbfs(sample_rate: int, channels: int) -> None:
    x = np.repeat(_sine(sample_rate, 1000.0, 5.0, amplitude=0.1)[None], channels, axis=0)
    # -23 LUFS per channel; channels add in power.
    expected = -23.01 + 10 * math.log10(channels)
    assert integrated_loudness(x, sample_rate) == pytest.approx(expected, abs=0.05)


@pytest.mark.parametrize("sample_rate", RATES)
@pytest.mark.parametrize("channels", CHANNELS)
def test_loudness_matches_pyloudnorm_with_the_same_filters(sample_rate: int, channels: int) -> None:
    rng = np.random.default_rng(sample_rate + channels)
    t = np.arange(sample_rate * 12) / sample_rate
    swell = np.where((t % 4) < 2, 1.0, 0.05)  # exercises both gates
    x = (0.1 * rng.standard_normal((channels, t.size)) * swell).astype(np.float32)
    x[0] += _sine(sample_rate, 997.0, 12.0, amplitude=0.2)
    reference = pyloudnorm.Meter(sample_rate, filter_class="DeMan").integrated_loudness(
        x.T.astype(np.float64)
    )
    assert integrated_loudness(x, sample_rate) == pytest.approx(reference, abs=0.01)


def test_absolute_gate_ignores_silence() -> None:
    tone = _sine(48000, 997.0, 10.0, amplitude=0.1)
    with_silence = np.concatenate([tone, np.zeros_like(tone)])[None]
    # Ungated, half silence would read 3 LU lower; only the three blocks
    # straddling the edge still count.
    assert integrated_loudness(with_silence, 48000) == pytest.approx(
        integrated_loudness(tone[None], 48000), abs=0.1
    )


def test_relative_gate_ignores_passages_20_db_down() -> None:
    loud = _sine(48000, 997.0, 10.0, amplitude=0.1)
    quiet = _sine(48000, 997.0, 10.0, amplitude=0.01)
    both = np.concatenate([loud, quiet])[None]
    # Ungated, the quiet half would pull the reading down by 2.6 LU.
    assert integrated_loudness(both, 48000) == pytest.approx(-23.01, abs=0.1)


@pytest.mark.parametrize("sample_rate", RATES)
def test_loudness_range_of_tech_3342_case_1(sample_rate: int) -> None:
    """EBU Tech 3342 case 1: 20 s at -20 LUFS then 20 s at -30 LUFS: LRA 10 ± 1."""
    part = _sine(sample_rate, 1000.0, 20.0)
    gain20, gain30 = 10 ** ((-20 + 3.01) / 20), 10 ** ((-30 + 3.01) / 20)
    mono = np.concatenate([part * gain20, part * gain30])
    x = np.stack([mono, mono]) / math.sqrt(2.0)  # stereo, same total loudness
    assert measure_loudness(x, sample_rate).loudness_range_lu == pytest.approx(10.0, abs=1.0)


def test_steady_tone_has_no_loudness_range() -> None:
    x = _sine(44100, 1000.0, 10.0, amplitude=0.1)[None]
    assert measure_loudness(x, 44100).loudness_range_lu == pytest.approx(0.0, abs=0.1)


def test_silence_and_tiny_input_read_as_floors() -> None:
    silent = np.zeros((2, 44100 * 3), dtype=np.float32)
    assert integrated_loudness(silent, 44100) == LUFS_FLOOR
    assert true_peak_dbtp(silent) == TRUE_PEAK_FLOOR_DBTP
    assert integrated_loudness(np.full((1, 1000), 0.5, np.float32), 44100) == LUFS_FLOOR


# --- true peak ------------------------------------------------------------


@pytest.mark.parametrize("sample_rate", RATES)
def test_inter_sample_peak_of_a_quarter_rate_sine_at_45_degrees(sample_rate: int) -> None:
    """Samples of sin(pi/2 n + pi/4) sit at ±0.707: the sample peak reads
    -3.01 dBFS, the waveform between them reaches 0 dBTP."""
    n = np.arange(sample_rate)
    x = _fade(np.sin(np.pi / 2 * n + np.pi / 4)[None], sample_rate, 0.05)
    sample_peak_db = 20 * math.log10(float(np.abs(x).max()))
    assert sample_peak_db == pytest.approx(-3.01, abs=0.01)
    assert true_peak_dbtp(x) == pytest.approx(0.0, abs=0.05)
    assert true_peak_dbtp(x) > sample_peak_db + 2.9


@pytest.mark.parametrize("channels", CHANNELS)
def test_true_peak_equals_a_4x_polyphase_resampler(channels: int) -> None:
    rng = np.random.default_rng(5)
    x = (0.2 * rng.standard_normal((channels, 48000 + 7))).astype(np.float32)
    reference = np.abs(signal.upfirdn(true_peak_kernel(), x.astype(np.float64), 4, 1, axis=-1))
    assert true_peak(x) == pytest.approx(float(reference.max()), rel=1e-5)
    assert true_peak(x) >= float(np.abs(x).max())  # never below the sample peak


# --- the score ------------------------------------------------------------


def _assert_finite(score: TrackScore) -> None:
    for name, value in score.to_row().items():
        if isinstance(value, float):
            assert math.isfinite(value), f"{name} is {value}"


@pytest.mark.parametrize("sample_rate", RATES)
@pytest.mark.parametrize("channels", CHANNELS)
def test_clean_music_passes(sample_rate: int, channels: int) -> None:
    x = _beat(sample_rate, 128.0, 12.0, channels)
    score = score_audio(x, sample_rate, intended_bpm=128.0, expected_duration_s=12.0)
    assert score.passed, score.reasons
    assert score.reasons == []
    assert score.quality_score >= 55.0  # no genre or key labelled: those parts read neutral
    assert score.tempo_bpm_est == pytest.approx(128.0, rel=0.01)
    assert score.clipping_ratio == 0.0 and score.silence_ratio == 0.0
    assert score.true_peak_dbtp >= 20 * math.log10(float(np.abs(x).max())) - 1e-3
    assert 100.0 < score.spectral_centroid_hz < 2000.0
    assert score.duration_s == pytest.approx(12.0)
    _assert_finite(score)


def test_row_matches_the_track_scores_contract() -> None:
    row = score_audio(_beat(44100, 128.0, 6.0), 44100, intended_bpm=128.0).to_row()
    stamped = {"track_id", "batch_id", "scorer_version", "scored_at"}
    assert set(row) == set(TRACK_SCORES.columns) - stamped
    assert isinstance(row["reasons"], list)
    assert SCORER_VERSION


def test_digital_silence_fails_with_finite_figures() -> None:
    score = score_audio(np.zeros((2, 44100 * 5), np.float32), 44100, intended_bpm=None)
    assert not score.passed
    assert any(r.startswith("silence:") for r in score.reasons)
    assert any(r.startswith("too quiet:") for r in score.reasons)
    assert score.integrated_lufs == LUFS_FLOOR and score.silence_ratio == 1.0
    _assert_finite(score)


def test_mostly_silent_track_fails_on_the_silence_ratio() -> None:
    x = _beat(44100, 128.0, 10.0).copy()
    x[:, 44100 * 4 :] = 0.0  # 60 % digital silence
    score = score_audio(x, 44100, intended_bpm=None)
    assert score.silence_ratio == pytest.approx(0.6, abs=0.02)
    assert any(r.startswith("silence: 60") for r in score.reasons)


def test_hard_clipping_fails_and_scores_lower() -> None:
    clean = _beat(44100, 128.0, 8.0)
    clipped = np.clip(clean * 6.0, -1.0, 1.0)
    score = score_audio(clipped, 44100, intended_bpm=128.0)
    assert not score.passed
    assert score.clipping_ratio > 0.001
    assert any(r.startswith("clipping:") and "allowed ≤ 0.1%" in r for r in score.reasons)
    assert score.quality_score < score_audio(clean, 44100, intended_bpm=128.0).quality_score


def test_a_full_scale_sine_touching_0dbfs_is_not_clipping() -> None:
    x = _sine(44100, 1000.0, 5.0)[None]  # single samples reach 0.999 each cycle
    assert score_audio(x, 44100, intended_bpm=None).clipping_ratio == 0.0


def test_nan_and_inf_are_counted_then_zeroed() -> None:
    x = _beat(44100, 128.0, 8.0).copy()
    x[0, 1000:1100] = np.nan
    x[1, 5000] = np.inf
    score = score_audio(x, 44100, intended_bpm=128.0)
    assert not score.passed
    assert score.nonfinite_ratio == pytest.approx(101 / x.size)
    assert any(r.startswith("non-finite samples:") for r in score.reasons)
    _assert_finite(score)
    assert score.integrated_lufs > -30.0  # the rest was still measured


def test_dc_offset_fails() -> None:
    x = _beat(44100, 128.0, 8.0) + np.float32(0.05)
    score = score_audio(x, 44100, intended_bpm=128.0)
    assert score.dc_offset == pytest.approx(0.05, abs=0.005)
    assert any(r.startswith("DC offset: +0.05") for r in score.reasons)


@pytest.mark.parametrize("bpm", [72.0, 128.0, 140.0, 174.0])
@pytest.mark.parametrize("sample_rate", RATES)
def test_tempo_is_measured_within_one_percent(bpm: float, sample_rate: int) -> None:
    score = score_audio(_beat(sample_rate, bpm, 15.0), sample_rate, intended_bpm=bpm)
    assert score.tempo_error < 0.01, score.tempo_bpm_est
    assert not any(r.startswith("tempo") for r in score.reasons)


def test_wrong_tempo_fails_and_right_tempo_passes() -> None:
    x = _beat(44100, 120.0, 15.0)
    wrong = score_audio(x, 44100, intended_bpm=170.0)
    assert not wrong.passed
    assert wrong.tempo_error > 0.25
    assert any(r.startswith("tempo: measured") and "170.0 BPM intended" in r for r in wrong.reasons)
    right = score_audio(x, 44100, intended_bpm=120.0)
    assert right.passed, right.reasons
    assert right.tempo_error < 0.01


def test_tempo_is_blind_to_the_intended_bpm_and_compared_by_octave() -> None:
    """The estimate never moves towards the label; a half- or double-time
    reading is no error (octave equivalence), a wrong tempo is."""
    fast = _beat(44100, 174.0, 15.0)
    readings = {
        intended: score_audio(fast, 44100, intended_bpm=intended) for intended in (87.0, 174.0)
    }
    estimates = {s.tempo_bpm_est for s in readings.values()}
    assert len(estimates) == 1, estimates  # the same whatever was intended
    (estimate,) = estimates
    assert min(abs(estimate - b) / b for b in (87.0, 174.0)) < 0.01
    assert all(s.tempo_error < 0.01 for s in readings.values())
    wrong = score_audio(fast, 44100, intended_bpm=128.0)
    assert wrong.tempo_bpm_est == estimate and wrong.tempo_error > 0.25
    assert any("at the nearest octave" in r for r in wrong.reasons)


@pytest.mark.parametrize("intended", [None, 0.0])
def test_beatless_tracks_skip_the_tempo_check(intended: float | None) -> None:
    x = _beat(44100, 120.0, 8.0)
    score = score_audio(x, 44100, intended_bpm=intended)
    assert score.tempo_error == 0.0
    assert score.tempo_bpm_est == pytest.approx(120.0, rel=0.01)  # still measured
    assert not any(r.startswith("tempo") for r in score.reasons)


def test_no_beat_with_an_intended_tempo_fails() -> None:
    pad = np.stack([_sine(44100, 220.0, 8.0, amplitude=0.3)] * 2)
    score = score_audio(pad, 44100, intended_bpm=120.0)
    assert not score.passed
    assert any(r.startswith("tempo:") for r in score.reasons)


def test_truncated_track_fails() -> None:
    score = score_audio(
        _beat(44100, 128.0, 8.0), 44100, intended_bpm=128.0, expected_duration_s=30.0
    )
    assert any(r.startswith("truncated: 8.0 s") for r in score.reasons)
    ok = score_audio(_beat(44100, 128.0, 8.0), 44100, intended_bpm=128.0, expected_duration_s=8.5)
    assert ok.passed, ok.reasons


def test_phase_inverted_stereo_fails() -> None:
    x = _beat(44100, 128.0, 8.0, 1)
    score = score_audio(np.concatenate([x, -x]), 44100, intended_bpm=128.0)
    assert score.stereo_correlation == pytest.approx(-1.0, abs=1e-4)
    assert any(r.startswith("phase:") for r in score.reasons)


def test_mono_reads_as_fully_correlated() -> None:
    score = score_audio(_beat(44100, 128.0, 6.0, 1), 44100, intended_bpm=128.0)
    assert score.stereo_correlation == 1.0


def test_white_noise_scores_below_music() -> None:
    noise = np.random.default_rng(3).standard_normal((2, 44100 * 8)).astype(np.float32) * 0.1
    music = score_audio(_beat(44100, 128.0, 8.0), 44100, intended_bpm=None)
    hiss = score_audio(noise, 44100, intended_bpm=None)
    assert hiss.spectral_flatness > 0.4 > music.spectral_flatness
    assert hiss.spectral_centroid_hz > 5000.0
    assert hiss.quality_score < music.quality_score - 20.0
    # Noise never reaches the air, even without an intended tempo to miss.
    assert music.passed and not hiss.passed
    assert any(r.startswith("noise: spectral flatness") for r in hiss.reasons)


def test_quality_gate_uses_the_thresholds() -> None:
    strict = ScoreThresholds(min_quality_score=99.9)
    score = score_audio(_beat(44100, 128.0, 6.0), 44100, intended_bpm=128.0, thresholds=strict)
    assert not score.passed
    assert score.reasons == [f"quality score {score.quality_score:.1f} (allowed ≥ 99.9)"]


def test_thresholds_weights_must_sum_to_100() -> None:
    with pytest.raises(ValueError, match="sum to 100"):
        ScoreThresholds(w_tempo=50.0)


def test_negative_intended_bpm_is_refused() -> None:
    with pytest.raises(ValueError, match="intended_bpm"):
        score_audio(_beat(44100, 128.0, 2.0), 44100, intended_bpm=-120.0)


# --- bytes ----------------------------------------------------------------


def test_score_bytes_equals_score_audio_on_lossless_data() -> None:
    x = _beat(48000, 128.0, 8.0)
    from_bytes = score_bytes(encode_wav(x, 48000, bit_depth=32), intended_bpm=128.0)
    direct = score_audio(x, 48000, intended_bpm=128.0)
    assert from_bytes == direct


@pytest.mark.parametrize(
    "mangle",
    [lambda d: d[: len(d) // 2], lambda d: d[:64], lambda d: b"", lambda d: b"not audio" * 99],
    ids=["truncated", "header-only", "empty", "garbage"],
)
def test_undecodable_bytes_give_a_failed_score_not_an_exception(mangle: object) -> None:
    data = mangle(encode_flac(_beat(44100, 128.0, 4.0), 44100))  # type: ignore[operator]
    score = score_bytes(data, intended_bpm=128.0, expected_duration_s=4.0)
    assert not score.passed
    assert len(score.reasons) == 1
    assert score.reasons[0].startswith("corrupt or truncated audio: ")
    assert score.quality_score == 0.0
    assert score.integrated_lufs == LUFS_FLOOR
    _assert_finite(score)


def test_empty_array_gives_a_failed_score() -> None:
    score = score_audio(np.zeros((2, 0), np.float32), 44100, intended_bpm=None)
    assert not score.passed and score.reasons == ["empty audio: 0 samples"]


# --- rotation -------------------------------------------------------------


def test_rotation_weight_follows_the_score() -> None:
    from models.pipeline import rotation_weight

    weights = [rotation_weight(q) for q in (0.0, 50.0, 80.0, 85.0, 89.0, 95.0, 100.0)]
    assert weights == sorted(weights) and len(set(weights[1:])) == len(weights) - 1
    assert rotation_weight(89.0) == pytest.approx(2.0 * rotation_weight(85.0))
    assert rotation_weight(0.0) > 0.0  # every passing track keeps a chance
    assert rotation_weight(150.0) == rotation_weight(100.0)


def test_the_90th_percentile_airs_twice_as_often_as_the_10th_over_a_day() -> None:
    """A simulated day through the streamer's scheduler (weighted picks, no
    repeat within an hour): 100 three-minute tracks whose scores spread as a
    normal batch does (bench/music.py: std ~6 around 85)."""
    import random
    from datetime import UTC, datetime

    from models.pipeline import rotation_weight
    from sonicforge.station import InMemoryStationState
    from streaming.catalog import TrackInfo
    from streaming.clock import VirtualClock
    from streaming.scheduler import Scheduler

    rng = random.Random(4)
    scores = sorted(min(max(rng.gauss(85.0, 6.0), 50.0), 100.0) for _ in range(100))
    tracks = [
        TrackInfo(f"t{i}", "", 180.0, "house", "", "", weight=rotation_weight(q), quality_score=q)
        for i, q in enumerate(scores)
    ]

    class Catalog:
        def rotation(self) -> list[TrackInfo]:
            return tracks

        def fallback(self) -> list[TrackInfo]:
            return []

        def lookup(self, track_id: str) -> TrackInfo | None:
            return None

    plays: dict[str, int] = {t.track_id: 0 for t in tracks}
    for day in range(3):
        clock = VirtualClock(datetime(2026, 1, 1 + day, tzinfo=UTC))
        sched = Scheduler(
            Catalog(), InMemoryStationState(clock=clock), clock=clock, rng=random.Random(day)
        )
        for _ in range(24 * 20):  # a day of 3-minute tracks
            pick = sched.next()
            assert pick is not None and pick.source == "rotation"
            plays[pick.track.track_id] += 1
            sched.record_start(pick.track.track_id)
            clock.advance(180.0)
    low = [plays[t.track_id] for t in tracks[5:15]]  # around the 10th percentile
    high = [plays[t.track_id] for t in tracks[85:95]]  # around the 90th
    assert sum(high) >= 2.0 * sum(low), (sum(high), sum(low))
