"""Regressions for the holes an outside attack found (issue 9, part 4):
each test failed on the code before its fix.

Tests that take ``client`` or ``make_context`` run on SQLite and on
PostgreSQL (when its URL is set), where NUL characters and over-long
columns used to answer 500.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from serving.app import create_app
from serving.context import AppContext
from serving.db.models import ApiKey, RefreshFamily, User
from tests.serving.conftest import PASSWORD, Users
from tests.serving.factories import SeededTrack

LOGIN = "/api/v1/auth/login"
KEYS = "/api/v1/api-keys"


def _register(client: TestClient, email: str, **extra: Any) -> httpx.Response:
    body = {"email": email, "display_name": "V", "password": PASSWORD} | extra
    return client.post("/api/v1/auth/register", json=body)


# --- API key names and free text ---------------------------------------


@pytest.mark.parametrize("name", ["   ", "\u0085", "\t\n", "\u3000\u2003"])
def test_a_blank_key_name_is_refused_and_nothing_is_stored(
    client: TestClient, ctx: AppContext, users: Users, name: str
) -> None:
    account = users.create()
    r = client.post(KEYS, json={"name": name, "scopes": ["votes:write"]}, headers=account.headers)
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["code"] == "invalid_request"
    assert error["details"][0]["loc"] == ["body", "name"]
    assert error["details"][0]["type"] in {"blank_text", "control_character"}
    with ctx.db.session() as s:
        assert s.scalars(select(ApiKey).where(ApiKey.user_id == account.user_id)).all() == []
    listed = client.get(KEYS, headers=account.headers)
    assert listed.status_code == 200 and listed.json() == []


def test_a_key_name_is_stored_stripped(client: TestClient, users: Users) -> None:
    account = users.create()
    r = client.post(
        KEYS, json={"name": "  dashboard\u00a0", "scopes": ["votes:write"]}, headers=account.headers
    )
    assert r.status_code == 201, r.text
    assert r.json()["name"] == "dashboard"


def test_listing_keys_survives_a_bad_stored_row(
    client: TestClient, ctx: AppContext, users: Users
) -> None:
    """A row written under older rules (an empty name, a scope that no
    longer exists) is listed, never a 500."""
    account = users.create()
    with ctx.db.session() as s:
        s.add(
            ApiKey(
                user_id=account.user_id,
                name="",
                prefix="sfk_legacy00",
                key_hash="0" * 64,
                scopes=["votes:write", "retired:scope"],
            )
        )
        s.commit()
    r = client.get(KEYS, headers=account.headers)
    assert r.status_code == 200, r.text
    [row] = r.json()
    assert row["name"] == ""
    assert row["scopes"] == ["votes:write"]
    key_id = row["id"]
    assert client.get(f"{KEYS}/{key_id}", headers=account.headers).status_code == 200


@pytest.mark.parametrize("bad", ["a\x00b", "nul\x00", "bell\x07", "del\x7f", "c1\u009b"])
def test_control_characters_are_refused_in_text_fields(
    client: TestClient, users: Users, bad: str
) -> None:
    account = users.create()
    for path, body, headers in (
        ("/api/v1/auth/register", {"email": "nul@example.com", "display_name": bad,
                                   "password": PASSWORD}, {}),
        (KEYS, {"name": bad, "scopes": ["votes:write"]}, account.headers),
        ("/api/v1/auth/register", {"email": "nul2@example.com", "display_name": "N",
                                   "password": "Tempo-Rubato-42" + bad}, {}),
    ):  # fmt: skip
        r = client.post(path, json=body, headers=headers)
        assert r.status_code == 422, (path, r.text)
        error = r.json()["error"]
        assert error["details"][0]["type"] == "control_character"
        assert "control characters" in error["message"]
    assert client.get(KEYS, headers=account.headers).json() == []


def test_control_characters_are_refused_in_queue_entry_ids(
    client: TestClient, users: Users
) -> None:
    operator = users.create("operator")
    r = client.put(
        "/api/v1/stream/queue/order", json={"entry_ids": ["a\x00b"]}, headers=operator.headers
    )
    assert r.status_code == 422, r.text
    assert r.json()["error"]["details"][0]["loc"] == ["body", "entry_ids", 0]


# --- login throttle ----------------------------------------------------


def _slow_password_check(ctx: AppContext, delay_s: float) -> None:
    """Make every password check take ``delay_s``, so that concurrent
    attempts overlap whatever the machine's speed."""
    check = ctx.auth.check_password

    def slow(*args: Any) -> Any:
        time.sleep(delay_s)
        return check(*args)

    ctx.auth.check_password = slow  # type: ignore[method-assign]


