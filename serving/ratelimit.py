"""Rate limits through the ``limits`` library, shared by every worker and
replica through Redis (the in-process store when no Redis is configured).

Fixed windows, as ``limits`` keeps them: a counter per identity and window
whose expiry is set by the window's first increment (one atomic Lua script).

Asking the store on every request cost more than the rest of a cached read
together, so a worker takes hits in leases: one increment counts the hit in
hand plus up to ``1/LEASE_SHARE`` of the budget it believes is left (at most
``MAX_LEASE``), and the worker then admits that many more hits of the
window on its own. Leased hits are counted in the store before they are
admitted, so all workers together never admit more than the limit; the
store's count may pass the limit, and the part of a lease beyond it is
simply not granted. What this costs is the other way: hits leased by one
worker and never used there count against the window, so a client spread
over several workers can be refused a little early, by at most the leases
outstanding (a few percent of the limit each). Within ``LEASE_MIN_REMAINING``
of the limit, and for small limits (logins, tests), every hit is counted in
the store alone.

A worker that stops loses only its unused lease (the client gets fewer hits
that window, never more). When the store fails, ordinary limits let
requests through (the API stays up), the failure is logged and
/health/detailed shows it. Strict limits (the login throttle) fail closed
instead: they are counted in this worker's memory until the store is back,
so guessing passwords is never unthrottled, only throttled per worker.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass

from limits import RateLimitItem, parse
from limits.aio.storage import Storage
from limits.storage import MemoryStorage, storage_from_string

from serving.exceptions import RateLimitedError

log = logging.getLogger("serving.ratelimit")

# Leases this worker remembers (about one per active client and limit);
# expired ones are dropped when the map grows past this.
MAX_REMEMBERED_LEASES = 50_000
# A lease is at most this share of the budget believed left, and no more
# than MAX_LEASE hits; none within LEASE_MIN_REMAINING of the limit.
LEASE_SHARE = 32
MAX_LEASE = 256
LEASE_MIN_REMAINING = 64


@dataclass(frozen=True)
class Verdict:
    """One limit's state after a hit."""

    allowed: bool
    limit: int
    remaining: int
    reset_at: float  # unix seconds

    @property
    def retry_after_s(self) -> int:
        return max(1, math.ceil(self.reset_at - time.time()))

    def headers(self) -> dict[str, str]:
        out = {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(math.ceil(self.reset_at)),
        }
        if not self.allowed:
            out["Retry-After"] = str(self.retry_after_s)
        return out


@dataclass
class Lease:
    """This worker's share of one window of one counter in the store."""

    amount: int  # the limit
    reset_at: float  # when the store's counter expires
    stored: int  # the store's count after this worker's last increment
    tokens: int = 0  # hits counted in the store that this worker may still admit

    def remaining(self) -> int:
        return max(0, self.amount - self.stored + self.tokens)


