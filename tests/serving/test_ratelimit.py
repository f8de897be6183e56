"""Rate limits: 429 with Retry-After and X-RateLimit-*, per address and per
user or key, and shared by two API workers through a real Redis."""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from serving.app import create_app
from serving.context import AppContext
from serving.db.session import migrate
from tests.serving.conftest import JWT_SECRET, Users


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


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def two_workers(redis_url: str, tmp_path: Path) -> Iterator[list[str]]:
    """Two API processes (as two uvicorn workers or two replicas) sharing
    one Redis, each on its own port so a test can pick the worker."""
    db = f"sqlite:///{tmp_path / 'app.db'}"
    migrate(db)
    env = {
        **os.environ,
        "SONICFORGE_ENVIRONMENT": "test",
        "SONICFORGE_JWT_SECRET": JWT_SECRET,
        "SONICFORGE_BCRYPT_ROUNDS": "4",
        "SONICFORGE_VAR_DIR": str(tmp_path / "var"),
        "SONICFORGE_APP_DATABASE_URL": db,
        "SONICFORGE_REDIS_URL": redis_url,
        "SONICFORGE_RATE_LIMIT_IP": "10/minute",
        "SONICFORGE_RATE_LIMIT_KEY_PREFIX": f"sonicforge-test:{secrets.token_hex(4)}",
        "SONICFORGE_ACCESS_LOG": "false",
        "SONICFORGE_LOG_LEVEL": "WARNING",
    }
    ports = [_free_port(), _free_port()]
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "--factory",
                "serving.app:create_app",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--log-level",
                "warning",
            ],
            env=env,
        )
        for port in ports
    ]
    urls = [f"http://127.0.0.1:{port}" for port in ports]
    try:
        deadline = time.monotonic() + 60
        for url in urls:
            while True:
                try:
                    if httpx.get(f"{url}/live", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                assert time.monotonic() < deadline, "the API workers did not start"
                time.sleep(0.2)
        yield urls
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=15)


def test_two_workers_share_one_budget_through_redis(two_workers: list[str]) -> None:
    answers = [httpx.get(f"{two_workers[i % 2]}/health", timeout=5) for i in range(12)]
    assert [r.status_code for r in answers] == [200] * 10 + [429, 429]
    remaining = [int(r.headers["x-ratelimit-remaining"]) for r in answers[:10]]
    assert remaining == list(range(9, -1, -1))  # one count, whichever worker answered
    assert int(answers[-1].headers["retry-after"]) > 0
