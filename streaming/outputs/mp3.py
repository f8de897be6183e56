"""The MP3 mount's encoder: one LAME encoder for every listener.

It writes half-second chunks of MP3 frames, with the now-playing text for
ICY metadata, into a rolling folder that each API process tails and fans
out (``streaming.hub``). The bit reservoir is off so that every frame
decodes alone: a listener may join at any chunk without a garbled start.

LAME is called through its C API (``streaming.outputs.lame``: a quarter
of the CPU of PyAV's bundled build); PyAV's encoder is the fallback when
no LAME library loads.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from streaming.outputs.base import AudioBlock, Framer, Output
from streaming.outputs.chunks import ChunkWriter
from streaming.outputs.lame import LameEncoder, load_lame

MP3_FRAME = 1152


class Mp3Output(Output):
    name = "mp3"

    def __init__(
        self,
        directory: Path,
        *,
        sample_rate: int = 48000,
        bitrate_kbps: int = 128,
        chunk_s: float = 0.5,
        keep_chunks: int = 60,
        use_pyav: bool = False,
    ) -> None:
        lib = None if use_pyav else load_lame()
        self._enc: LameEncoder | _PyAvMp3 = (
            LameEncoder(lib, sample_rate=sample_rate, bitrate_kbps=bitrate_kbps)
            if lib is not None
            else _PyAvMp3(sample_rate=sample_rate, bitrate_kbps=bitrate_kbps)
        )
        self.encoder = "lame" if lib is not None else "pyav"
        self.sr, self.kbps = sample_rate, bitrate_kbps
        self._writer = ChunkWriter(directory, ext="mp3", keep=keep_chunks)
        frame_bytes = MP3_FRAME * bitrate_kbps * 125 // sample_rate
        self._chunk_bytes = max(1, int(chunk_s * sample_rate / MP3_FRAME)) * frame_bytes
        self._buf = bytearray()
        self._title = ""
        self._time = 0.0

    def write(self, block: AudioBlock) -> None:
        self._title = block.display_title
        self._time = block.stream_time_s
        self._buf += self._enc.encode(block.pcm)
        # Whole frames come out of LAME at every call: a chunk ends on one.
        if len(self._buf) >= self._chunk_bytes:
            self._flush()

    def _flush(self) -> None:
        if not self._buf:
            return
        data = bytes(self._buf)
        self._writer.write(
            data,
            {
                "title": self._title,
                "sample_rate": self.sr,
                "bitrate_kbps": self.kbps,
                "duration_s": len(data) * 8 / (self.kbps * 1000),
                "stream_time_s": self._time,
            },
        )
        self._buf = bytearray()

    def close(self, *, final: bool = True) -> None:
        if final:
            self._buf += self._enc.flush()
            self._flush()
        self._enc.close()


class _PyAvMp3:
    """FFmpeg's libmp3lame through PyAV, for hosts where no LAME library loads."""

    def __init__(self, *, sample_rate: int, bitrate_kbps: int) -> None:
        enc = av.CodecContext.create("libmp3lame", "w")
        assert isinstance(enc, av.AudioCodecContext)
        enc.sample_rate, enc.layout, enc.format = sample_rate, "stereo", "fltp"
        enc.bit_rate = bitrate_kbps * 1000
        enc.time_base = Fraction(1, sample_rate)
        enc.options = {"reservoir": "0", "compression_level": "5"}
        enc.open()
        self._enc, self.sr = enc, sample_rate
        self._framer = Framer(MP3_FRAME)
        self._frames = 0

    def encode(self, pcm: np.ndarray) -> bytes:
        out: list[bytes] = []
        for planar in self._framer.frames(pcm):
            frame = av.AudioFrame.from_ndarray(planar, format="fltp", layout="stereo")
            frame.sample_rate = self.sr
            frame.pts = self._frames * MP3_FRAME
            self._frames += 1
            out.extend(bytes(p) for p in self._enc.encode(frame))
        return b"".join(out)

    def flush(self) -> bytes:
        return b"".join(bytes(p) for p in self._enc.encode(None))

    def close(self) -> None:
        pass
