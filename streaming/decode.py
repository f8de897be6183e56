"""Decode a master into float32 stereo at the station's sample rate.

PyAV (FFmpeg's libraries, bundled in the wheel) decodes every format the
mastering step writes (FLAC, WAV, MP3) and resamples with libswresample, in
process, block by block: no subprocess to supervise and no whole track held
in memory.
"""

from __future__ import annotations

import io
import logging
import os
from collections.abc import Iterator

import av
import numpy as np

from sonicforge.errors import StorageError
from sonicforge.storage import ObjectStore
from streaming.errors import TrackUnavailableError

log = logging.getLogger(__name__)

# About -80 dBFS: far below any musical passage, above dither noise.
SILENCE_THRESHOLD = 1e-4
MAX_LEADING_SILENCE_S = 10.0


def open_source(uri: str, store: ObjectStore | None) -> str | io.BytesIO:
    """A local path as is; an object-store URI fetched into memory."""
    if "://" not in uri or uri.startswith("file://"):
        path = uri.removeprefix("file://")
        if not os.path.isfile(path):
            raise TrackUnavailableError(f"master {path} is missing")
        return path
    if store is None:
        raise TrackUnavailableError(f"no object store to read {uri}")
    try:
        return io.BytesIO(store.get(uri))
    except StorageError as exc:
        raise TrackUnavailableError(str(exc)) from exc


class TrackReader:
    """Reads ``(n, 2)`` float32 blocks; a decoding error mid-way ends the
    track early (``error`` says why) instead of raising into the mix."""

    def __init__(self, source: str | io.BytesIO, *, sample_rate: int, gain: float = 1.0) -> None:
        self.sample_rate = sample_rate
        self.gain = gain
        self.error: str | None = None
        self.eof = False
        try:
            self._container = av.open(source, mode="r", timeout=10.0)
            if not self._container.streams.audio:
                raise TrackUnavailableError("master has no audio stream")
            self._stream = self._container.streams.audio[0]
        except av.FFmpegError as exc:
            raise TrackUnavailableError(f"master cannot be opened: {exc}") from exc
        # Mono is duplicated rather than upmixed: swresample would put it
        # 3 dB down in each speaker, and a mono master would air quieter.
        self._mono = self._stream.codec_context.channels == 1
        layout = "mono" if self._mono else "stereo"
        self._resampler = av.AudioResampler(format="flt", layout=layout, rate=sample_rate)
        self._frames = self._decode()
        self._pending = np.zeros((0, 2), np.float32)
        self._trim_leading_silence()

    def _as_stereo(self, frame: av.AudioFrame) -> np.ndarray:
        data = frame.to_ndarray()
        if self._mono:
            mono = data.reshape(-1, 1)
            return np.repeat(mono, 2, axis=1)
        return data.reshape(-1, 2)

    def _decode(self) -> Iterator[np.ndarray]:
        for frame in self._container.decode(self._stream):
            for out in self._resampler.resample(frame):
                yield self._as_stereo(out)
        for out in self._resampler.resample(None):
            yield self._as_stereo(out)

    def _pull(self) -> np.ndarray | None:
        if self.eof:
            return None
        try:
            return next(self._frames)
        except StopIteration:
            self.eof = True
        except (av.FFmpegError, ValueError, OSError) as exc:
            self.error = f"decoding stopped: {exc}"
            self.eof = True
        return None

    def _trim_leading_silence(self) -> None:
        limit = int(MAX_LEADING_SILENCE_S * self.sample_rate)
        skipped = 0
        while skipped <= limit:
            block = self._pull()
            if block is None:
                break
            loud = np.flatnonzero(np.abs(block).max(axis=1) > SILENCE_THRESHOLD)
            if loud.size:
                self._pending = np.ascontiguousarray(block[loud[0] :])
                return
            skipped += len(block)
        reason = self.error or ("only silence" if skipped else "no audio")
        raise TrackUnavailableError(f"master is unplayable: {reason}")

    def read(self, n: int) -> np.ndarray:
        """Up to ``n`` frames, gain applied; fewer only at the end."""
        parts = [self._pending]
        have = len(self._pending)
        while have < n:
            block = self._pull()
            if block is None:
                break
            parts.append(block)
            have += len(block)
        data = np.concatenate(parts) if len(parts) > 1 else parts[0]
        out, self._pending = data[:n], data[n:]
        if self.gain != 1.0:
            out = out * np.float32(self.gain)
        return out

    def close(self) -> None:
        try:
            self._container.close()
        except Exception:  # closing a broken container must not raise
            log.debug("closing a reader failed", exc_info=True)
