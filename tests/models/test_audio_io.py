"""Encoders and the strict decoder in models.audio_io, on synthetic signals."""

from __future__ import annotations

from functools import cache

import numpy as np
import pytest

from models.audio_io import (
    as_float32_audio,
    decode_audio,
    encode_flac,
    encode_mp3,
    encode_wav,
    sha256_hex,
)
from models.errors import AudioDecodeError, ModelsError
from models.loudness import integrated_loudness

RATES = (32000, 44100, 48000)
CHANNELS = (1, 2)


@cache
def _tone_and_noise(sample_rate: int, channels: int, seconds: float = 3.0) -> np.ndarray:
    """A 440 Hz tone (a different phase per channel) over seeded noise, with
    50 ms fades so nothing starts on a step."""
    n = int(sample_rate * seconds)
    t = np.arange(n) / sample_rate
    rng = np.random.default_rng(1234)
    x = 0.3 * np.sin(2 * np.pi * 440.0 * t + np.arange(channels)[:, None])
    x += 0.05 * rng.standard_normal((channels, n))
    x *= np.minimum(1.0, np.minimum(t, t[::-1]) / 0.05)
    out = x.astype(np.float32)
    out.setflags(write=False)  # cached: a test that edits it must copy
    return out


@pytest.mark.parametrize("sample_rate", RATES)
@pytest.mark.parametrize("channels", CHANNELS)
@pytest.mark.parametrize("bit_depth", [16, 24])
def test_flac_round_trip_is_lossless_to_one_lsb(
    sample_rate: int, channels: int, bit_depth: int
) -> None:
    x = _tone_and_noise(sample_rate, channels)
    y, rate = decode_audio(encode_flac(x, sample_rate, bit_depth=bit_depth))  # type: ignore[arg-type]
    assert rate == sample_rate
    assert y.dtype == np.float32 and y.shape == x.shape and y.flags.c_contiguous
    assert np.abs(y - x).max() <= 1.0 / 2 ** (bit_depth - 1)


@pytest.mark.parametrize("sample_rate", RATES)
@pytest.mark.parametrize("channels", CHANNELS)
@pytest.mark.parametrize("bit_depth", [16, 24, 32])
def test_wav_round_trip(sample_rate: int, channels: int, bit_depth: int) -> None:
    x = _tone_and_noise(sample_rate, channels)
    y, rate = decode_audio(encode_wav(x, sample_rate, bit_depth=bit_depth), format_hint="wav")  # type: ignore[arg-type]
    assert rate == sample_rate and y.shape == x.shape
    if bit_depth == 32:
        np.testing.assert_array_equal(y, x)
    else:
        assert np.abs(y - x).max() <= 1.0 / 2 ** (bit_depth - 1)


@pytest.mark.parametrize("sample_rate", RATES)
@pytest.mark.parametrize("channels", CHANNELS)
def test_mp3_round_trip_keeps_length_alignment_and_loudness(
    sample_rate: int, channels: int
) -> None:
    x = _tone_and_noise(sample_rate, channels)
    data = encode_mp3(x, sample_rate, bitrate_kbps=192)
    y, rate = decode_audio(data, format_hint="mp3")
    assert rate == sample_rate and y.shape == x.shape  # encoder delay and padding trimmed
    # About 192 kbit/s of constant bitrate.
    assert 0.9 < len(data) * 8 / (x.shape[1] / sample_rate) / 192_000 < 1.15
    for c in range(channels):
        assert np.corrcoef(x[c], y[c])[0, 1] > 0.98  # aligned at lag 0
    # LAME's low-pass removes some of the noise's top octave: a few tenths of an LU.
    assert abs(integrated_loudness(y, rate) - integrated_loudness(x, sample_rate)) < 0.5


def test_mono_1d_input_is_accepted() -> None:
    x = _tone_and_noise(44100, 1)[0]
    y, _ = decode_audio(encode_flac(x, 44100))
    assert y.shape == (1, x.shape[0])