def test_parallel_wrong_passwords_are_all_counted_against_the_limit(
    make_context: Callable[..., AppContext],
) -> None:
    ctx = make_context(login_rate_limit_account="5 per 15 minutes")
    with TestClient(create_app(context=ctx)) as client:
        assert _register(client, "par@example.com").status_code == 202
        _slow_password_check(ctx, 0.3)
        bad = {"email": "par@example.com", "password": "Wrong-Guess-99"}
        with ThreadPoolExecutor(20) as pool:
            codes = sorted(pool.map(lambda _: client.post(LOGIN, json=bad).status_code, range(20)))
    assert codes.count(401) == 5, codes
    assert codes.count(429) == 15, codes


@pytest.mark.parametrize("parallel", [20, 40])
def test_parallel_wrong_passwords_over_two_workers_share_the_limit(
    api_workers: Callable[..., list[str]], redis_url: str, parallel: int
) -> None:
    workers = api_workers(
        redis_url=redis_url,
        env={
            "SONICFORGE_LOGIN_RATE_LIMIT_IP": "1000/minute",
            "SONICFORGE_BCRYPT_ROUNDS": "8",  # slow enough for the attempts to overlap
        },
    )
    email = f"pw{parallel}@example.com"
    body = {"email": email, "display_name": "P", "password": PASSWORD}
    assert httpx.post(f"{workers[0]}/api/v1/auth/register", json=body).status_code == 202
    bad = {"email": email, "password": "Wrong-Guess-99"}
    start = threading.Barrier(parallel)

    def attempt(i: int) -> int:
        start.wait(timeout=30)
        return httpx.post(f"{workers[i % 2]}{LOGIN}", json=bad, timeout=30).status_code

    with ThreadPoolExecutor(parallel) as pool:
        codes = sorted(pool.map(attempt, range(parallel)))
    assert codes.count(401) == 5, codes  # the default limit: 5 failures per 15 minutes
    assert codes.count(429) == parallel - 5, codes


@pytest.fixture
def proxied(ctx: AppContext) -> Iterator[TestClient]:
    """The app behind uvicorn's proxy-header handling, trusting the test
    client as ``sonicforge serve`` trusts ``trusted_proxies``."""
    app = ProxyHeadersMiddleware(create_app(context=ctx), trusted_hosts="testclient")  # type: ignore[arg-type]
    with TestClient(app) as c:
        yield c


def _from(address: str) -> dict[str, str]:
    return {"X-Forwarded-For": address}


def test_a_strangers_failures_do_not_lock_the_owner_out(proxied: TestClient) -> None:
    assert _register(proxied, "own@example.com").status_code == 202
    bad = {"email": "own@example.com", "password": "Wrong-Guess-99"}
    good = {"email": "own@example.com", "password": PASSWORD}
    attacker, owner, other = "203.0.113.9", "198.51.100.7", "192.0.2.44"
    codes = [proxied.post(LOGIN, json=bad, headers=_from(attacker)).status_code for _ in range(6)]
    assert codes == [401] * 5 + [429]
    # The account limit still holds for the address that failed ...
    refused = proxied.post(LOGIN, json=good, headers=_from(attacker))
    assert refused.status_code == 429
    assert "failed logins for this account" in refused.json()["error"]["message"]
    # ... but a client that has not failed gets its attempt, and in.
    assert proxied.post(LOGIN, json=good, headers=_from(owner)).status_code == 200
    # A fresh client guessing gets one attempt, then waits like the rest.
    for _ in range(5):
        proxied.post(LOGIN, json=bad, headers=_from(attacker))
    assert proxied.post(LOGIN, json=bad, headers=_from(other)).status_code == 401
    assert proxied.post(LOGIN, json=good, headers=_from(other)).status_code == 429


