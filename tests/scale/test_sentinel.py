"""Redis Sentinel for real: a master, a replica and three sentinels from
Debian's packages; the master is killed with SIGKILL mid-traffic. The
queue, now-playing and rate limits work again within 15 s, and no queue
change that was acknowledged before the kill is lost."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from serving.ratelimit import RateLimiter
from sonicforge.station import NowPlaying
from sonicforge.station_redis import RedisStationState
from tests.scale.redis_servers import SERVICE, RedisSet, need_binaries, wait_until

FAILOVER_DEADLINE_S = 15.0


@pytest.fixture
def sentinel_set(tmp_path: Path) -> Iterator[tuple[RedisSet, int, int, list[int]]]:
    need_binaries("redis-server", "redis-sentinel")
    rs = RedisSet(tmp_path)
    try:
        master = rs.server()
        replica = rs.server(replica_of=master)
        wait_until(
            lambda: rs.client(replica).info("replication")["master_link_status"] == "up",
            15,
            "the replica's link to the master",
        )
        sentinels = [rs.sentinel(master) for _ in range(3)]

        def all_see_everyone() -> bool:
            for port in sentinels:
                info = rs.client(port).sentinel_master(SERVICE)
                if int(info["num-other-sentinels"]) < 2 or int(info["num-slaves"]) < 1:
                    return False
            return True

        wait_until(all_see_everyone, 20, "three sentinels that know each other and the replica")
        yield rs, master, replica, sentinels
    finally:
        rs.stop()


def _url(sentinels: list[int]) -> str:
    return "redis+sentinel://" + ",".join(f"127.0.0.1:{p}" for p in sentinels) + f"/{SERVICE}/0"


def _now_playing(track_id: str) -> NowPlaying:
    now = datetime.now(UTC)
    return NowPlaying(
        track_id=track_id,
        title=track_id,
        artist="SonicForge",
        genre="house",
        started_at=now,
        position_s=0.0,
        duration_s=180.0,
        play_id=f"p-{track_id}",
        updated_at=now,
    )


@pytest.mark.slow
def test_failover_keeps_every_acknowledged_queue_change(
    sentinel_set: tuple[RedisSet, int, int, list[int]],
) -> None:
    rs, master, replica, sentinels = sentinel_set
    url = _url(sentinels)
    station = RedisStationState.from_url(url)
    assert station.wait_replicas == 1
    station.clear()

    acknowledged: list[str] = []
    failures: list[str] = []
    stop = threading.Event()

    def writer() -> None:
        i = 0
        while not stop.is_set():
            try:
                entry = station.enqueue(f"t{i:05d}")
                acknowledged.append(entry.entry_id)
            except Exception as exc:  # not acknowledged: the caller would retry
                failures.append(type(exc).__name__)
            i += 1
            time.sleep(0.005)

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    wait_until(lambda: len(acknowledged) >= 200, 20, "200 acknowledged enqueues")
    station.set_now_playing(_now_playing("before"))

    rs.kill(master)
    killed_at = time.monotonic()
    before_kill = len(acknowledged)

    # The queue works again: a change made after the kill is acknowledged.
    wait_until(
        lambda: len(acknowledged) > before_kill + 5, FAILOVER_DEADLINE_S, "enqueues after failover"
    )
    # Now-playing through a fresh client (what another API worker sees).
    other = RedisStationState.from_url(url)

    def now_playing_works() -> bool:
        other.set_now_playing(_now_playing("after"))
        current = station.now_playing()
        return current is not None and current.track_id == "after"

    wait_until(now_playing_works, FAILOVER_DEADLINE_S, "now-playing after failover")

    async def limits_work() -> bool:
        limiter = RateLimiter(url, key_prefix=f"sf-test-rl-{time.time_ns()}")
        try:
            item = RateLimiter.item("3/minute")
            results = [await limiter.hit(item, "client-a") for _ in range(4)]
            return None not in results and [r.allowed for r in results if r] == [
                True,
                True,
                True,
                False,
            ]
        finally:
            await limiter.close()

    wait_until(
        lambda: asyncio.run(limits_work()), FAILOVER_DEADLINE_S, "rate limits after failover"
    )
    recovered_s = time.monotonic() - killed_at
    stop.set()
    thread.join(timeout=10)

    promoted = wait_until(
        lambda: rs.client(sentinels[0]).sentinel_get_master_addr_by_name(SERVICE),
        5,
        "the new master's address",
    )
    assert int(promoted[1]) == replica, "the replica was not promoted"
    queue = [e.entry_id for e in station.queue()]
    queued = set(queue)
    lost = [e for e in acknowledged if e not in queued]
    assert lost == [], f"{len(lost)} acknowledged queue changes lost, e.g. {lost[:3]}"
    assert len(queue) == len(queued), "an entry was queued twice (a retried write)"
    print(
        f"\nfailover: queue, now-playing and limits back {recovered_s:.1f} s after SIGKILL; "
        f"{len(acknowledged)} acknowledged enqueues, {len(failures)} refused during failover"
    )
    station.clear()