def test_pcm_encoders_clip_overs_instead_of_wrapping() -> None:
    x = np.array([[0.0, 1.5, -1.5, 0.5] * 1000], dtype=np.float32)
    for data in (encode_flac(x, 44100), encode_wav(x, 44100, bit_depth=16)):
        y, _ = decode_audio(data)
        assert y.max() == pytest.approx(1.0, abs=1e-4)
        assert y.min() == pytest.approx(-1.0, abs=1e-4)
        assert y[0, 1] > 0.99 and y[0, 2] < -0.99  # not wrapped to the other sign


def test_float_wav_keeps_overs() -> None:
    x = np.array([[0.0, 1.5, -1.5, 0.5] * 1000], dtype=np.float32)
    y, _ = decode_audio(encode_wav(x, 44100, bit_depth=32))
    np.testing.assert_array_equal(y, x)


@pytest.mark.parametrize("encode", [encode_flac, encode_wav, encode_mp3])
def test_encoders_refuse_nonfinite_audio(encode: object) -> None:
    x = _tone_and_noise(44100, 2).copy()
    x[1, 100] = np.nan
    with pytest.raises(ValueError, match="NaN or inf"):
        encode(x, 44100)  # type: ignore[operator]


def test_samples_by_channels_layout_is_refused_with_a_hint() -> None:
    with pytest.raises(ValueError, match="transpose"):
        as_float32_audio(np.zeros((44100, 2), dtype=np.float32))
    with pytest.raises(ValueError, match="floating point"):
        as_float32_audio(np.zeros((2, 100), dtype=np.int16))


def test_mp3_options_are_validated() -> None:
    x = _tone_and_noise(44100, 2)
    with pytest.raises(ValueError, match="bitrate_kbps"):
        encode_mp3(x, 44100, bitrate_kbps=100)
    with pytest.raises(ValueError, match="sample_rate"):
        encode_mp3(x, 44000)


@cache
def _encoded(fmt: str) -> bytes:
    x = _tone_and_noise(44100, 2)
    if fmt == "wav":
        return encode_wav(x, 44100)
    if fmt == "flac":
        return encode_flac(x, 44100)
    return encode_mp3(x, 44100)


def _bad_bytes(kind: str, fmt: str) -> bytes:
    data = _encoded(fmt)
    if kind == "half":
        return data[: len(data) // 2]
    if kind == "header-only":
        return data[:40]
    if kind == "garbage-after-header":
        return data[:200] + np.random.default_rng(7).integers(0, 256, 20_000, np.uint8).tobytes()
    raise AssertionError(kind)


@pytest.mark.parametrize("fmt", ["wav", "flac", "mp3"])
@pytest.mark.parametrize("kind", ["half", "header-only", "garbage-after-header"])
def test_truncated_or_corrupt_bytes_raise_audio_decode_error(fmt: str, kind: str) -> None:
    with pytest.raises(AudioDecodeError) as info:
        decode_audio(_bad_bytes(kind, fmt), format_hint=fmt)
    assert isinstance(info.value, ModelsError)
    message = str(info.value)
    assert "truncated" in message or "corrupt" in message
    assert fmt.upper() in message


@pytest.mark.parametrize(
    "data", [b"", b"hello world" * 50, bytes(4096)], ids=["empty", "text", "zeros"]
)
def test_non_audio_bytes_raise_audio_decode_error(data: bytes) -> None:
    with pytest.raises(AudioDecodeError, match=r"empty|corrupt"):
        decode_audio(data)


def test_a_file_with_no_frames_is_an_error() -> None:
    with pytest.raises(AudioDecodeError, match="no audio frames"):
        decode_audio(encode_wav(np.zeros((2, 0), dtype=np.float32), 44100))


def test_sha256_hex_known_vector() -> None:
    assert sha256_hex(b"abc") == (
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    )