def test_the_login_throttle_fails_closed_when_redis_is_unreachable(
    make_context: Callable[..., AppContext],
) -> None:
    ctx = make_context(
        redis_url="redis://127.0.0.1:1/0", login_rate_limit_account="3 per 15 minutes"
    )
    with TestClient(create_app(context=ctx)) as client:
        assert _register(client, "down@example.com").status_code == 202
        bad = {"email": "down@example.com", "password": "Wrong-Guess-99"}
        assert [client.post(LOGIN, json=bad).status_code for _ in range(3)] == [401] * 3
        r = client.post(LOGIN, json={"email": "down@example.com", "password": PASSWORD})
        assert r.status_code == 429
        assert r.headers["x-ratelimit-limit"] == "3"
        # The other limits fail open: the API stays up without Redis.
        health = client.get("/health")
        assert health.status_code == 200
        assert "x-ratelimit-limit" not in health.headers


# --- the client address behind a proxy ----------------------------------


@pytest.mark.parametrize("forwarded", ["A" * 65, "not-an-address", "1.2.3.4" + "5" * 80])
def test_a_garbage_forwarded_address_is_not_stored(
    proxied: TestClient, ctx: AppContext, forwarded: str
) -> None:
    assert _register(proxied, "xff@example.com").status_code == 202
    good = {"email": "xff@example.com", "password": PASSWORD}
    r = proxied.post(LOGIN, json=good, headers=_from(forwarded))
    assert r.status_code == 200, r.text
    with ctx.db.session() as s:
        assert s.scalars(select(RefreshFamily.ip)).all() == [None]


def test_a_forwarded_address_is_stored_normalised(proxied: TestClient, ctx: AppContext) -> None:
    assert _register(proxied, "ip6@example.com").status_code == 202
    good = {"email": "ip6@example.com", "password": PASSWORD}
    assert proxied.post(LOGIN, json=good, headers=_from("2001:DB8:0::1")).status_code == 200
    assert proxied.post(LOGIN, json=good, headers=_from("::ffff:10.1.2.3")).status_code == 200
    with ctx.db.session() as s:
        ips = sorted(ip for ip in s.scalars(select(RefreshFamily.ip)) if ip)
    assert ips == ["10.1.2.3", "2001:db8::1"]


def test_garbage_addresses_share_one_rate_limit_budget(
    make_context: Callable[..., AppContext],
) -> None:
    """Rotating junk in X-Forwarded-For must not buy a fresh budget each time."""
    ctx = make_context(rate_limit_ip="3/minute")
    app = ProxyHeadersMiddleware(create_app(context=ctx), trusted_hosts="testclient")  # type: ignore[arg-type]
    with TestClient(app) as client:
        codes = [client.get("/health", headers=_from(f"junk-{i}")).status_code for i in range(4)]
        assert codes == [200, 200, 200, 429]
        assert client.get("/health", headers=_from("192.0.2.1")).status_code == 200


# --- HTTP details ----------------------------------------------------------


@pytest.mark.parametrize("header", ["bytes=abc", "bytes=5-2", "items=0-1", "bytes=-", "bytes"])
def test_a_malformed_range_is_ignored_not_a_text_error(
    client: TestClient, users: Users, seeded: list[SeededTrack], header: str
) -> None:
    headers = users.create("subscriber").headers
    url = f"/api/v1/tracks/{seeded[0].track_id}/audio"
    whole = client.get(url, headers=headers)
    r = client.get(url, headers=headers | {"Range": header})
    if header == "bytes=5-2":  # well-formed but backwards: nothing satisfiable
        assert r.status_code == 416
        assert r.headers["content-type"] == "application/json"
        assert r.json()["error"]["code"] == "range_not_satisfiable"
        assert r.headers["content-range"] == f"bytes */{len(whole.content)}"
    else:
        assert r.status_code == 200, r.text
        assert r.content == whole.content


