"""The streamer end to end on a virtual clock: requests first, commands
within a second, now-playing published, plays recorded, outputs restarted."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from sonicforge.lakehouse import Lakehouse
from sonicforge.settings import Settings
from sonicforge.station import InMemoryStationState, StationState
from streaming.outputs.base import AudioBlock, Output
from streaming.plays import PlayRecorder, new_play_id
from streaming.streamer import OutputSpec

from .conftest import (
    FREQS,
    ScriptedClock,
    SynthTrack,
    add_tracks,
    dominant_freq,
    make_streamer,
    tap_spec,
)


def _timeline(blocks: list[AudioBlock]) -> np.ndarray:
    return np.concatenate([b.pcm for b in blocks])


def test_requests_air_first_and_plays_are_recorded(
    stream_settings: Settings, station_lake: Lakehouse
) -> None:
    clock = ScriptedClock()
    station = InMemoryStationState(clock=clock.now)
    station.enqueue("t3", requested_by="listener-1")
    blocks: list[AudioBlock] = []
    streamer = make_streamer(stream_settings, station_lake, station, clock, [tap_spec(blocks)])
    with station.subscribe() as sub:
        streamer.run(max_air_s=30)
        change = sub.get(timeout_s=1)
    assert change is not None and change.now_playing is not None
    assert (change.now_playing.track_id, change.now_playing.source) == ("t3", "request")
    pcm = _timeline(blocks)
    assert dominant_freq(pcm[: 48000 * 2], 48000) == pytest.approx(FREQS[3], abs=3)
    plays = sorted(station_lake.read("plays").to_pylist(), key=lambda p: p["started_at"])
    assert plays[0]["track_id"] == "t3" and len(plays) >= 4
    assert all(p["ended_at"] is not None and p["ended_at"] > p["started_at"] for p in plays)
    # 8 s tracks, 1 s crossfades: each play starts 7 s after the one before.
    starts = sorted(p["started_at"] for p in plays)
    gaps = {round((b - a).total_seconds(), 1) for a, b in itertools.pairwise(starts)}
    assert gaps == {7.0}
    heartbeat = station.heartbeat()
    assert heartbeat is not None and "started_at" in heartbeat.info


def test_skip_stop_start_obeyed_within_a_second(
    stream_settings: Settings,
    station_lake: Lakehouse,
    any_station: tuple[StationState, ScriptedClock],
) -> None:
    station, clock = any_station
    station.enqueue("t2", source="operator")
    clock.script = [(3.0, "skip"), (6.0, "stop"), (9.0, "start")]
    blocks: list[AudioBlock] = []
    streamer = make_streamer(stream_settings, station_lake, station, clock, [tap_spec(blocks)])
    streamer.run(max_air_s=14)
    assert streamer.commands_obeyed == ["skip", "stop", "start"]
    plays = sorted(station_lake.read("plays").to_pylist(), key=lambda p: p["started_at"])
    assert plays[0]["track_id"] == "t2" and station.queue() == []
    t0 = plays[0]["started_at"]

    def rel(ts: object) -> float:
        return (ts - t0).total_seconds()  # type: ignore[operator]

    # skip at 3 s: the next track starts within a second
    assert plays[0]["skipped"] and 3.0 <= rel(plays[1]["started_at"]) <= 4.0
    # stop at 6 s: the play on air has faded out (skipped) within a second
    assert plays[1]["skipped"] and 6.0 <= rel(plays[1]["ended_at"]) <= 7.0
    # start at 9 s: a new play begins within a second of it
    assert 9.0 <= rel(plays[2]["started_at"]) <= 10.0
    # the commands were each obeyed once: one stop, one start
    walls = [b.wall for b in blocks]
    jumps = [(b - a).total_seconds() for a, b in itertools.pairwise(walls)]
    assert sum(1 for j in jumps if j > 1.0) == 1


class Flaky(Output):
    name = "flaky"
    built = 0

    def __init__(self, store: list[AudioBlock]) -> None:
        Flaky.built += 1
        self.store, self.n, self.first = store, 0, Flaky.built == 1

    def write(self, block: AudioBlock) -> None:
        self.n += 1
        if self.first and self.n == 20:
            raise RuntimeError("encoder crashed")
        self.store.append(block)


def test_failed_output_restarts_without_touching_the_others(
    stream_settings: Settings, station_lake: Lakehouse
) -> None:
    clock = ScriptedClock()
    station = InMemoryStationState(clock=clock.now)
    healthy: list[AudioBlock] = []
    flaky: list[AudioBlock] = []
    Flaky.built = 0
    specs = [tap_spec(healthy), OutputSpec("flaky", lambda: Flaky(flaky))]
    streamer = make_streamer(stream_settings, station_lake, station, clock, specs)
    streamer.run(max_air_s=10)
    starts = [b.start for b in healthy]
    assert starts == list(range(0, starts[-1] + 1, 4800))  # the healthy one missed nothing
    assert Flaky.built == 2
    # down for the back-off, then back, and fed every block since
    missed = len(healthy) - len(flaky)
    assert 1 < missed <= 10
    after = [b.start for b in flaky[19:]]
    assert after == list(range(after[0], after[0] + 4800 * len(after), 4800))
    status = {o.name: o for o in station.outputs()}
    assert status["flaky"].restarts == 1 and status["tap"].restarts == 0


def test_plays_are_idempotent_on_play_id(lakehouse: Lakehouse) -> None:
    clock = ScriptedClock()
    rec = PlayRecorder(lakehouse, clock=clock, flush_s=3600)
    pid = new_play_id(clock.now())
    rec.start(pid, "t1", clock.now())
    assert rec.flush() == 1
    rec.start(pid, "t1", clock.now())  # a retry of the same start
    rec.end(pid, "t1", clock.now(), clock.now(), skipped=True, listeners=4)
    assert rec.flush() == 1
    rows = lakehouse.read("plays").to_pylist()
    assert len(rows) == 1 and rows[0]["skipped"] and rows[0]["listeners"] == 4
    rec.close()


def test_play_ids_are_time_ordered_uuid7() -> None:
    clock = ScriptedClock()
    a = new_play_id(clock.now())
    clock.advance(0.01)
    b = new_play_id(clock.now())
    assert a[14] == "7" and a < b


def test_loudness_is_trimmed_to_the_target_across_tracks(
    stream_settings: Settings, lakehouse: Lakehouse
) -> None:
    # Two masters 6 dB apart, each measured honestly: on air they match.
    add_tracks(
        lakehouse,
        [
            SynthTrack("loud", 330.0, amplitude=0.25, lufs=-14.0),
            SynthTrack("soft", 440.0, amplitude=0.125, lufs=-20.02),
        ],
    )
    clock = ScriptedClock()
    station = InMemoryStationState(clock=clock.now)
    blocks: list[AudioBlock] = []
    streamer = make_streamer(stream_settings, lakehouse, station, clock, [tap_spec(blocks)])
    streamer.run(max_air_s=16)
    pcm = _timeline(blocks)
    levels = {}
    for start in (2, 9):  # the middle of the first two tracks (8 s, 1 s fades)
        part = pcm[start * 48000 : (start + 4) * 48000]
        freq = dominant_freq(part, 48000)
        levels[round(freq)] = 20 * np.log10(np.sqrt(np.mean(part**2)))
    assert set(levels) == {330, 440}
    assert abs(levels[330] - levels[440]) < 0.3


class EnqueueingClock(ScriptedClock):
    """Queues tracks at set stream times, as the request tracker does."""

    def __init__(self, station: StationState, queue_at: list[tuple[float, str, str]]) -> None:
        super().__init__()
        self.queued_station, self.queue_at = station, queue_at

    def sleep(self, seconds: float) -> None:
        super().sleep(seconds)
        while self.queue_at and self.monotonic() >= self.queue_at[0][0]:
            _, track_id, source = self.queue_at.pop(0)
            self.queued_station.enqueue(track_id, source=source)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("source", "segue"), [("request", True), ("operator", False)], ids=["request", "operator"]
)
def test_a_request_segues_out_of_a_rotation_track_that_has_aired_long_enough(
    stream_settings: Settings, station_lake: Lakehouse, source: str, segue: bool
) -> None:
    settings = stream_settings.model_copy(update={"stream_request_segue_s": 3.0})
    station = InMemoryStationState()
    # 8 s rotation tracks; the request has passed the gate 1.5 s into the first.
    clock = EnqueueingClock(station, [(1.5, "t3", source)])
    station = InMemoryStationState(clock=clock.now)
    clock.queued_station = station
    streamer = make_streamer(settings, station_lake, station, clock, [tap_spec([])])
    streamer.run(max_air_s=12)
    plays = sorted(station_lake.read("plays").to_pylist(), key=lambda p: p["started_at"])
    first, second = plays[0], plays[1]
    assert first["track_id"] != "t3" and second["track_id"] == "t3"
    aired = (second["started_at"] - first["started_at"]).total_seconds()
    if segue:
        # Cut short once it has aired 3 s (checked each second), over the
        # 1 s crossfade, and not counted as a listener's skip.
        assert 3.0 <= aired <= 4.5
        assert not first["skipped"]
    else:
        # An operator's pick waits for the track's end (8 s less the crossfade).
        assert aired == pytest.approx(7.0, abs=0.2)
