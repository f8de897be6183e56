"""``RedisStationState``: the station-state contract on Redis (redis-py).

Keys live under one prefix (``sonicforge:station:`` by default). Multi-key
changes run as Lua scripts or WATCH transactions, so several API replicas and
the streamer can change the queue at once without losing an entry, and
command ids are handed out and stored in one atomic step.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

import redis

from sonicforge.errors import QueueEntryNotFoundError, StationStateError
from sonicforge.station import StationState, Subscription
from sonicforge.station_values import (
    COMMAND_HISTORY,
    Clock,
    ControlCommand,
    Heartbeat,
    NowPlaying,
    NowPlayingChange,
    OutputStatus,
    QueueEntry,
    QueueSource,
    _decode,
    _encode,
    check_command,
    listener_expiry,
    new_entry,
    reordered,
    utcnow,
)

log = logging.getLogger(__name__)

DEFAULT_PREFIX = "sonicforge:station:"

# INCR and ZADD in one script: a reader can never see command n+1 before n.
_SEND_COMMAND = """
local id = redis.call('INCR', KEYS[1])
local body = string.gsub(ARGV[1], '"command_id":0', '"command_id":' .. id, 1)
redis.call('ZADD', KEYS[2], id, body)
redis.call('ZREMRANGEBYRANK', KEYS[2], 0, -1 - tonumber(ARGV[2]))
return {id, body}
"""
_POP_NEXT = """
local id = redis.call('LPOP', KEYS[1])
if not id then return false end
local body = redis.call('HGET', KEYS[2], id)
redis.call('HDEL', KEYS[2], id)
return body
"""
_REMOVE = """
local removed = redis.call('LREM', KEYS[1], 0, ARGV[1])
if removed == 0 then return false end
local body = redis.call('HGET', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
return body
"""


class _RedisSubscription(Subscription):
    def __init__(self, client: redis.Redis, channel: str) -> None:
        self._pubsub = client.pubsub(ignore_subscribe_messages=True)
        self._pubsub.subscribe(channel)

    def get(self, timeout_s: float | None = None) -> NowPlayingChange | None:
        # get_message answers None for the subscribe confirmation too, so
        # keep reading until a real message or the deadline.
        deadline = time.monotonic() + (timeout_s if timeout_s is not None else 1e9)
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            message = self._pubsub.get_message(timeout=min(left, 3600.0))
            if message is not None and message.get("type") == "message":
                return NowPlayingChange.from_json(message["data"])

    def close(self) -> None:
        self._pubsub.close()


class RedisStationState(StationState):
    """Station state shared by every process that reaches one Redis."""

    def __init__(
        self,
        client: redis.Redis,
        *,
        prefix: str = DEFAULT_PREFIX,
        clock: Clock = utcnow,
        wait_replicas: int = 0,
        wait_timeout_ms: int = 500,
    ) -> None:
        self._r = client
        self.prefix = prefix
        self._clock = clock
        # Queue changes and commands are acknowledged once this many replicas
        # hold them (WAIT), so a failover to a replica loses none of them.
        self.wait_replicas = wait_replicas
        self.wait_timeout_ms = wait_timeout_ms
        self.unreplicated_writes = 0
        self._send = client.register_script(_SEND_COMMAND)
        self._pop = client.register_script(_POP_NEXT)
        self._remove = client.register_script(_REMOVE)

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        prefix: str = DEFAULT_PREFIX,
        clock: Clock = utcnow,
        retries: int = 20,
        backoff_cap_s: float = 0.5,
    ) -> RedisStationState:
        """One server, or a ``redis+sentinel://`` master that failovers move."""
        from sonicforge.redis_urls import parse_redis_url, redis_client

        target = parse_redis_url(url)
        client = redis_client(url, retries=retries, backoff_cap_s=backoff_cap_s)
        return cls(client, prefix=prefix, clock=clock, wait_replicas=target.wait_replicas)

    def _replicated(self) -> None:
        """Wait until ``wait_replicas`` replicas hold the writes made so far.
        Fewer within the timeout (no replica attached, as right after a
        failover) is counted and logged, not refused: the queue stays usable."""
        if self.wait_replicas <= 0:
            return
        acked = int(self._r.wait(self.wait_replicas, self.wait_timeout_ms))
        if acked < self.wait_replicas:
            self.unreplicated_writes += 1
            log.warning(
                "a station change reached %d of %d replicas within %d ms",
                acked,
                self.wait_replicas,
                self.wait_timeout_ms,
            )

    def _k(self, name: str) -> str:
        return self.prefix + name

    def clear(self) -> None:
        """Delete every key under the prefix (tests and a station reset)."""
        keys = list(self._r.scan_iter(match=self.prefix + "*", count=500))
        if keys:
            self._r.delete(*keys)

    # -- upcoming queue ---------------------------------------------------
    def enqueue(
        self,
        track_id: str,
        *,
        source: QueueSource = "request",
        requested_by: str | None = None,
        request_id: str | None = None,
        priority: int = 0,
        display_name: str | None = None,
    ) -> QueueEntry:
        entry = new_entry(
            track_id,
            source,
            requested_by,
            self._clock(),
            request_id=request_id,
            priority=priority,
            display_name=display_name,
        )
        pipe = self._r.pipeline(transaction=True)
        pipe.hset(self._k("queue:entries"), entry.entry_id, _encode(entry))
        pipe.rpush(self._k("queue:order"), entry.entry_id)
        pipe.execute()
        self._replicated()
        return entry

    def remove(self, entry_id: str) -> QueueEntry:
        body = self._remove(
            keys=[self._k("queue:order"), self._k("queue:entries")], args=[entry_id]
        )
        if not body:
            raise QueueEntryNotFoundError(f"no queue entry {entry_id!r}")
        self._replicated()
        return _decode(QueueEntry, body)

    def reorder(self, entry_ids: Sequence[str]) -> list[QueueEntry]:
        order_key = self._k("queue:order")

        def apply(pipe: Any) -> None:
            current = [i.decode() for i in pipe.lrange(order_key, 0, -1)]
            new_order = reordered(current, entry_ids)
            pipe.multi()
            pipe.delete(order_key)
            if new_order:
                pipe.rpush(order_key, *new_order)

        self._r.transaction(apply, order_key)
        self._replicated()
        return self.queue()

    def pop_next(self) -> QueueEntry | None:
        body = self._pop(keys=[self._k("queue:order"), self._k("queue:entries")])
        if body:
            self._replicated()
        return _decode(QueueEntry, body) if body else None

    def queue(self) -> list[QueueEntry]:
        pipe = self._r.pipeline(transaction=True)
        pipe.lrange(self._k("queue:order"), 0, -1)
        pipe.hgetall(self._k("queue:entries"))
        ids, bodies = pipe.execute()
        return [_decode(QueueEntry, bodies[i]) for i in ids if i in bodies]

    # -- now playing ------------------------------------------------------
    def set_now_playing(self, now_playing: NowPlaying | None) -> None:
        change = NowPlayingChange(now_playing, self._clock())
        pipe = self._r.pipeline(transaction=True)
        if now_playing is None:
            pipe.delete(self._k("now_playing"))
        else:
            pipe.set(self._k("now_playing"), _encode(now_playing))
        pipe.publish(self._k("now_playing:changes"), change.to_json())
        pipe.execute()

    def update_position(self, position_s: float) -> None:
        current = self.now_playing()
        if current is None:
            return
        moved = replace(current, position_s=position_s, updated_at=self._clock())
        # Only if the track did not change between our read and this write.
        key = self._k("now_playing")

        def apply(pipe: Any) -> None:
            raw = pipe.get(key)
            if raw is None or json.loads(raw).get("play_id") != current.play_id:
                return
            pipe.multi()
            pipe.set(key, _encode(moved))

        self._r.transaction(apply, key)

    def now_playing(self) -> NowPlaying | None:
        raw = self._r.get(self._k("now_playing"))
        return _decode(NowPlaying, raw) if raw else None

    def subscribe(self) -> Subscription:
        return _RedisSubscription(self._r, self._k("now_playing:changes"))

    # -- control ----------------------------------------------------------
    def send_command(self, command: str, *, issued_by: str | None = None) -> ControlCommand:
        template = ControlCommand(0, check_command(command), self._clock(), issued_by)
        cmd_id, body = self._send(
            keys=[self._k("commands:seq"), self._k("commands")],
            args=[_encode(template), COMMAND_HISTORY],
        )
        cmd = _decode(ControlCommand, body)
        self._replicated()
        if cmd.command_id != int(cmd_id):
            raise StationStateError(f"command id mismatch: {cmd.command_id} != {cmd_id}")
        return cmd

    def commands_since(self, after_id: int) -> list[ControlCommand]:
        bodies: list[bytes] = self._r.zrangebyscore(self._k("commands"), f"({after_id}", "+inf")  # type: ignore[assignment]
        return [_decode(ControlCommand, b) for b in bodies]

    def last_command_id(self) -> int:
        raw = self._r.get(self._k("commands:seq"))
        return int(raw) if raw else 0

    # -- outputs, listeners, heartbeat ------------------------------------
    def set_output_status(self, status: OutputStatus) -> None:
        self._r.hset(self._k("outputs"), status.name, _encode(status))

    def outputs(self) -> list[OutputStatus]:
        raw = self._r.hgetall(self._k("outputs"))
        return sorted((_decode(OutputStatus, v) for v in raw.values()), key=lambda s: s.name)

    def set_listeners(
        self, output: str, count: int, *, replica: str = "local", ttl_s: float = 30.0
    ) -> None:
        expires = listener_expiry(count, ttl_s, self._clock())
        value = json.dumps({"count": count, "expires_at": expires.isoformat()})
        self._r.hset(self._k("listeners"), f"{output}|{replica}", value)

    def listener_counts(self) -> dict[str, int]:
        now = self._clock()
        out: dict[str, int] = {}
        stale = []
        for field_name, raw in self._r.hgetall(self._k("listeners")).items():
            data = json.loads(raw)
            name = field_name.decode() if isinstance(field_name, bytes) else field_name
            output = name.rsplit("|", 1)[0]
            if datetime.fromisoformat(data["expires_at"]) > now:
                out[output] = out.get(output, 0) + int(data["count"])
            else:
                stale.append(field_name)
        if stale:  # replicas that stopped reporting
            self._r.hdel(self._k("listeners"), *stale)
        return out

    def beat(self, info: dict[str, Any]) -> Heartbeat:
        hb = Heartbeat(self._clock(), dict(info))
        self._r.set(self._k("heartbeat"), _encode(hb))
        return hb

    def heartbeat(self) -> Heartbeat | None:
        raw = self._r.get(self._k("heartbeat"))
        return _decode(Heartbeat, raw) if raw else None
