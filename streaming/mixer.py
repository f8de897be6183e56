"""One continuous PCM timeline: decks, equal-power crossfades, skips, a
dead-air guard and a standby tone, so the output never goes silent.

The mixer keeps ``crossfade_s`` of the current track decoded ahead; when the
decoder reaches the end, the last buffered samples fade out (cos) while the
next track fades in (sin), so cos² + sin² keeps the power constant.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import numpy as np

from streaming.decode import SILENCE_THRESHOLD

log = logging.getLogger(__name__)

# Soft-knee ceiling at -1 dBFS: a crossfade of two loud tracks must not clip.
CEILING = 0.891


class Source(Protocol):
    eof: bool
    error: str | None

    def read(self, n: int) -> np.ndarray: ...

    def close(self) -> None: ...


class StandbyTone:
    """The last resort when nothing can air: a quiet, slowly breathing chord."""

    eof = False
    error: str | None = None

    def __init__(self, sample_rate: int) -> None:
        self._sr = sample_rate
        self._t = 0

    def read(self, n: int) -> np.ndarray:
        t = (self._t + np.arange(n)) / self._sr
        self._t += n
        swell = 0.55 + 0.45 * np.sin(2 * np.pi * 0.1 * t)
        chord = sum(np.sin(2 * np.pi * f * t) for f in (220.0, 261.63, 329.63)) / 3
        mono = (0.06 * swell * chord).astype(np.float32)
        return np.stack([mono, mono], axis=1)

    def close(self) -> None:
        return None


@dataclass(eq=False)
class Deck:
    """A source on the timeline with its gain envelope."""

    key: str
    source: Source
    meta: Any = None
    standby: bool = False
    buf: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), np.float32))
    fade: Literal["in", "out"] | None = None
    fade_pos: int = 0
    fade_len: int = 0
    fade_from: float = 1.0
    silent_run: int = 0
    skipped: bool = False
    end_reason: str = "ended"

    def fill(self, n: int) -> None:
        if len(self.buf) < n and not self.source.eof:
            more = self.source.read(n - len(self.buf))
            self.buf = np.concatenate([self.buf, more]) if len(self.buf) else more

    def take(self, n: int) -> np.ndarray:
        self.fill(n)
        data, self.buf = self.buf[:n], self.buf[n:]
        if len(data) < n:
            data = np.concatenate([data, np.zeros((n - len(data), 2), np.float32)])
        return data

    def level(self) -> float:
        if self.fade is None:
            return 1.0
        p = min(1.0, self.fade_pos / max(1, self.fade_len))
        if self.fade == "in":
            return math.sin(math.pi / 2 * p)
        return self.fade_from * math.cos(math.pi / 2 * p)

    def envelope(self, n: int) -> np.ndarray | None:
        if self.fade is None:
            return None
        p = np.clip((self.fade_pos + np.arange(n)) / max(1, self.fade_len), 0.0, 1.0)
        if self.fade == "in":
            gain = np.sin(np.pi / 2 * p)
        else:
            gain = self.fade_from * np.cos(np.pi / 2 * p)
        self.fade_pos += n
        if self.fade == "in" and self.fade_pos >= self.fade_len:
            self.fade = None
        return gain.astype(np.float32)[:, None]

    @property
    def faded_out(self) -> bool:
        return self.fade == "out" and self.fade_pos >= self.fade_len

    def start_fade_out(self, length: int) -> None:
        self.fade_from, self.fade, self.fade_pos, self.fade_len = self.level(), "out", 0, length


def soft_limit(block: np.ndarray) -> np.ndarray:
    peak = float(np.abs(block).max()) if block.size else 0.0
    if peak <= CEILING:
        return block
    mag = np.abs(block)
    over = mag > CEILING
    knee = CEILING + (1 - CEILING) * np.tanh((mag[over] - CEILING) / (1 - CEILING))
    out = block.copy()
    out[over] = np.sign(block[over]) * knee
    return out


class Mixer:
    """Pulls decks from ``open_next`` and mixes them into exact-size blocks."""

    def __init__(
        self,
        *,
        sample_rate: int,
        open_next: Callable[[], Deck | None],
        on_start: Callable[[Deck, int], None] | None = None,
        on_end: Callable[[Deck, int], None] | None = None,
        crossfade_s: float = 4.0,
        skip_fade_s: float = 1.0,
        dead_air_s: float = 1.5,
        standby_retry_s: float = 5.0,
    ) -> None:
        self.sample_rate = sample_rate
        self.position = 0
        self._open_next = open_next
        self._on_start = on_start or (lambda deck, at: None)
        self._on_end = on_end or (lambda deck, at: None)
        self._xfade = int(crossfade_s * sample_rate)
        self._skip_fade = max(1, int(skip_fade_s * sample_rate))
        self._dead_air = int(dead_air_s * sample_rate)
        self._standby_retry = int(standby_retry_s * sample_rate)
        self._retry_at = 0
        self.current: Deck | None = None
        self.fading: list[Deck] = []
        self._pending_skip: str | None = None

    def _next_deck(self) -> Deck:
        deck = self._open_next()
        if deck is not None:
            return deck
        log.error("nothing can air; playing the standby tone")
        return Deck("standby", StandbyTone(self.sample_rate), standby=True)

    def _switch(self, deck: Deck, *, fade: int, at: int, reason: str, skipped: bool) -> None:
        old = self.current
        if old is not None:
            old.skipped, old.end_reason = skipped, reason
            old.start_fade_out(fade)
            self.fading.append(old)
        if fade > 0:
            deck.fade, deck.fade_pos, deck.fade_len = "in", 0, fade
        self.current = deck
        self._retry_at = at + self._standby_retry
        self._on_start(deck, at)

    def skip(self, reason: str = "skip") -> None:
        """Crossfade to the next track over ``skip_fade_s`` (on the next read)."""
        self._pending_skip = reason

    def segue(self) -> None:
        """Crossfade to the next track over the full crossfade (on the next read):
        the track ends early for a request, which no listener skipped."""
        self._pending_skip = "segue"

    def read(self, n: int) -> np.ndarray:
        """Exactly ``n`` frames of the timeline."""
        out = np.zeros((n, 2), np.float32)
        filled = 0
        while filled < n:
            at = self.position + filled
            cur = self.current
            if cur is None:
                self._switch(self._next_deck(), fade=0, at=at, reason="start", skipped=False)
                continue
            if self._pending_skip is not None:
                reason, self._pending_skip = self._pending_skip, None
                if reason == "segue" and cur.standby:
                    pass  # the standby tone gives way by itself
                elif not cur.standby or reason != "skip":
                    want = max(1, self._xfade) if reason == "segue" else self._skip_fade
                    fade = min(want, max(1, len(cur.buf))) if cur.source.eof else want
                    self._switch(
                        self._next_deck(), fade=fade, at=at, reason=reason,
                        skipped=reason != "segue",
                    )  # fmt: skip
                    continue
            k = n - filled
            if cur.standby:
                if at >= self._retry_at:
                    self._retry_at = at + self._standby_retry
                    deck = self._open_next()
                    if deck is not None:
                        self._switch(
                            deck, fade=self._skip_fade, at=at, reason="recovered", skipped=False
                        )
                        continue
            else:
                cur.fill(self._xfade + k)
                if cur.source.eof:
                    remaining = len(cur.buf)
                    if remaining <= self._xfade:
                        if cur.source.error:
                            log.warning("track %s ended early: %s", cur.key, cur.source.error)
                        self._switch(
                            self._next_deck(), fade=remaining, at=at, reason="ended", skipped=False
                        )
                        continue
                    k = min(k, remaining - self._xfade)
            out[filled : filled + k] = self._mix(cur, k, at)
            filled += k
        self.position += n
        return soft_limit(out)

    def _mix(self, cur: Deck, k: int, at: int) -> np.ndarray:
        raw = cur.take(k)
        env = cur.envelope(k)
        chunk = raw * env if env is not None else raw.copy()
        if not cur.standby:
            loud = np.flatnonzero(np.abs(raw).max(axis=1) > SILENCE_THRESHOLD)
            cur.silent_run = cur.silent_run + k if loud.size == 0 else k - 1 - int(loud[-1])
            if cur.silent_run > self._dead_air and self._pending_skip is None:
                log.warning("dead air in %s; skipping", cur.key)
                self._pending_skip = "dead air"
        for deck in list(self.fading):
            env = deck.envelope(k)
            chunk += deck.take(k) * (env if env is not None else 1.0)
            if deck.faded_out:
                self.fading.remove(deck)
                deck.source.close()
                self._on_end(deck, at + k)
        return chunk

    def stop(self, fade_s: float = 0.5) -> np.ndarray:
        """Fade everything out over ``fade_s``; returns that last audio."""
        n = max(1, int(fade_s * self.sample_rate))
        out = np.zeros((n, 2), np.float32)
        if self.current is not None:
            self.current.skipped, self.current.end_reason = True, "stopped"
            self.current.start_fade_out(n)
            self.fading.append(self.current)
            self.current = None
        for deck in list(self.fading):
            env = deck.envelope(n)
            out += deck.take(n) * (env if env is not None else 1.0)
            deck.source.close()
            self._on_end(deck, self.position + n)
        self.fading.clear()
        self._pending_skip = None
        self.position += n
        return soft_limit(out)
