"""Picking: queue first, weighted rotation outside the no-repeat window,
fallback playlist, quarantine of broken masters."""

from __future__ import annotations

import random
from collections import Counter
from datetime import timedelta

import pytest

from sonicforge.station import InMemoryStationState
from streaming.catalog import TrackInfo
from streaming.clock import VirtualClock
from streaming.scheduler import Scheduler


def info(track_id: str, weight: float = 1.0, score: float = 50.0) -> TrackInfo:
    return TrackInfo(track_id, f"/m/{track_id}.flac", 180.0, "house", track_id, "SF", weight, score)


class FakeCatalog:
    def __init__(self, rotation: list[TrackInfo], fallback: list[TrackInfo] | None = None) -> None:
        self.rot, self.fb = rotation, fallback or []

    def rotation(self) -> list[TrackInfo]:
        return list(self.rot)

    def fallback(self) -> list[TrackInfo]:
        return list(self.fb)

    def lookup(self, track_id: str) -> TrackInfo | None:
        return next((t for t in self.rot + self.fb if t.track_id == track_id), None)


def make(catalog: FakeCatalog, **kw: float) -> tuple[Scheduler, InMemoryStationState, VirtualClock]:
    clock = VirtualClock()
    station = InMemoryStationState(clock=clock.now)
    sched = Scheduler(catalog, station, clock=clock, rng=random.Random(7), **kw)  # type: ignore[arg-type]
    return sched, station, clock


def air(sched: Scheduler, clock: VirtualClock, n: int, seconds: float = 180.0) -> list[str]:
    out = []
    for _ in range(n):
        pick = sched.next()
        assert pick is not None
        sched.record_start(pick.track.track_id)
        out.append(pick.track.track_id)
        clock.advance(seconds)
    return out


@pytest.mark.parametrize("window", [1, 3, 5])
def test_no_track_repeats_within_the_count_window(window: int) -> None:
    sched, _, clock = make(
        FakeCatalog([info(f"t{i}") for i in range(8)]), no_repeat_count=window, no_repeat_s=0
    )
    aired = air(sched, clock, 300)
    for i in range(len(aired)):
        assert aired[i] not in aired[max(0, i - window) : i]


def test_time_window_blocks_recent_tracks() -> None:
    sched, _, clock = make(
        FakeCatalog([info(f"t{i}") for i in range(6)]), no_repeat_count=0, no_repeat_s=600
    )
    aired = air(sched, clock, 100, seconds=180)  # 600 s = the last 3 starts (+ current)
    for i in range(len(aired)):
        assert aired[i] not in aired[max(0, i - 3) : i]


def test_weights_shape_the_picks() -> None:
    tracks = [info("heavy", weight=10.0)] + [info(f"t{i}") for i in range(9)]
    sched, _, clock = make(FakeCatalog(tracks), no_repeat_count=0, no_repeat_s=0)
    counts = Counter(air(sched, clock, 2000))
    assert counts["heavy"] > 3 * max(v for k, v in counts.items() if k != "heavy")


def test_small_rotation_plays_the_longest_unplayed_instead_of_stalling() -> None:
    sched, _, clock = make(FakeCatalog([info("a"), info("b")]), no_repeat_count=5, no_repeat_s=0)
    assert air(sched, clock, 6) in (["a", "b"] * 3, ["b", "a"] * 3)


def test_queue_goes_first_and_skips_unknown_tracks() -> None:
    # Operators' picks air before listeners' requests (issue 11), whatever
    # the order they were queued in; a request for an unknown track is dropped.
    sched, station, _clock = make(FakeCatalog([info("a"), info("b")]))
    station.enqueue("nope", requested_by="u1")
    station.enqueue("b", requested_by="u1")
    station.enqueue("a", source="operator")
    first, second = sched.next(), sched.next()
    assert first is not None and (first.track.track_id, first.source) == ("a", "operator")
    assert second is not None and (second.track.track_id, second.source) == ("b", "request")
    assert station.queue() == []


def test_requests_air_by_plan_priority_then_in_order() -> None:
    sched, station, _clock = make(FakeCatalog([info("a"), info("b"), info("c"), info("d")]))
    station.enqueue("a", requested_by="u1", priority=0, request_id="r1")
    station.enqueue("b", requested_by="u2", priority=2, request_id="r2")
    station.enqueue("c", requested_by="u3", priority=2, request_id="r3")
    station.enqueue("d", source="operator")
    picks = [sched.next() for _ in range(5)]
    assert [(p.track.track_id, p.source) for p in picks if p][:4] == [
        ("d", "operator"), ("b", "request"), ("c", "request"), ("a", "request"),
    ]  # fmt: skip
    assert picks[1] is not None and picks[1].entry is not None
    assert picks[1].entry.request_id == "r2"
    assert picks[4] is not None and picks[4].source == "rotation"


def test_empty_rotation_replays_the_fallback_in_score_order() -> None:
    fb = [info("best", score=90), info("good", score=80)]
    sched, _, _clock = make(FakeCatalog([], fb))
    picks = [sched.next() for _ in range(4)]
    assert [(p.track.track_id, p.source) for p in picks if p] == [
        ("best", "fallback"),
        ("good", "fallback"),
        ("best", "fallback"),
        ("good", "fallback"),
    ]


def test_quarantined_tracks_sit_out_then_return() -> None:
    sched, _, clock = make(
        FakeCatalog([info("a"), info("b")]), no_repeat_count=0, no_repeat_s=0, quarantine_s=60
    )
    sched.quarantine("a", "corrupt")
    assert {sched.next().track.track_id for _ in range(20)} == {"b"}  # type: ignore[union-attr]
    clock.advance(61)
    assert "a" in {sched.next().track.track_id for _ in range(50)}  # type: ignore[union-attr]


def test_nothing_to_air_returns_none() -> None:
    sched, _, _ = make(FakeCatalog([]))
    assert sched.next() is None


def test_history_seeds_the_window() -> None:
    sched, _, clock = make(FakeCatalog([info("a"), info("b")]), no_repeat_count=1, no_repeat_s=0)
    sched.load_history([("a", clock.now() - timedelta(minutes=3))])
    pick = sched.next()
    assert pick is not None and pick.track.track_id == "b"
