"""The MP3 mount's encoder: LAME through its C API, every chunk whole
frames that decode alone (the reservoir is off), the tone it was given;
PyAV's encoder as the fallback writes the same kind of stream."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from pathlib import Path

import av
import numpy as np
import pytest

from streaming.errors import StreamingError
from streaming.outputs.base import AudioBlock
from streaming.outputs.lame import LameEncoder, load_lame
from streaming.outputs.mp3 import Mp3Output

from .conftest import dominant_freq

SR = 48000
FRAME_BYTES = 384  # 1152 samples at 128 kbps, 48 kHz: no padding


def tone(seconds: float, freq: float = 440.0) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    noise = np.random.default_rng(0).standard_normal(t.size) * 0.05
    mono = (0.3 * np.sin(2 * np.pi * freq * t) + noise).astype(np.float32)
    return np.stack([mono, mono], axis=1)


def encode_chunks(tmp_path: Path, *, use_pyav: bool) -> tuple[str, list[bytes]]:
    out = Mp3Output(tmp_path, sample_rate=SR, bitrate_kbps=128, use_pyav=use_pyav)
    pcm = tone(6.0)
    for i in range(0, len(pcm), 4800):
        out.write(AudioBlock(pcm[i : i + 4800], i, SR, datetime.now(UTC), "t", "a"))
    out.close()
    return out.encoder, [p.read_bytes() for p in sorted(tmp_path.glob("*.mp3"))]


def decode(data: bytes) -> np.ndarray:
    with av.open(io.BytesIO(data), format="mp3") as c:
        return np.concatenate([f.to_ndarray() for f in c.decode(audio=0)], axis=1).T


@pytest.mark.parametrize("use_pyav", [False, True], ids=["lame", "pyav"])
def test_every_chunk_is_whole_frames_that_decode_alone(tmp_path: Path, use_pyav: bool) -> None:
    encoder, chunks = encode_chunks(tmp_path, use_pyav=use_pyav)
    assert encoder == ("pyav" if use_pyav else "lame")
    assert len(chunks) >= 10
    for chunk in chunks[:-1]:
        assert chunk[:2] == b"\xff\xfb", "a chunk starts on an MPEG-1 layer III sync word"
        assert len(chunk) % FRAME_BYTES == 0, "and holds whole frames"
        assert 0.45 <= len(chunk) * 8 / 128000 <= 0.6
    middle = chunks[len(chunks) // 2]
    pcm = decode(middle)  # joined mid-stream: no earlier frame to borrow bits from
    assert len(pcm) == len(middle) // FRAME_BYTES * 1152
    assert dominant_freq(pcm, SR) == pytest.approx(440.0, abs=5)


def test_lame_loads_from_the_pinned_wheel() -> None:
    lib = load_lame()
    assert lib is not None, "lameenc carries LAME; without it the mount falls back to PyAV"


def test_lame_refuses_a_bitrate_mp3_does_not_have() -> None:
    lib = load_lame()
    assert lib is not None
    with pytest.raises(StreamingError, match=r"1000 kbps .* one of 32, 40, .*, 320 kbps"):
        LameEncoder(lib, sample_rate=SR, bitrate_kbps=1000)
    with pytest.raises(StreamingError, match="one of 32000, 44100, 48000 Hz"):
        LameEncoder(lib, sample_rate=96000, bitrate_kbps=128)
