"""Rate limits through the ``limits`` library, shared by every worker and
replica through Redis (the in-process store when no Redis is configured).

Fixed windows: one counter increment per hit, and a reset time that clients
can read from ``X-RateLimit-Reset``. When Redis fails, requests go through
(the API stays up) and the failure is logged; /health/detailed shows it.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass

from limits import RateLimitItem, parse
from limits.aio.storage import Storage
from limits.aio.strategies import FixedWindowRateLimiter
from limits.storage import storage_from_string

from serving.exceptions import RateLimitedError

log = logging.getLogger("serving.ratelimit")


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
    """Hits, tests and clears named limits for identities (IP, user, key)."""

    def __init__(self, redis_url: str | None, *, key_prefix: str = "sonicforge:rl") -> None:
        self.backend = "redis" if redis_url else "memory"
        options: dict[str, str | float | bool] = {}
        if redis_url:
            options = {"implementation": "redispy", "key_prefix": key_prefix}
        storage = storage_from_string(storage_uri(redis_url), **options)
        assert isinstance(storage, Storage)
        self.storage = storage
        self._strategy = FixedWindowRateLimiter(storage)

    @staticmethod
    def item(spec: str) -> RateLimitItem:
        return parse(spec)

    async def hit(self, item: RateLimitItem, *identity: str) -> bool | None:
        """Count one request: whether it is within the limit, or ``None`` when
        the store could not be reached."""
        try:
            return await self._strategy.hit(item, *identity)
        except Exception:  # an unreachable store must not take the API down
            log.warning("rate-limit store unreachable; request allowed", exc_info=True)
            return None

    async def verdict(
        self, item: RateLimitItem, *identity: str, allowed: bool | None = None
    ) -> Verdict | None:
        """The limit's remaining count and reset time (without counting a
        request); ``allowed`` is the outcome of a hit just made, if any."""
        try:
            if allowed is None:
                allowed = await self._strategy.test(item, *identity)
            stats = await self._strategy.get_window_stats(item, *identity)
        except Exception:
            log.warning("rate-limit store unreachable; request allowed", exc_info=True)
            return None
        return Verdict(allowed, item.amount, stats.remaining, stats.reset_time)

    async def clear(self, item: RateLimitItem, *identity: str) -> None:
        try:
            await self._strategy.clear(item, *identity)
        except Exception:
            log.warning("rate-limit store unreachable; limit not cleared", exc_info=True)

    async def check_storage(self) -> bool:
        return bool(await self.storage.check())

    async def close(self) -> None:
        reset = getattr(self.storage, "reset", None)
        if self.backend == "memory" and reset is not None:
            await reset()


def raise_if_refused(verdict: Verdict | None, what: str) -> None:
    if verdict is not None and not verdict.allowed:
        raise RateLimitedError(
            f"too many {what}; try again in {verdict.retry_after_s} s",
            headers=verdict.headers(),
        )
