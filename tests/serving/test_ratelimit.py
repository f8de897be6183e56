"""Rate limits: 429 with Retry-After and X-RateLimit-*, per address and per
user or key, and shared by two API workers through a real Redis."""

from __future__ import annotations

import asyncio
import random
import secrets
import time
from collections.abc import Callable

import httpx
import pytest
from fastapi.testclient import TestClient

from serving.app import create_app
from serving.context import AppContext
from serving.ratelimit import LEASE_MIN_REMAINING, LEASE_SHARE, MAX_LEASE, RateLimiter
from tests.serving.conftest import Users


def test_limits_per_address_answer_429_with_headers(
    make_context: Callable[..., AppContext],
) -> None:
    ctx = make_context(rate_limit_ip="3/minute")
    with TestClient(create_app(context=ctx)) as client:
        answers = [client.get("/health") for _ in range(4)]
        assert [r.status_code for r in answers] == [200, 200, 200, 429]
        assert [r.headers["x-ratelimit-remaining"] for r in answers] == ["2", "1", "0", "0"]
        refused = answers[-1]
        assert refused.headers["x-ratelimit-limit"] == "3"
        assert 0 < int(refused.headers["retry-after"]) <= 60
        assert int(refused.headers["x-ratelimit-reset"]) >= int(time.time())
        assert refused.json()["error"]["code"] == "rate_limited"
        assert refused.headers["x-content-type-options"] == "nosniff"
        # Probes are never limited.
        assert client.get("/live").status_code == 200
        assert client.get("/ready").status_code == 200


def test_limits_per_user_are_separate_from_the_address(
    make_context: Callable[..., AppContext],
) -> None:
    ctx = make_context(rate_limit_principal="2/minute")
    with TestClient(create_app(context=ctx)) as client:
        users = Users(client, ctx)
        alice, bob = users.create(), users.create()
        codes = [client.get("/api/v1/auth/me", headers=alice.headers).status_code for _ in range(3)]
        assert codes == [200, 200, 429]
        assert client.get("/api/v1/auth/me", headers=bob.headers).status_code == 200
        assert client.get("/api/v1/tracks").status_code == 200  # anonymous: the address's budget


def test_a_forged_token_cannot_spend_someone_elses_budget(
    make_context: Callable[..., AppContext],
) -> None:
    ctx = make_context(rate_limit_principal="2/minute")
    with TestClient(create_app(context=ctx)) as client:
        victim = Users(client, ctx).create()
        forged = victim.access[:-4] + ("AAAA" if not victim.access.endswith("AAAA") else "BBBB")
        for _ in range(3):
            assert (
                client.get(
                    "/api/v1/auth/me", headers={"Authorization": f"Bearer {forged}"}
                ).status_code
                == 401
            )
        assert client.get("/api/v1/auth/me", headers=victim.headers).status_code == 200


def test_an_unreachable_store_lets_requests_through(
    make_context: Callable[..., AppContext],
) -> None:
    ctx = make_context(redis_url="redis://127.0.0.1:1/0", rate_limit_ip="1/minute")
    with TestClient(create_app(context=ctx)) as client:
        r = client.get("/health")
        assert r.status_code == 200
        assert "x-ratelimit-limit" not in r.headers


@pytest.fixture
def two_workers(api_workers: Callable[..., list[str]], redis_url: str) -> list[str]:
    return api_workers(redis_url=redis_url, env={"SONICFORGE_RATE_LIMIT_IP": "10/minute"})


def test_two_workers_share_one_budget_through_redis(two_workers: list[str]) -> None:
    answers = [httpx.get(f"{two_workers[i % 2]}/health", timeout=5) for i in range(12)]
    assert [r.status_code for r in answers] == [200] * 10 + [429, 429]
    remaining = [int(r.headers["x-ratelimit-remaining"]) for r in answers[:10]]
    assert remaining == list(range(9, -1, -1))  # one count, whichever worker answered
    assert int(answers[-1].headers["retry-after"]) > 0


# --- leases: the limiter on its own, in memory and on the real Redis ---


@pytest.fixture(params=["memory", "redis"])
def store_url(request: pytest.FixtureRequest) -> str | None:
    if request.param == "memory":
        return None
    return str(request.getfixturevalue("redis_url"))


def _limiters(store_url: str | None, n: int) -> list[RateLimiter]:
    """``n`` workers' limiters on one store (one memory store, shared by
    handing the first one's storage to the others, for the memory case)."""
    prefix = f"sonicforge-test:{secrets.token_hex(4)}"
    first = RateLimiter(store_url, key_prefix=prefix)
    rest = [RateLimiter(store_url, key_prefix=prefix) for _ in range(n - 1)]
    if store_url is None:
        for limiter in rest:
            limiter._memory = first._memory
    return [first, *rest]