def test_a_range_past_the_end_answers_the_uniform_error(
    client: TestClient, users: Users, seeded: list[SeededTrack]
) -> None:
    headers = users.create("subscriber").headers
    url = f"/api/v1/tracks/{seeded[0].track_id}/audio"
    r = client.get(url, headers=headers | {"Range": "bytes=99999999-"})
    assert r.status_code == 416
    assert r.json()["error"]["code"] == "range_not_satisfiable"
    assert r.headers["content-range"].startswith("bytes */")


def test_method_not_allowed_names_the_methods_of_that_path(client: TestClient) -> None:
    r = client.options("/api/v1/stream/queue/order")
    assert r.status_code == 405
    assert r.headers["allow"] == "PUT"
    assert r.json()["error"]["code"] == "method_not_allowed"
    assert "allowed: PUT" in r.json()["error"]["message"]
    entry = client.options("/api/v1/stream/queue/some-entry")
    assert entry.headers["allow"] == "DELETE"
    queue = client.patch("/api/v1/stream/queue")
    assert queue.headers["allow"] == "GET, HEAD, POST"


def test_the_schema_states_the_password_policy_and_vote_rules(client: TestClient) -> None:
    schemas = client.get("/openapi.json").json()["components"]["schemas"]
    password = schemas["UserCreate"]["properties"]["password"]
    assert password["minLength"] == 10
    assert password["maxLength"] == 256
    assert "pattern" in password and "passphrase" in password["description"]
    name = schemas["ApiKeyCreate"]["properties"]["name"]
    assert name["minLength"] == 1 and name["maxLength"] == 80 and "pattern" in name
    assert "pattern" in schemas["UserCreate"]["properties"]["display_name"]
    vote = schemas["VoteCreate"]
    assert vote["anyOf"] == [
        {"required": ["stars"], "properties": {"stars": {"type": "integer"}}},
        {"required": ["direction"], "properties": {"direction": {"type": "string"}}},
    ]
    stars = next(s for s in vote["properties"]["stars"]["anyOf"] if s.get("type") == "integer")
    assert (stars["minimum"], stars["maximum"]) == (1, 5)
    direction = vote["properties"]["direction"]["anyOf"][0]
    assert direction["enum"] == ["up", "down"]


def test_text_patterns_in_the_schema_agree_with_validation(client: TestClient) -> None:
    """The documented pattern refuses exactly what the API refuses, so a
    schema-driven client never sends a name the API turns down, nor the
    reverse."""
    import re

    pattern = re.compile(
        client.get("/openapi.json").json()["components"]["schemas"]["ApiKeyCreate"]["properties"][
            "name"
        ]["pattern"]
    )
    from pydantic import ValidationError

    from serving.schemas.apikeys import ApiKeyCreate

    samples = [" ", "\u0085", "a", " a ", "\u3000", "x\u200by", "\ufeff", "a\x00", "é", "\u2028"]
    for text in samples:
        try:
            ApiKeyCreate(name=text, scopes=["votes:write"])  # type: ignore[list-item]
            accepted = True
        except ValidationError:
            accepted = False
        assert accepted == bool(pattern.match(text)), repr(text)


def test_user_listing_survives_a_row_with_an_invalid_email(
    client: TestClient, ctx: AppContext, users: Users
) -> None:
    admin = users.create("admin")
    with ctx.db.session() as s:
        s.add(User(email="legacy-without-domain", display_name="", password_hash="x"))
        s.commit()
    r = client.get("/api/v1/users?limit=100", headers=admin.headers)
    assert r.status_code == 200, r.text
    assert "legacy-without-domain" in [u["email"] for u in r.json()["items"]]
