"""The streamer's lease on a real Redis, and where a standby resumes."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis

from streaming.lease import (
    LeaseKeeper,
    RedisLease,
    StandbyStreamer,
    hls_resume_point,
    reopen_playlists,
    resume_anchor,
)
from streaming.outputs.hls_playlist import SegmentEntry, render_media


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    r = redis.Redis.from_url(redis_url)
    yield r
    r.close()


@pytest.fixture
def key(client: redis.Redis) -> Iterator[str]:
    name = f"sonicforge:test:lease:{uuid.uuid4().hex}"
    yield name
    client.delete(name, name + ":token")


def test_one_holder_at_a_time_with_growing_tokens(client: redis.Redis, key: str) -> None:
    a = RedisLease(client, key, holder="a", ttl_s=1.0, renew_s=0.2)
    b = RedisLease(client, key, holder="b", ttl_s=1.0, renew_s=0.2)
    assert a.try_acquire() and a.token == 1
    assert not b.try_acquire()
    assert a.renew() and a.still_valid()
    assert not b.renew()  # renewing someone else's lease is refused
    assert a.current_holder() == "a"
    a.release()
    assert not a.still_valid()
    assert b.try_acquire() and b.token == 2
    # b stops renewing: the lease lapses by itself and a may take it.
    deadline = time.monotonic() + 5
    while not a.try_acquire():
        assert time.monotonic() < deadline, "the lease never lapsed"
        time.sleep(0.05)
    assert a.token == 3 and not b.renew()


def test_the_holder_stops_before_anyone_else_can_start(client: redis.Redis, key: str) -> None:
    a = RedisLease(client, key, holder="a", ttl_s=1.0, renew_s=0.3)
    assert a.try_acquire()
    # By a's clock the lease is its own for ttl less one renewal period,
    # which ends before Redis lets the key expire.
    assert a.valid_until - time.monotonic() <= 0.7 + 0.01
    assert client.pttl(key) > 900


def test_the_keeper_notices_a_lost_lease(client: redis.Redis, key: str) -> None:
    a = RedisLease(client, key, holder="a", ttl_s=1.0, renew_s=0.1)
    assert a.try_acquire()
    stop = threading.Event()
    keeper = LeaseKeeper(a, stop=stop).start()
    time.sleep(0.3)
    assert not keeper.lost.is_set()
    client.set(key, "intruder")  # e.g. an operator handing the air over
    assert keeper.lost.wait(2.0)
    stop.set()
    keeper.join(2)


def _playlist(folder: Path, start: datetime, n: int, *, first_seq: int = 10) -> None:
    folder.mkdir(parents=True)
    entries = [
        SegmentEntry(
            first_seq + i, f"seg_{first_seq + i:08d}.ts", 2.0, start + timedelta(seconds=2 * i)
        )
        for i in range(n)
    ]
    (folder / "index.m3u8").write_text(
        render_media(entries, target_s=2, discontinuity_seq=0, ended=True)
    )


def test_the_resume_point_is_where_the_published_window_ends(tmp_path: Path) -> None:
    start = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    _playlist(tmp_path / "hls" / "aac_64k", start, 3)
    _playlist(tmp_path / "hls" / "aac_128k", start, 4)
    end = hls_resume_point(tmp_path / "hls")
    assert end == start + timedelta(seconds=8)
    assert resume_anchor(end, end + timedelta(seconds=3)) == end
    assert resume_anchor(end, end + timedelta(seconds=30)) is None  # a long outage airs from now
    assert resume_anchor(None, end) is None
    assert hls_resume_point(tmp_path / "nothing") is None
    reopen_playlists(tmp_path / "hls")
    assert "#EXT-X-ENDLIST" not in (tmp_path / "hls" / "aac_64k" / "index.m3u8").read_text()


def test_a_streamer_that_cannot_air_hands_the_lease_back(client: redis.Redis, key: str) -> None:
    lease = RedisLease(client, key, holder="a", ttl_s=1.0, renew_s=0.2)
    stop = threading.Event()
    calls: list[bool] = []

    def air(air_stop: threading.Event) -> None:
        calls.append(air_stop.is_set())
        assert client.get(key) == b"a"  # on air only while holding the lease
        if len(calls) == 1:
            raise RuntimeError("the lakehouse is down")
        stop.set()

    standby = StandbyStreamer(lease, air, poll_s=0.01)
    standby.run(stop)
    assert calls == [False, False] and standby.takeovers == 2
    assert client.get(key) is None  # released on the way out