def _count_increments(limiter: RateLimiter) -> list[int]:
    sizes: list[int] = []
    incr = limiter._incr

    async def counting(key: str, expiry: int, amount: int) -> int:
        sizes.append(amount)
        return await incr(key, expiry, amount)

    limiter._incr = counting  # type: ignore[method-assign]
    return sizes


def test_a_lease_is_counted_in_the_store_before_its_hits_are_admitted(
    store_url: str | None,
) -> None:
    async def run() -> None:
        (limiter,) = _limiters(store_url, 1)
        sizes = _count_increments(limiter)
        item = RateLimiter.item("10000/minute")
        verdicts = [await limiter.hit(item, "ip", "10.0.0.1") for _ in range(300)]
        assert all(v is not None and v.allowed for v in verdicts)
        # One worker alone: exact remaining counts, however the hits were leased.
        assert [v.remaining for v in verdicts if v] == list(range(9999, 9699, -1))
        # Round trips: the first hit leased 10000 // 32 capped at 256, and so on.
        assert sizes == [1 + MAX_LEASE, 1 + MAX_LEASE]
        stored = await limiter._get(item.key_for("ip", "10.0.0.1"))
        assert stored == sum(sizes) >= 300
        await limiter.close()

    asyncio.run(run())


def test_workers_sharing_a_store_never_admit_more_than_the_limit(store_url: str | None) -> None:
    async def run() -> None:
        workers = _limiters(store_url, 3)
        item = RateLimiter.item("500/minute")
        rng = random.Random(5)
        allowed = 0
        for _ in range(1500):
            verdict = await rng.choice(workers).hit(item, "user", "u1")
            assert verdict is not None
            allowed += verdict.allowed
        key = item.key_for("user", "u1")
        unused = sum(lease.tokens for w in workers if (lease := w._leases.get(key)))
        assert allowed <= 500
        # Every hit of the limit was either admitted or is still leased out.
        assert allowed + unused == 500
        assert unused <= len(workers) * (500 // LEASE_SHARE)
        for w in workers:
            await w.close()

    asyncio.run(run())


def test_small_limits_are_counted_in_the_store_hit_by_hit(store_url: str | None) -> None:
    async def run() -> None:
        workers = _limiters(store_url, 2)
        sizes = [_count_increments(w) for w in workers]
        item = RateLimiter.item(f"{LEASE_MIN_REMAINING - 1}/minute")
        verdicts = [await workers[i % 2].hit(item, "ip", "x") for i in range(LEASE_MIN_REMAINING)]
        assert [v.allowed for v in verdicts if v] == [True] * (LEASE_MIN_REMAINING - 1) + [False]
        assert [v.remaining for v in verdicts if v][:3] == [
            LEASE_MIN_REMAINING - 2 - i for i in range(3)
        ]
        assert set(sizes[0] + sizes[1]) == {1}

    asyncio.run(run())


def test_a_lease_ends_with_its_window() -> None:
    async def run() -> None:
        (limiter,) = _limiters(None, 1)
        item = RateLimiter.item("6400/second")
        first = await limiter.hit(item, "ip", "y")
        assert first is not None and first.remaining == 6399
        await asyncio.sleep(1.1)
        second = await limiter.hit(item, "ip", "y")
        assert second is not None and second.remaining == 6399  # a new window, a new count
        assert second.reset_at > first.reset_at

    asyncio.run(run())


def test_a_peek_does_not_count_leased_hits_as_spent() -> None:
    async def run() -> None:
        (limiter,) = _limiters(None, 1)
        item = RateLimiter.item("1000/minute")
        for _ in range(10):
            await limiter.hit(item, "acct", "a")
        peeked = await limiter.peek(item, "acct", "a")
        assert peeked is not None and peeked.remaining == 990

    asyncio.run(run())


def test_listener_paths_are_not_spent_from_the_address_budget(
    make_context: Callable[..., AppContext],
) -> None:
    """Many HLS players share one address (NAT, a CDN edge) and each fetches
    every few seconds: the per-address API budget does not apply to them."""
    ctx = make_context(rate_limit_ip="3/minute")
    with TestClient(create_app(context=ctx)) as client:
        fetches = [client.get(f"/hls/stream_{i}.m3u8").status_code for i in range(10)]
        assert 429 not in fetches and set(fetches) <= {404, 503}
        assert [client.get("/health").status_code for _ in range(4)] == [200, 200, 200, 429]
