"""The visualizer feed: 32 log-spaced spectrum bands at 25 frames a second.

Each frame carries ``t`` (seconds on the stream's timeline) and ``at`` (the
wall time that sample airs, the same clock as HLS PROGRAM-DATE-TIME), so a
player can line the bars up with what it is playing. Frames travel to the
API in one-second chunks (``outputs.chunks``) and out over WebSocket or SSE.
"""

from __future__ import annotations

import json
import math
from datetime import timedelta
from pathlib import Path

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from streaming.outputs.base import AudioBlock, Output
from streaming.outputs.chunks import ChunkWriter


def band_edges(sample_rate: int, n_fft: int, *, bands: int, fmin: float, fmax: float) -> np.ndarray:
    """FFT-bin edges of ``bands`` log-spaced bands, each at least one bin wide."""
    hz = np.geomspace(fmin, min(fmax, sample_rate / 2), bands + 1)
    edges = np.round(hz * n_fft / sample_rate).astype(int)
    for i in range(1, len(edges)):
        edges[i] = max(edges[i], edges[i - 1] + 1)
    return edges


class SpectrumAnalyzer:
    """Band levels 0–255 (-80…0 dBFS) of hop-spaced Hann windows."""

    def __init__(
        self,
        sample_rate: int,
        *,
        fps: int = 25,
        bands: int = 32,
        n_fft: int = 2048,
        fmin: float = 40.0,
        fmax: float = 16000.0,
    ) -> None:
        self.sr, self.fps, self.bands, self.n_fft = sample_rate, fps, bands, n_fft
        self.hop = sample_rate / fps
        self._window = np.hanning(n_fft).astype(np.float32)
        self._edges = band_edges(sample_rate, n_fft, bands=bands, fmin=fmin, fmax=fmax)
        # Full-scale sine through a Hann window peaks at n_fft / 4.
        self._ref = (n_fft / 4) ** 2
        self._history = np.zeros(n_fft, np.float32)
        self._next_frame = 0

    def analyse(self, block: AudioBlock) -> list[dict[str, object]]:
        if self._next_frame == 0 and block.start > 0:  # started mid-timeline
            self._next_frame = math.ceil(block.start / self.hop)
        mono = block.pcm.mean(axis=1).astype(np.float32)
        data = np.concatenate([self._history, mono])
        end = block.start + len(mono)
        positions = []
        while round(self._next_frame * self.hop) <= end:
            pos = round(self._next_frame * self.hop)
            if pos >= block.start:
                positions.append(pos)
            self._next_frame += 1
        self._history = data[-self.n_fft :]
        if not positions:
            return []
        windows = sliding_window_view(data, self.n_fft)
        # A frame at sample p analyses the n_fft samples that end at p.
        idx = np.array(positions) - block.start
        spectra = np.abs(np.fft.rfft(windows[idx] * self._window, axis=1)) ** 2
        csum = np.concatenate([np.zeros((len(idx), 1)), np.cumsum(spectra, axis=1)], axis=1)
        lo, hi = self._edges[:-1], self._edges[1:]
        power = (csum[:, hi] - csum[:, lo]) / (hi - lo)
        db = 10 * np.log10(np.maximum(power / self._ref, 1e-12))
        levels = np.clip((db + 80.0) / 80.0 * 255.0, 0, 255).astype(int)
        frames: list[dict[str, object]] = []
        for pos, row in zip(positions, levels, strict=True):
            offset = (pos - block.start) / self.sr
            at = block.wall + timedelta(seconds=offset)
            frames.append({"t": round(pos / self.sr, 4), "at": at.timestamp(), "b": row.tolist()})
        return frames


class VizOutput(Output):
    name = "viz"

    def __init__(
        self, directory: Path, *, sample_rate: int, fps: int = 25, bands: int = 32
    ) -> None:
        self._analyzer = SpectrumAnalyzer(sample_rate, fps=fps, bands=bands)
        self._writer = ChunkWriter(directory, ext="json", keep=30)
        self._frames: list[dict[str, object]] = []
        self._fps, self._bands = fps, bands
        self._title = ""

    def write(self, block: AudioBlock) -> None:
        self._title = block.display_title
        self._frames.extend(self._analyzer.analyse(block))
        if len(self._frames) >= self._fps:
            self._flush()

    def _flush(self) -> None:
        if not self._frames:
            return
        body = {"fps": self._fps, "bands": self._bands, "frames": self._frames}
        self._writer.write(json.dumps(body, separators=(",", ":")).encode(), {"title": self._title})
        self._frames = []

    def close(self, *, final: bool = True) -> None:
        if final:
            self._flush()
