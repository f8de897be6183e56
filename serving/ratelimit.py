"""Rate limits through the ``limits`` library, shared by every worker and
replica through Redis (the in-process store when no Redis is configured).

Fixed windows, as ``limits.FixedWindowRateLimiter`` keeps them: one atomic
increment of a counter whose expiry is set by the window's first hit. The
increment returns the count, which gives ``X-RateLimit-Remaining``; the
window's end, for ``X-RateLimit-Reset``, is known locally when this worker
opened the window and asked of the store once otherwise, so a request costs
one round trip per limit. When the store fails, requests go through (the
API stays up) and the failure is logged; /health/detailed shows it.
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

# Windows whose end this worker remembers (one per active client); expired
# ones are dropped when the map grows past this.
MAX_REMEMBERED_WINDOWS = 50_000


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
            storage = storage_from_string(
                storage_uri(redis_url), implementation="redispy", key_prefix=key_prefix
            )
            assert isinstance(storage, Storage)
            self._redis = storage
        else:
            self._memory = MemoryStorage()
        self._resets: dict[str, float] = {}

    @staticmethod
    def item(spec: str) -> RateLimitItem:
        return parse(spec)

    async def _incr(self, key: str, expiry: int) -> int:
        if self._memory is not None:
            return self._memory.incr(key, expiry)
        assert self._redis is not None
        return await self._redis.incr(key, expiry)

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

    async def _reset_at(self, key: str, count: int, item: RateLimitItem, now: float) -> float:
        reset = self._resets.get(key)
        if count == 1 or reset is None or reset <= now:
            # Opened by this hit, or opened elsewhere: ask the store once.
            reset = now + item.get_expiry() if count == 1 else await self._expiry(key)
            if len(self._resets) >= MAX_REMEMBERED_WINDOWS:
                self._resets = {k: v for k, v in self._resets.items() if v > now}
            self._resets[key] = reset
        return reset

    async def hit(self, item: RateLimitItem, *identity: str) -> Verdict | None:
        """Count one request; ``None`` when the store could not be reached."""
        key = item.key_for(*identity)
        try:
            count = await self._incr(key, item.get_expiry())
            reset = await self._reset_at(key, count, item, time.time())
        except Exception:  # an unreachable store must not take the API down
            log.warning("rate-limit store unreachable; request allowed", exc_info=True)
            return None
        return Verdict(count <= item.amount, item.amount, max(0, item.amount - count), reset)

    async def peek(self, item: RateLimitItem, *identity: str) -> Verdict | None:
        """The limit's state without counting a request."""
        key = item.key_for(*identity)
        try:
            count = await self._get(key)
            reset = await self._expiry(key) if count else time.time() + item.get_expiry()
        except Exception:
            log.warning("rate-limit store unreachable; request allowed", exc_info=True)
            return None
        return Verdict(count < item.amount, item.amount, max(0, item.amount - count), reset)

    async def clear(self, item: RateLimitItem, *identity: str) -> None:
        key = item.key_for(*identity)
        self._resets.pop(key, None)
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
        if self._memory is not None:
            self._memory.reset()


def raise_if_refused(verdict: Verdict | None, what: str) -> None:
    if verdict is not None and not verdict.allowed:
        raise RateLimitedError(
            f"too many {what}; try again in {verdict.retry_after_s} s",
            headers=verdict.headers(),
        )
