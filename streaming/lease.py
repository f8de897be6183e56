"""Hot standby: two streamers, one on air, decided by a lease in Redis.

Every streamer started with ``SONICFORGE_STREAM_STANDBY=true`` tries to
take the lease (``SET key holder NX PX ttl``). The holder airs and renews
the lease every ``renew_s``; the others wait, warm (imports done, settings
read), and try again every ``poll_s``. When the holder dies its lease
lapses after at most ``ttl_s`` and a standby takes over.

Two rules keep two streamers from writing one stream folder at once:

- the holder stops airing when a renewal says the lease is someone else's,
  and also when it has not renewed for ``ttl_s`` less one renewal period by
  its own clock (it cannot tell a Redis failover from losing the lease);
- every acquisition increments a fencing token, which the holder reports
  in its heartbeat.

The new holder continues the HLS window the old one left (its media
sequence, with ``#EXT-X-DISCONTINUITY``), and its timeline starts where the
last published segment ended, when that is only seconds ago: the players,
a few segments behind the live edge, hear no gap, and the streamer catches
up with the clock in a short burst.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sonicforge.settings import Settings
from sonicforge.station import StationState
from streaming.errors import StreamingError

log = logging.getLogger(__name__)

# The timeline may resume this far behind the clock (the streamer's pacing
# re-anchors beyond 10 s); a longer outage airs from now, with a real gap.
RESUME_MAX_BEHIND_S = 9.0
RESUME_MAX_AHEAD_S = 2.0

_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""
_ACQUIRE = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return redis.call('INCR', KEYS[2])
end
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return tonumber(redis.call('GET', KEYS[2]) or '0')
end
return 0
"""


def default_holder() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class RedisLease:
    """A named lease in Redis, held by ``holder`` for ``ttl_s`` at a time."""

    def __init__(
        self,
        client: Any,
        key: str,
        *,
        holder: str | None = None,
        ttl_s: float = 3.0,
        renew_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if renew_s * 2 > ttl_s:
            raise ValueError(f"renew_s ({renew_s:g}) must be at most half of ttl_s ({ttl_s:g})")
        self._r = client
        self.key = key
        self.holder = holder or default_holder()
        self.ttl_ms = int(ttl_s * 1000)
        self.renew_s = renew_s
        self._clock = clock
        self._acquire = client.register_script(_ACQUIRE)
        self._renew = client.register_script(_RENEW)
        self._release = client.register_script(_RELEASE)
        self.token = 0
        # By our own clock: until when the lease is surely ours.
        self.valid_until = -1e18

    def _mark(self, sent_at: float) -> None:
        # Measured from before the command was sent, less one renewal
        # period: we stop before Redis could let anyone else in.
        self.valid_until = sent_at + self.ttl_ms / 1000 - self.renew_s

    def try_acquire(self) -> bool:
        sent = self._clock()
        token = int(
            self._acquire(keys=[self.key, self.key + ":token"], args=[self.holder, self.ttl_ms])
        )
        if token:
            self.token = token
            self._mark(sent)
            return True
        return False

    def renew(self) -> bool:
        """True while the lease is ours; ``False`` once Redis says it is not.
        A Redis error propagates: the caller keeps airing until ``valid_until``."""
        sent = self._clock()
        if int(self._renew(keys=[self.key], args=[self.holder, self.ttl_ms])):
            self._mark(sent)
            return True
        self.valid_until = -1e18
        return False

    def still_valid(self) -> bool:
        return self._clock() < self.valid_until

    def release(self) -> None:
        try:
            self._release(keys=[self.key], args=[self.holder])
        except Exception as exc:  # it lapses by itself
            log.warning("could not release the lease %s: %s", self.key, exc)
        self.valid_until = -1e18

    def current_holder(self) -> str | None:
        raw = self._r.get(self.key)
        return raw.decode() if isinstance(raw, bytes) else raw


class LeaseKeeper:
    """Renews a held lease on a thread; sets ``lost`` when it is gone."""

    def __init__(self, lease: RedisLease, *, stop: threading.Event) -> None:
        self.lease = lease
        self.lost = threading.Event()
        self._stop = stop
        self._thread = threading.Thread(target=self._run, name="lease", daemon=True)

    def start(self) -> LeaseKeeper:
        self._thread.start()
        return self

    def _run(self) -> None:
        while not (self._stop.is_set() or self.lost.is_set()):
            try:
                ours: bool | None = self.lease.renew()
            except Exception as exc:
                log.warning("lease renewal failed: %s", exc)
                ours = None
            if ours is False:
                log.warning("lease %s is held by another streamer now", self.lease.key)
                self.lost.set()
            elif ours is None and not self.lease.still_valid():
                log.error("lease %s not renewed in time; leaving the air", self.lease.key)
                self.lost.set()
            else:
                # After a failed renewal, try again sooner than the period.
                self._stop.wait(self.lease.renew_s if ours else self.lease.renew_s / 4)

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)


