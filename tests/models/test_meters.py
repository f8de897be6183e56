"""The gate's independent meters read known signals right and name what is
wrong with a file."""

from __future__ import annotations

import numpy as np
import pytest

from models.audio_io import encode_flac, encode_mp3, encode_wav
from models.errors import AudioDecodeError
from models.meters import FileLimits, check_file, measure_file


def _tone(sample_rate: int, seconds: float, amplitude: float, channels: int = 2) -> np.ndarray:
    n = np.arange(int(sample_rate * seconds))
    tone = amplitude * np.sin(2 * np.pi * 997.0 * n / sample_rate)
    return np.repeat(tone[np.newaxis], channels, axis=0).astype(np.float32)


LIMITS = FileLimits(
    target_lufs=-20.0,
    lufs_tolerance=0.5,
    ceiling_dbtp=-1.0,
    duration_s=5.0,
    duration_tolerance_s=0.1,
)


@pytest.mark.parametrize("sample_rate", [32000, 44100, 48000])
@pytest.mark.parametrize("encode", [encode_flac, encode_wav], ids=["flac", "wav"])
def test_a_stereo_tone_at_minus_20_dbfs_reads_minus_20_lufs(sample_rate: int, encode) -> None:  # type: ignore[no-untyped-def]
    # BS.1770: a 997 Hz sine at 0 dBFS in one channel reads -3.01 LUFS; in
    # both, 0 LUFS.
    m = measure_file(encode(_tone(sample_rate, 5.0, 0.1), sample_rate))
    assert m.lufs_pyloudnorm == pytest.approx(-20.0, abs=0.1)
    assert m.lufs_ffmpeg == pytest.approx(-20.0, abs=0.1)
    assert m.true_peak_dbtp == pytest.approx(-20.0, abs=0.05)
    assert (m.sample_rate, m.channels) == (sample_rate, 2)
    assert m.duration_s == pytest.approx(5.0, abs=1e-3)


def test_an_mp3_decodes_to_its_length_and_level() -> None:
    m = measure_file(encode_mp3(_tone(44100, 5.0, 0.1), 44100))
    assert m.codec.startswith("mp3")  # FFmpeg names its float decoder "mp3float"
    assert m.duration_s == pytest.approx(5.0, abs=0.03)
    assert m.lufs_pyloudnorm == pytest.approx(-20.3, abs=0.3)


def test_a_file_on_its_limits_has_no_problems() -> None:
    _, problems = check_file(encode_flac(_tone(44100, 5.0, 0.1), 44100), what="x", limits=LIMITS)
    assert problems == []


def test_each_miss_is_named_with_its_meter_and_limit() -> None:
    loud = encode_flac(_tone(44100, 4.0, 0.99), 44100)  # 0 LUFS, -0.1 dBTP, 4 s
    m, problems = check_file(loud, what="trk master", limits=LIMITS)
    assert m is not None
    assert problems == [
        f"integrated loudness {m.lufs_pyloudnorm:.2f} LUFS (pyloudnorm) is outside [-20.5, -19.5] LUFS",
        f"true peak {m.true_peak_dbtp:.2f} dBTP (FFmpeg ebur128) is over the -1 dBTP ceiling",
        "decodes to 4.00 s where the row says 5.00 s (±0.1 s allowed)",
    ]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty file"),
        (b"not audio at all " * 64, "FFmpeg cannot decode"),
    ],
    ids=["empty", "garbage"],
)
def test_bytes_that_are_not_audio_raise_a_decode_error_naming_the_file(
    data: bytes, message: str
) -> None:
    with pytest.raises(AudioDecodeError, match=message) as info:
        measure_file(data, what="trk_1 master (flac)")
    assert str(info.value).startswith("trk_1 master (flac): ")
    _, problems = check_file(data, what="trk_1 master (flac)", limits=LIMITS)
    assert len(problems) == 1 and problems[0].startswith("does not decode (")


def test_a_truncated_file_is_a_problem() -> None:
    flac = encode_flac(_tone(44100, 5.0, 0.1), 44100)
    m, problems = check_file(flac[: len(flac) // 2], what="x", limits=LIMITS)
    # FFmpeg refuses the cut frame outright; were it to decode the first
    # half, the length check would name it instead.
    assert problems
    assert (m is None and problems[0].startswith("does not decode (")) or any(
        "where the row says 5.00 s" in p for p in problems
    )
