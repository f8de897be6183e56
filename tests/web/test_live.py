"""Now playing pushed (``NowPlayingHub``) and recently played
(``/api/v1/stream/history``), on the in-process station state."""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime, timedelta

from serving.routes.live import NowPlayingHub
from sonicforge.station import InMemoryStationState, NowPlaying

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def now_playing(track_id: str, minutes: int) -> NowPlaying:
    return NowPlaying(
        track_id=track_id,
        title=f"Title of {track_id}",
        artist="SonicForge",
        genre="house",
        started_at=T0 + timedelta(minutes=minutes),
        position_s=0.0,
        duration_s=180.0,
        play_id=f"play-{track_id}",
    )


def test_one_subscription_wakes_every_waiter_and_remembers_what_aired() -> None:
    station = InMemoryStationState()

    async def scenario() -> None:
        hub = NowPlayingHub(station, recent=2)
        hub.start()
        try:
            waiters = [asyncio.create_task(hub.wait(5.0)) for _ in range(3)]
            assert await asyncio.to_thread(hub.subscribed.wait, 10.0)
            station.set_now_playing(now_playing("a", 0))
            assert await asyncio.gather(*waiters) == [True, True, True]
            assert await hub.wait(0.3) is False  # nothing new: a timeout, not a change
            station.set_now_playing(now_playing("b", 3))
            station.set_now_playing(now_playing("c", 6))
            station.set_now_playing(None)  # the station stopped: not a play
            for _ in range(200):
                if hub.version >= 4:
                    break
                await asyncio.sleep(0.05)
            assert hub.version == 4
            assert [c.now_playing.track_id for c in hub.recent if c.now_playing] == ["c", "b"]
        finally:
            hub.stop()

    # In a thread of its own: Playwright's sync API (the browser tests in this
    # folder) leaves an event loop running in the main thread.
    failures: list[BaseException] = []

    def run() -> None:
        try:
            asyncio.run(scenario())
        except BaseException as exc:  # re-raised in the test's thread
            failures.append(exc)

    worker = threading.Thread(target=run)
    worker.start()
    worker.join(timeout=60)
    assert not worker.is_alive(), "the scenario did not finish within 60 s"
    if failures:
        raise failures[0]