def hls_resume_point(hls_dir: Path) -> datetime | None:
    """Where the published HLS window ends (program date-time of the last
    segment plus its duration), or ``None`` when there is none."""
    from streaming.outputs.hls_playlist import read_media

    ends = []
    for playlist in sorted(hls_dir.glob("*/index.m3u8")):
        state = read_media(playlist)
        if state and state.entries:
            last = state.entries[-1]
            ends.append(last.program_date_time + timedelta(seconds=last.duration_s))
    return max(ends) if ends else None


def reopen_playlists(hls_dir: Path) -> None:
    """Drop ``#EXT-X-ENDLIST`` from the media playlists a streamer closed."""
    from streaming.outputs.hls_playlist import atomic_write

    for playlist in hls_dir.glob("*/index.m3u8"):
        text = playlist.read_text()
        if "#EXT-X-ENDLIST" in text:
            lines = [line for line in text.splitlines() if line != "#EXT-X-ENDLIST"]
            atomic_write(playlist, ("\n".join(lines) + "\n").encode())


def resume_anchor(end: datetime | None, now: datetime) -> datetime | None:
    """``end`` if the timeline may continue from it, else ``None`` (air from now)."""
    if end is None:
        return None
    behind = (now - end).total_seconds()
    return end if -RESUME_MAX_AHEAD_S <= behind <= RESUME_MAX_BEHIND_S else None


class StandbyStreamer:
    """Waits for the lease, airs while it holds it, waits again after."""

    def __init__(
        self,
        lease: RedisLease,
        air: Callable[[threading.Event], None],
        *,
        poll_s: float = 0.25,
        on_state: Callable[[str], None] | None = None,
    ) -> None:
        self.lease = lease
        self._air = air
        self.poll_s = poll_s
        self._on_state = on_state or (lambda _state: None)
        self.takeovers = 0

    def run(self, stop: threading.Event) -> None:
        log.info("standing by for lease %s as %s", self.lease.key, self.lease.holder)
        self._on_state("standby")
        while not stop.is_set():
            try:
                acquired = self.lease.try_acquire()
            except Exception as exc:
                log.warning("cannot reach the lease %s: %s", self.lease.key, exc)
                acquired = False
            if not acquired:
                stop.wait(self.poll_s)
                continue
            self.takeovers += 1
            log.info("lease %s taken (token %d): on air", self.lease.key, self.lease.token)
            self._on_state("active")
            keeper = LeaseKeeper(self.lease, stop=stop).start()
            air_stop = threading.Event()
            relay = threading.Thread(
                target=_relay, args=(stop, keeper.lost, air_stop), name="lease-relay", daemon=True
            )
            relay.start()
            try:
                self._air(air_stop)
            except Exception:
                # A streamer that cannot start (a store down) hands the air
                # back and stands by again, rather than ending the process.
                log.exception("could not air; standing by again")
                stop.wait(self.poll_s * 4)
            finally:
                air_stop.set()
                keeper.lost.set()  # ends the keeper's loop too
                keeper.join(timeout=5)
                self.lease.release()
            self._on_state("standby")
            log.info("off air; standing by")


def _relay(stop: threading.Event, lost: threading.Event, out: threading.Event) -> None:
    while not out.is_set():
        if stop.wait(0.05) or lost.is_set():
            out.set()
            return


def lease_for(settings: Settings, *, holder: str | None = None) -> RedisLease:
    if not settings.redis_url:
        raise StreamingError(
            "SONICFORGE_STREAM_STANDBY needs SONICFORGE_REDIS_URL: the lease that decides "
            "which streamer airs lives in Redis"
        )
    from sonicforge.redis_urls import redis_client

    # Few, short retries: a renewal must answer within one renewal period.
    client = redis_client(settings.redis_url, retries=2, backoff_cap_s=0.1, socket_timeout_s=0.5)
    return RedisLease(
        client,
        settings.stream_lease_key,
        holder=holder,
        ttl_s=settings.stream_lease_ttl_s,
        renew_s=settings.stream_lease_renew_s,
    )


def run_standby(
    settings: Settings,
    station: StationState,
    *,
    stop: threading.Event,
    max_air_s: float | None = None,
    holder: str | None = None,
) -> StandbyStreamer:
    """``sonicforge stream`` with ``SONICFORGE_STREAM_STANDBY=true``."""
    from streaming.outputs.chunks import resolve_stream_dir
    from streaming.run import StreamLock
    from streaming.service import build_streamer

    lease = lease_for(settings, holder=holder)
    stream_dir = resolve_stream_dir(settings)

    def air(air_stop: threading.Event) -> None:
        lock = StreamLock(stream_dir)
        deadline = time.monotonic() + settings.stream_lease_ttl_s
        while True:  # the old holder's process may take a moment to let go
            try:
                lock.acquire()
                break
            except StreamingError:
                if time.monotonic() > deadline or air_stop.wait(0.05):
                    raise
        try:
            streamer = build_streamer(settings, station=station)
            streamer.resume_at = resume_anchor(
                hls_resume_point(stream_dir / "hls"), streamer.clock.now()
            )
            streamer.run(stop=air_stop, max_air_s=max_air_s)
            # The next holder continues this window: no player may see it end.
            reopen_playlists(stream_dir / "hls")
        finally:
            lock.release()
        if max_air_s is not None:
            stop.set()

    standby = StandbyStreamer(lease, air)
    standby.run(stop)
    return standby
