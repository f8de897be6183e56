"""Outputs of the timeline, and the supervisor that keeps each one alive.

Each output is wrapped in an ``OutputRunner``: an exception in one output
closes only that output, which is rebuilt after an exponential back-off
while the others keep receiving audio. A threaded runner keeps slow work
(the video push) off the audio loop.
"""

from __future__ import annotations

import abc
import contextlib
import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import numpy as np

from sonicforge.station import OutputState, OutputStatus, StationState
from streaming.clock import Clock

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AudioBlock:
    """A slice of the timeline: ``pcm`` is ``(n, 2)`` float32 from sample ``start``."""

    pcm: np.ndarray
    start: int
    sample_rate: int
    wall: datetime
    title: str
    artist: str

    @property
    def frames(self) -> int:
        return len(self.pcm)

    @property
    def stream_time_s(self) -> float:
        return self.start / self.sample_rate

    @property
    def display_title(self) -> str:
        """``artist - title``, as ICY metadata and the visualizer feed show it."""
        if self.artist and self.title:
            return f"{self.artist} - {self.title}"
        return self.title or self.artist


class Framer:
    """Re-cuts blocks into the fixed frame size an encoder needs (AAC 1024,
    MP3 1152), carrying the remainder to the next block."""

    def __init__(self, frame_size: int) -> None:
        self.size = frame_size
        self._rest = np.zeros((0, 2), np.float32)

    def frames(self, pcm: np.ndarray) -> list[np.ndarray]:
        """Planar ``(2, frame_size)`` arrays ready for ``AudioFrame.from_ndarray``."""
        data = np.concatenate([self._rest, pcm]) if len(self._rest) else pcm
        usable = len(data) - len(data) % self.size
        planar = np.ascontiguousarray(data[:usable].T)
        self._rest = data[usable:]
        return [planar[:, i : i + self.size] for i in range(0, usable, self.size)]

    def block(self, pcm: np.ndarray) -> np.ndarray:
        """Every whole frame in ``pcm`` (and the carried remainder) as one
        planar ``(2, k * frame_size)`` array."""
        data = np.concatenate([self._rest, pcm]) if len(self._rest) else pcm
        usable = len(data) - len(data) % self.size
        self._rest = data[usable:]
        return np.ascontiguousarray(data[:usable].T)

    def rest(self) -> np.ndarray:
        """The leftover samples padded with silence to one frame (at the end)."""
        if not len(self._rest):
            return np.zeros((2, 0), np.float32)
        pad = np.zeros((self.size - len(self._rest), 2), np.float32)
        out = np.ascontiguousarray(np.concatenate([self._rest, pad]).T)
        self._rest = np.zeros((0, 2), np.float32)
        return out


class Output(abc.ABC):
    """Something the timeline feeds: an encoder, a segmenter, an analyser."""

    name: str = "output"

    @abc.abstractmethod
    def write(self, block: AudioBlock) -> None: ...

    def close(self, *, final: bool = True) -> None:  # noqa: B027 - optional hook
        """Flush and release; ``final`` is False when closing after a failure."""


@dataclass(frozen=True)
class OutputSpec:
    """How to build an output; ``threaded`` ones run off the audio loop."""

    name: str
    factory: Callable[[], Output]
    threaded: bool = False


class OutputRunner:
    """Feeds one output, restarting it with back-off when it fails."""

    def __init__(
        self,
        name: str,
        factory: Callable[[], Output],
        *,
        clock: Clock,
        station: StationState | None = None,
        threaded: bool = False,
        backpressure: bool = True,
        queue_blocks: int = 50,
        min_backoff_s: float = 0.5,
        max_backoff_s: float = 30.0,
    ) -> None:
        self.name = name
        self._factory = factory
        self._clock = clock
        self._station = station
        self._output: Output | None = None
        self._retry_at = 0.0
        self._backoff = min_backoff_s
        self._min_backoff, self._max_backoff = min_backoff_s, max_backoff_s
        self._healthy_since = 0.0
        self.restarts = 0
        self.dropped_blocks = 0
        self.state: OutputState = "starting"
        self._backpressure = backpressure
        self._queue: queue.Queue[AudioBlock | None] | None = None
        self._thread: threading.Thread | None = None
        if threaded:
            self._queue = queue.Queue(maxsize=queue_blocks)
            self._thread = threading.Thread(target=self._work, name=f"output-{name}", daemon=True)
            self._thread.start()
        self._report("starting", "")

    def _report(self, state: OutputState, detail: str) -> None:
        self.state = state
        if self._station is not None:
            try:
                self._station.set_output_status(
                    OutputStatus(self.name, state, detail, self.restarts, self._clock.now())
                )
            except Exception as exc:  # state store down: the audio goes on
                log.warning("could not report %s status: %s", self.name, exc)

    def write(self, block: AudioBlock) -> None:
        if self._queue is None:
            self._feed(block)
            return
        if self._backpressure:
            self._queue.put(block)
            return
        try:
            self._queue.put_nowait(block)
        except queue.Full:  # behind real time: drop the oldest, keep up
            self.dropped_blocks += 1
            with contextlib.suppress(queue.Empty):
                self._queue.get_nowait()
            self._queue.put_nowait(block)

    def _work(self) -> None:
        assert self._queue is not None
        while (block := self._queue.get()) is not None:
            self._feed(block)

    def _feed(self, block: AudioBlock) -> None:
        now = self._clock.monotonic()
        if self._output is None:
            if now < self._retry_at:
                self.dropped_blocks += 1
                return
            try:
                self._output = self._factory()
            except Exception as exc:
                self._failed(exc, now)
                return
            self._healthy_since = now
        try:
            self._output.write(block)
        except Exception as exc:
            self._failed(exc, now)
            return
        if self.state != "running":
            self._report("running", "")
        elif now - self._healthy_since > 60.0:
            self._backoff = self._min_backoff  # a minute of health resets the back-off

    def _failed(self, exc: Exception, now: float) -> None:
        log.error("output %s failed (%s); restarting in %.1f s", self.name, exc, self._backoff)
        if self._output is not None:
            try:
                self._output.close(final=False)
            except Exception:
                log.debug("closing failed output %s", self.name, exc_info=True)
        self._output = None
        self.restarts += 1
        self._retry_at = now + self._backoff
        self._backoff = min(self._max_backoff, self._backoff * 2)
        self._report("restarting", f"{type(exc).__name__}: {exc}")

    def close(self) -> None:
        """Drain the queue, flush the output, stop the thread."""
        if self._queue is not None and self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout=30)
        if self._output is not None:
            try:
                self._output.close(final=True)
            except Exception as exc:
                log.error("closing output %s failed: %s", self.name, exc)
            self._output = None
        self._report("stopped", "")
