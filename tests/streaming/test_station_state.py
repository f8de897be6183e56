"""The station-state contract, run against both implementations."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from sonicforge.errors import (
    ConfigurationError,
    QueueEntryNotFoundError,
    StationStateError,
    UnknownCommandError,
)
from sonicforge.station import (
    InMemoryStationState,
    NowPlaying,
    OutputStatus,
    StationState,
    station_state_from_url,
)


class FakeClock:
    def __init__(self) -> None:
        self.now = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture(params=["memory", "redis"])
def station(request: pytest.FixtureRequest) -> Iterator[tuple[StationState, FakeClock]]:
    clock = FakeClock()
    if request.param == "memory":
        yield InMemoryStationState(clock=clock), clock
        return
    url = request.getfixturevalue("redis_url")
    from sonicforge.station_redis import RedisStationState

    state = RedisStationState.from_url(url, prefix=f"test:{uuid.uuid4().hex}:", clock=clock)
    try:
        yield state, clock
    finally:
        state.clear()


def _np(track_id: str, clock: FakeClock, play_id: str = "p1") -> NowPlaying:
    return NowPlaying(
        track_id=track_id,
        title="House in A minor",
        artist="SonicForge",
        genre="house",
        started_at=clock.now,
        position_s=0.0,
        duration_s=180.0,
        play_id=play_id,
    )


def test_queue_add_list_pop_in_order(station: tuple[StationState, FakeClock]) -> None:
    state, _ = station
    a = state.enqueue("t1", requested_by="u1")
    b = state.enqueue("t2", source="operator")
    assert [e.track_id for e in state.queue()] == ["t1", "t2"]
    assert state.queue()[0] == a
    assert b.source == "operator" and b.requested_by is None
    assert state.pop_next() == a
    assert state.pop_next() == b
    assert state.pop_next() is None


def test_queue_remove_and_reorder(station: tuple[StationState, FakeClock]) -> None:
    state, _ = station
    a, b, c = (state.enqueue(t) for t in ("t1", "t2", "t3"))
    assert state.remove(b.entry_id) == b
    with pytest.raises(QueueEntryNotFoundError, match=b.entry_id):
        state.remove(b.entry_id)
    assert [e.entry_id for e in state.reorder([c.entry_id])] == [c.entry_id, a.entry_id]
    with pytest.raises(QueueEntryNotFoundError, match="not in the queue"):
        state.reorder(["nope"])
    with pytest.raises(StationStateError, match="repeat"):
        state.reorder([a.entry_id, a.entry_id])
    assert [e.track_id for e in state.queue()] == ["t3", "t1"]


def test_queue_rejects_bad_source(station: tuple[StationState, FakeClock]) -> None:
    state, _ = station
    with pytest.raises(StationStateError, match="allowed sources: request, operator"):
        state.enqueue("t1", source="bot")  # type: ignore[arg-type]


def test_concurrent_enqueue_and_pop_lose_nothing(station: tuple[StationState, FakeClock]) -> None:
    state, _ = station
    popped: list[str] = []

    def add(n: int) -> None:
        for i in range(25):
            state.enqueue(f"w{n}-{i}")

    threads = [threading.Thread(target=add, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    while (entry := state.pop_next()) is not None:
        popped.append(entry.track_id)
    assert len(popped) == 100 and len(set(popped)) == 100


def test_now_playing_is_published_to_subscribers(station: tuple[StationState, FakeClock]) -> None:
    state, clock = station
    assert state.now_playing() is None
    with state.subscribe() as sub:
        state.set_now_playing(_np("t1", clock))
        change = sub.get(timeout_s=2.0)
        assert change is not None and change.now_playing == _np("t1", clock)
        state.set_now_playing(None)
        change = sub.get(timeout_s=2.0)
        assert change is not None and change.now_playing is None
        assert sub.get(timeout_s=0.05) is None


def test_position_updates_without_publishing(station: tuple[StationState, FakeClock]) -> None:
    state, clock = station
    state.set_now_playing(_np("t1", clock))
    clock.now += timedelta(seconds=10)
    state.update_position(10.0)
    current = state.now_playing()
    assert current is not None
    assert current.position_s == 10.0 and current.updated_at == clock.now
    assert current.position_at(clock.now + timedelta(seconds=5)) == pytest.approx(15.0)


def test_commands_have_monotonic_ids_and_are_read_once(
    station: tuple[StationState, FakeClock],
) -> None:
    state, _ = station
    base = state.last_command_id()
    skip = state.send_command("skip", issued_by="op")
    stop = state.send_command("stop")
    assert (skip.command_id, stop.command_id) == (base + 1, base + 2)
    assert [c.command for c in state.commands_since(base)] == ["skip", "stop"]
    assert state.commands_since(stop.command_id) == []
    assert state.last_command_id() == stop.command_id


def test_unknown_command_lists_allowed(station: tuple[StationState, FakeClock]) -> None:
    state, _ = station
    with pytest.raises(UnknownCommandError, match="allowed commands: start, stop, skip"):
        state.send_command("pause")


def test_outputs_listeners_and_heartbeat(station: tuple[StationState, FakeClock]) -> None:
    state, clock = station
    state.set_output_status(OutputStatus("mp3", "running", updated_at=clock.now))
    state.set_output_status(OutputStatus("hls", "restarting", "encoder failed", 1, clock.now))
    assert [(o.name, o.state, o.restarts) for o in state.outputs()] == [
        ("hls", "restarting", 1),
        ("mp3", "running", 0),
    ]
    state.set_listeners("mp3", 3, replica="api-1")
    state.set_listeners("mp3", 2, replica="api-2", ttl_s=5)
    state.set_listeners("hls", 4, replica="api-1")
    assert state.listener_counts() == {"mp3": 5, "hls": 4}
    clock.now += timedelta(seconds=10)  # api-2 stopped reporting
    assert state.listener_counts() == {"mp3": 3, "hls": 4}
    assert state.total_listeners() == 7
    with pytest.raises(StationStateError, match=">= 0"):
        state.set_listeners("mp3", -1)
    assert state.heartbeat() is None
    hb = state.beat({"state": "playing", "block": 12})
    assert state.heartbeat() == hb and hb.info["state"] == "playing"


def test_factory_picks_implementation(redis_url: str) -> None:
    assert station_state_from_url(None) is station_state_from_url("memory://")
    assert type(station_state_from_url(redis_url)).__name__ == "RedisStationState"
    with pytest.raises(ConfigurationError, match="allowed: redis://"):
        station_state_from_url("mongodb://x")
