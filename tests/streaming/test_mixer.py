"""The timeline: equal-power crossfades, gapless joins, skips, dead air,
the standby tone and the limiter."""

from __future__ import annotations

import numpy as np
import pytest

from streaming.mixer import CEILING, Deck, Mixer, soft_limit

SR = 8000


class ArraySource:
    def __init__(self, pcm: np.ndarray) -> None:
        self._pcm, self._pos = pcm.astype(np.float32), 0
        self.eof = False
        self.error: str | None = None

    def read(self, n: int) -> np.ndarray:
        out = self._pcm[self._pos : self._pos + n]
        self._pos += len(out)
        self.eof = self._pos >= len(self._pcm)
        return out

    def close(self) -> None:
        return None


def const(level: float, seconds: float) -> np.ndarray:
    return np.full((int(seconds * SR), 2), level, np.float32)


class Feed:
    """Decks from a list; records start/end events with their sample index."""

    def __init__(self, tracks: list[np.ndarray]) -> None:
        self.tracks = list(tracks)
        self.events: list[tuple[str, str, int]] = []
        self.n = 0

    def open_next(self) -> Deck | None:
        if not self.tracks:
            return None
        self.n += 1
        return Deck(f"d{self.n}", ArraySource(self.tracks.pop(0)))

    def mixer(self, **kw: float) -> Mixer:
        return Mixer(
            sample_rate=SR,
            open_next=self.open_next,
            on_start=lambda d, at: self.events.append(("start", d.key, at)),
            on_end=lambda d, at: self.events.append(("end", d.key, at)),
            **kw,  # type: ignore[arg-type]
        )


def test_equal_power_crossfade_keeps_power_and_length() -> None:
    # Two uncorrelated noises: an equal-power fade keeps the summed power flat.
    rng = np.random.default_rng(0)
    a = (0.2 * rng.standard_normal((4 * SR, 2))).astype(np.float32)
    b = (0.2 * rng.standard_normal((4 * SR, 2))).astype(np.float32)
    feed = Feed([a, b])
    mixer = feed.mixer(crossfade_s=1.0, skip_fade_s=0.5)
    out = np.concatenate([mixer.read(SR // 10) for _ in range(70)])
    power = [float(np.mean(out[i : i + SR // 4] ** 2)) for i in range(0, 6 * SR, SR // 4)]
    assert max(power) / min(power) < 1.35
    starts = [e for e in feed.events if e[0] == "start"]
    # b starts one crossfade (1 s) before a ends: 3 s into the timeline.
    assert starts[1][2] == 3 * SR
    assert ("end", "d1", 4 * SR) in feed.events


def test_gapless_when_crossfade_is_zero() -> None:
    feed = Feed([const(0.1, 1.0), const(0.3, 1.0), const(0.5, 1.0)])
    mixer = feed.mixer(crossfade_s=0.0)
    out = np.concatenate([mixer.read(SR // 10) for _ in range(30)])[:, 0]
    assert np.allclose(out[:SR], 0.1) and np.allclose(out[SR : 2 * SR], 0.3)
    assert np.allclose(out[2 * SR :], 0.5)


def test_skip_crossfades_within_the_skip_fade() -> None:
    feed = Feed([const(0.4, 10.0), const(-0.4, 10.0)])
    mixer = feed.mixer(crossfade_s=2.0, skip_fade_s=0.5)
    mixer.read(SR)
    mixer.skip()
    out = np.concatenate([mixer.read(SR // 10) for _ in range(10)])[:, 0]
    assert out[0] == pytest.approx(0.4, abs=0.01)
    assert np.allclose(out[SR // 2 :], -0.4, atol=1e-3)
    assert [e[1] for e in feed.events if e[0] == "end"] == ["d1"]


def test_dead_air_is_skipped_and_never_longer_than_two_seconds() -> None:
    silent_middle = np.concatenate([const(0.3, 1.0), const(0.0, 20.0)])
    feed = Feed([silent_middle, const(0.2, 10.0)])
    mixer = feed.mixer(crossfade_s=1.0, skip_fade_s=0.5, dead_air_s=1.5)
    out = np.concatenate([mixer.read(SR // 10) for _ in range(60)])[:, 0]
    silent = np.abs(out) < 1e-4
    runs, run = [], 0
    for s in silent:
        run = run + 1 if s else 0
        runs.append(run)
    assert max(runs) / SR < 2.0
    assert np.allclose(out[-SR:], 0.2, atol=1e-3)


def test_standby_tone_when_nothing_can_air_then_recovers() -> None:
    feed = Feed([])
    mixer = feed.mixer(crossfade_s=1.0, skip_fade_s=0.5, standby_retry_s=2.0)
    first = np.concatenate([mixer.read(SR // 10) for _ in range(10)])
    assert mixer.current is not None and mixer.current.standby
    assert np.abs(first).max() > 0.01
    feed.tracks.append(const(0.25, 10.0))
    np.concatenate([mixer.read(SR // 10) for _ in range(20)])
    assert mixer.current is not None and not mixer.current.standby
    assert np.allclose(mixer.read(SR // 10)[:, 0], 0.25, atol=1e-3)


def test_stop_fades_out_and_ends_every_deck() -> None:
    feed = Feed([const(0.5, 10.0)])
    mixer = feed.mixer(crossfade_s=1.0)
    mixer.read(SR)
    tail = mixer.stop(0.5)[:, 0]
    assert tail[0] == pytest.approx(0.5, abs=0.01) and abs(tail[-1]) < 0.01
    assert feed.events[-1][:2] == ("end", "d1") and mixer.current is None


def test_soft_limit_keeps_peaks_under_full_scale() -> None:
    loud = np.linspace(-1.8, 1.8, 1000, dtype=np.float32).reshape(-1, 2)
    out = soft_limit(loud)
    assert np.abs(out).max() < 1.0
    quiet = loud * 0.4
    assert np.array_equal(soft_limit(quiet), quiet)
    assert CEILING < 0.9