def lease_size(amount: int, stored: int) -> int:
    """Hits to lease beside the one in hand, given the last count seen."""
    left = amount - stored
    if left < LEASE_MIN_REMAINING:
        return 0
    return min(left // LEASE_SHARE, MAX_LEASE)


def storage_uri(redis_url: str | None) -> str:
    if not redis_url:
        return "async+memory://"
    if "://" not in redis_url:
        raise ValueError(f"redis URL {redis_url!r} has no scheme; e.g. redis://127.0.0.1:6379/0")
    return "async+" + redis_url


class RateLimiter:
    """Hits, peeks at and clears limits for identities (IP, user, key).

    With Redis, the async storage (redis-py) of ``limits``; without, its
    in-process memory storage, called directly: it does no I/O, and its
    async twin costs several times more for the same counter.
    """

    def __init__(self, redis_url: str | None, *, key_prefix: str = "sonicforge:rl") -> None:
        self.backend = "redis" if redis_url else "memory"
        self._memory: MemoryStorage | None = None
        self._redis: Storage | None = None
        if redis_url:
            from sonicforge.redis_urls import limits_storage

            uri, options = limits_storage(redis_url)  # Sentinel URLs too
            storage = storage_from_string(
                uri, implementation="redispy", key_prefix=key_prefix, **options
            )
            assert isinstance(storage, Storage)
            self._redis = storage
        else:
            self._memory = MemoryStorage()
        # Where strict limits are counted while the store is unreachable.
        self._fallback = MemoryStorage()
        self._leases: dict[str, Lease] = {}

    @staticmethod
    def item(spec: str) -> RateLimitItem:
        return parse(spec)

    async def _incr(self, key: str, expiry: int, amount: int) -> int:
        if self._memory is not None:
            return self._memory.incr(key, expiry, amount)
        assert self._redis is not None
        return await self._redis.incr(key, expiry, amount)

    async def _get(self, key: str) -> int:
        if self._memory is not None:
            return self._memory.get(key)
        assert self._redis is not None
        return await self._redis.get(key)

    async def _expiry(self, key: str) -> float:
        if self._memory is not None:
            return self._memory.get_expiry(key)
        assert self._redis is not None
        return await self._redis.get_expiry(key)

    def _live(self, key: str, now: float) -> Lease | None:
        lease = self._leases.get(key)
        return lease if lease is not None and lease.reset_at > now else None

    async def hit(
        self, item: RateLimitItem, *identity: str, strict: bool = False
    ) -> Verdict | None:
        """Count one request; ``None`` when the store could not be reached,
        unless ``strict``: then it is counted in this worker's memory."""
        key = item.key_for(*identity)
        now = time.time()
        lease = self._live(key, now)
        if lease is not None and lease.tokens > 0:
            lease.tokens -= 1
            return Verdict(True, lease.amount, lease.remaining(), lease.reset_at)
        extra = lease_size(item.amount, lease.stored if lease is not None else 0)
        try:
            count = await self._incr(key, item.get_expiry(), 1 + extra)
            if count == 1 + extra:  # this increment opened the store's window
                reset = now + item.get_expiry()
            elif lease is not None:
                reset = lease.reset_at
            else:  # opened by another worker: ask when it ends, once
                reset = await self._expiry(key)
        except Exception:  # an unreachable store must not take the API down
            if strict:
                log.warning("rate-limit store unreachable; counted in memory", exc_info=True)
                return self._hit_fallback(item, key)
            log.warning("rate-limit store unreachable; request allowed", exc_info=True)
            return None
        # Of the hits just counted, those within the limit are granted: the
        # one in hand first, the rest leased to this worker.
        granted = max(0, min(1 + extra, item.amount - (count - 1 - extra)))
        current = self._live(key, now)
        if current is None or current.reset_at != reset:
            if len(self._leases) >= MAX_REMEMBERED_LEASES:
                self._leases = {k: v for k, v in self._leases.items() if v.reset_at > now}
            current = self._leases[key] = Lease(item.amount, reset, count)
        current.stored = max(current.stored, count)
        current.tokens += max(0, granted - 1)
        return Verdict(granted > 0, item.amount, current.remaining(), reset)

    def _hit_fallback(self, item: RateLimitItem, key: str) -> Verdict:
        count = self._fallback.incr(key, item.get_expiry(), 1)
        reset = self._fallback.get_expiry(key)
        return Verdict(count <= item.amount, item.amount, max(0, item.amount - count), reset)

    async def peek(self, item: RateLimitItem, *identity: str) -> Verdict | None:
        """The limit's state without counting a request."""
        key = item.key_for(*identity)
        lease = self._live(key, time.time())
        unused = lease.tokens if lease is not None else 0
        try:
            count = await self._get(key) - unused
            reset = await self._expiry(key) if count else time.time() + item.get_expiry()
        except Exception:
            log.warning("rate-limit store unreachable; request allowed", exc_info=True)
            return None
        return Verdict(count < item.amount, item.amount, max(0, item.amount - count), reset)

    async def clear(self, item: RateLimitItem, *identity: str) -> None:
        key = item.key_for(*identity)
        self._leases.pop(key, None)
        self._fallback.clear(key)
        try:
            if self._memory is not None:
                self._memory.clear(key)
            else:
                assert self._redis is not None
                await self._redis.clear(key)
        except Exception:
            log.warning("rate-limit store unreachable; limit not cleared", exc_info=True)

    async def check_storage(self) -> bool:
        if self._memory is not None:
            return True
        assert self._redis is not None
        return bool(await self._redis.check())

    async def close(self) -> None:
        self._leases.clear()
        self._fallback.reset()
        if self._memory is not None:
            self._memory.reset()


def raise_if_refused(verdict: Verdict | None, what: str) -> None:
    if verdict is not None and not verdict.allowed:
        raise RateLimitedError(
            f"too many {what}; try again in {verdict.retry_after_s} s",
            headers=verdict.headers(),
        )
