"""Independent meters for the quality gates: measure a stored file again.

Mastering measures with ``models.loudness``; a gate that trusted the same
code would agree with it by construction. These decode the stored bytes
with FFmpeg (PyAV), read integrated loudness with pyloudnorm and with
FFmpeg's ``ebur128`` filter, and true peak with ``ebur128`` (``peak=true``:
FFmpeg's resampler at 192 kHz), none of which share code with mastering.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass

import numpy as np

from models.errors import AudioDecodeError

#: Shortest audio pyloudnorm can gate (one 400 ms block).
_MIN_SECONDS = 0.4


@dataclass(frozen=True)
class FileMeasurement:
    """What the independent meters read on one stored file."""

    codec: str
    sample_rate: int
    channels: int
    duration_s: float
    lufs_pyloudnorm: float
    lufs_ffmpeg: float
    true_peak_dbtp: float  # FFmpeg ebur128, peak=true


def _dbtp(linear: float) -> float:
    return 20.0 * math.log10(linear) if linear > 0 else -math.inf


def measure_file(data: bytes, *, what: str = "audio") -> FileMeasurement:
    """Decode ``data`` (FLAC, MP3, AAC/MP4, WAV…) with FFmpeg and measure it.

    Raises ``AudioDecodeError`` naming ``what`` when the bytes do not decode
    or hold less than 0.4 s of audio.
    """
    import av
    import pyloudnorm

    if not data:
        raise AudioDecodeError(f"{what}: empty file (0 bytes)")
    chunks: list[np.ndarray] = []
    peak = 0.0
    lufs_ffmpeg = -math.inf
    try:
        with av.open(io.BytesIO(data), mode="r") as container:
            if not container.streams.audio:
                raise AudioDecodeError(f"{what}: no audio stream in {len(data)} bytes")
            stream = container.streams.audio[0]
            codec = stream.codec_context.name
            graph = av.filter.Graph()
            source = graph.add_abuffer(template=stream)
            meter = graph.add("ebur128", "peak=true:metadata=1")
            convert = graph.add("aformat", "sample_fmts=fltp")
            sink = graph.add("abuffersink")
            source.link_to(meter)
            meter.link_to(convert)
            convert.link_to(sink)
            graph.configure()

            last: list[av.AudioFrame | av.VideoFrame] = []

            def drain() -> None:
                while True:
                    try:
                        frame = graph.pull()
                    except (av.BlockingIOError, av.EOFError):
                        return
                    chunks.append(frame.to_ndarray())
                    last[:] = [frame]

            for frame in container.decode(stream):
                graph.push(frame)
                drain()
            graph.push(None)
            drain()
            # ebur128's figures are running: its true peak (linear, the
            # loudest channel so far) and integrated loudness on the last
            # frame are those of the whole file.
            meta = last[0].metadata if last else {}
            if "lavfi.r128.true_peak" in meta:
                peak = float(meta["lavfi.r128.true_peak"])
            if "lavfi.r128.I" in meta:
                lufs_ffmpeg = float(meta["lavfi.r128.I"])
            sample_rate = int(stream.codec_context.sample_rate)
    except AudioDecodeError:
        raise
    except (av.FFmpegError, ValueError) as exc:
        raise AudioDecodeError(f"{what}: FFmpeg cannot decode {len(data)} bytes: {exc}") from exc
    audio = np.concatenate(chunks, axis=1) if chunks else np.zeros((1, 0), np.float32)
    duration = audio.shape[1] / float(sample_rate)
    if duration < _MIN_SECONDS:
        raise AudioDecodeError(
            f"{what}: only {duration:.2f} s of audio decoded; at least {_MIN_SECONDS} s is needed"
        )
    samples = np.ascontiguousarray(audio.T, dtype=np.float64)  # pyloudnorm: (samples, channels)
    lufs = float(pyloudnorm.Meter(sample_rate).integrated_loudness(samples))
    return FileMeasurement(
        codec=codec,
        sample_rate=sample_rate,
        channels=int(audio.shape[0]),
        duration_s=duration,
        lufs_pyloudnorm=lufs,
        lufs_ffmpeg=lufs_ffmpeg,
        true_peak_dbtp=_dbtp(peak),
    )


@dataclass(frozen=True)
class FileLimits:
    """What a stored rendition must measure."""

    target_lufs: float
    lufs_tolerance: float
    ceiling_dbtp: float
    duration_s: float
    duration_tolerance_s: float


def check_file(
    data: bytes, *, what: str, limits: FileLimits
) -> tuple[FileMeasurement | None, list[str]]:
    """Measure ``data`` and say, in words, each way it misses ``limits``."""
    try:
        m = measure_file(data, what=what)
    except AudioDecodeError as exc:
        return None, [f"does not decode ({str(exc).removeprefix(f'{what}: ')})"]
    problems = []
    low, high = (
        limits.target_lufs - limits.lufs_tolerance,
        limits.target_lufs + limits.lufs_tolerance,
    )
    if not low <= m.lufs_pyloudnorm <= high:
        problems.append(
            f"integrated loudness {m.lufs_pyloudnorm:.2f} LUFS (pyloudnorm) is outside "
            f"[{low:g}, {high:g}] LUFS"
        )
    if m.true_peak_dbtp > limits.ceiling_dbtp:
        problems.append(
            f"true peak {m.true_peak_dbtp:.2f} dBTP (FFmpeg ebur128) is over the "
            f"{limits.ceiling_dbtp:g} dBTP ceiling"
        )
    if abs(m.duration_s - limits.duration_s) > limits.duration_tolerance_s:
        problems.append(
            f"decodes to {m.duration_s:.2f} s where the row says {limits.duration_s:.2f} s "
            f"(±{limits.duration_tolerance_s:g} s allowed)"
        )
    return m, problems
