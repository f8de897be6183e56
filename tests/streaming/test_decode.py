"""Decoding masters: resampling, channel layout, missing and broken files."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from streaming.decode import TrackReader, open_source
from streaming.errors import TrackUnavailableError

from .conftest import SynthTrack, dominant_freq, render


def _flac(path: Path, pcm: np.ndarray, sr: int) -> str:
    sf.write(path, pcm, sr, format="FLAC")
    return str(path)


@pytest.mark.parametrize("source_sr", [32000, 44100, 48000])
@pytest.mark.parametrize("channels", [1, 2])
def test_reads_any_rate_and_layout_as_stereo_at_station_rate(
    tmp_path: Path, source_sr: int, channels: int
) -> None:
    pcm = render(SynthTrack("x", 440.0, duration_s=2.0, sample_rate=source_sr))
    path = _flac(tmp_path / "m.flac", pcm[:, :channels], source_sr)
    reader = TrackReader(path, sample_rate=48000, gain=0.5)
    out = np.concatenate([reader.read(4800) for _ in range(25)])
    assert reader.eof and reader.error is None
    assert out.shape[1] == 2 and abs(len(out) - 96000) <= 64
    assert dominant_freq(out, 48000) == pytest.approx(440.0, abs=3)
    assert np.abs(out).max() == pytest.approx(0.5 * np.abs(pcm).max(), rel=0.05)


def test_leading_silence_is_trimmed(tmp_path: Path) -> None:
    tone = render(SynthTrack("x", 440.0, duration_s=1.0, sample_rate=48000))
    pcm = np.concatenate([np.zeros((48000 * 3, 2), np.float32), tone])
    reader = TrackReader(_flac(tmp_path / "m.flac", pcm, 48000), sample_rate=48000)
    first = reader.read(480)
    assert np.abs(first).max() > 0.01


def test_missing_master_is_unavailable(tmp_path: Path) -> None:
    with pytest.raises(TrackUnavailableError, match="missing"):
        open_source(str(tmp_path / "gone.flac"), None)


def test_garbage_is_unavailable(tmp_path: Path) -> None:
    path = tmp_path / "bad.flac"
    path.write_bytes(b"fLaC" + bytes(range(256)) * 50)
    with pytest.raises(TrackUnavailableError):
        TrackReader(str(path), sample_rate=48000)


def test_silent_master_is_unavailable(tmp_path: Path) -> None:
    path = _flac(tmp_path / "s.flac", np.zeros((48000 * 12, 2), np.float32), 48000)
    with pytest.raises(TrackUnavailableError, match="silence"):
        TrackReader(path, sample_rate=48000)


def test_truncated_master_ends_early_without_raising(tmp_path: Path) -> None:
    buf = io.BytesIO()
    sf.write(
        buf, render(SynthTrack("x", 440.0, duration_s=4.0, sample_rate=48000)), 48000, format="FLAC"
    )
    data = buf.getvalue()
    path = tmp_path / "cut.flac"
    path.write_bytes(data[: len(data) // 2])
    reader = TrackReader(str(path), sample_rate=48000)
    total = 0
    while not reader.eof:
        total += len(reader.read(4800))
    assert 0.5 * 48000 < total < 3.5 * 48000
