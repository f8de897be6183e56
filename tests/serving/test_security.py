"""The security suite: forged and stale tokens, refresh reuse, roles,
other users' keys, login throttling, secrets policy, error hygiene,
headers and CORS."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest
from fastapi.testclient import TestClient

from serving.app import create_app
from serving.context import AppContext
from serving.exceptions import InvalidTokenError
from serving.security.tokens import TokenService
from sonicforge.errors import ConfigurationError
from sonicforge.settings import Settings
from tests.serving.conftest import JWT_SECRET, PASSWORD, Users


def _claims(token: str) -> dict[str, Any]:
    return dict(jwt.decode(token, options={"verify_signature": False}))


def _me(client: TestClient, token: str) -> tuple[int, str]:
    r = client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"})
    return r.status_code, r.json().get("error", {}).get("message", "")


def test_a_tampered_token_is_refused(client: TestClient, users: Users) -> None:
    account = users.create()
    header, payload, signature = account.access.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["role"] = "admin"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    status, message = _me(client, f"{header}.{forged}.{signature}")
    assert status == 401
    assert "signature" in message


def test_a_token_signed_with_another_key_is_refused(client: TestClient, users: Users) -> None:
    account = users.create()
    claims = _claims(account.access)
    status, _ = _me(client, jwt.encode(claims, "another-key-" + "x" * 40, algorithm="HS256"))
    assert status == 401


def test_an_alg_none_token_is_refused(client: TestClient, users: Users) -> None:
    account = users.create()
    claims = _claims(account.access)
    unsigned = jwt.encode(claims, None, algorithm="none")  # type: ignore[arg-type]
    status, message = _me(client, unsigned)
    assert status == 401
    assert "'none' is not accepted" in message


def test_an_hs512_token_with_the_right_key_is_still_refused(
    client: TestClient, users: Users
) -> None:
    account = users.create()
    status, message = _me(
        client, jwt.encode(_claims(account.access), JWT_SECRET, algorithm="HS512")
    )
    assert status == 401
    assert "'HS512' is not accepted" in message


def test_an_expired_token_is_refused(client: TestClient, users: Users) -> None:
    account = users.create()
    past = TokenService(
        JWT_SECRET,
        issuer="sonicforge",
        audience="sonicforge-api",
        access_ttl_s=900,
        refresh_ttl_s=3600,
        clock=lambda: datetime.now(UTC) - timedelta(hours=1),
    )
    claims = _claims(account.access)
    token = past.issue("access", sub=claims["sub"], sid=claims["sid"]).token
    status, message = _me(client, token)
    assert status == 401
    assert message == "the access token has expired"


def test_a_token_verified_once_still_expires_and_keeps_its_type(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    service = TokenService(
        JWT_SECRET, issuer="sonicforge", audience="sonicforge-api",
        access_ttl_s=900, refresh_ttl_s=3600,
    )  # fmt: skip
    token = service.issue("access", sub="u1", sid="s1").token
    first = service.decode(token, expected="access")
    assert service.decode(token, expected="access") is first  # remembered, not re-verified
    with pytest.raises(
        InvalidTokenError, match="an access token was given where a refresh token is needed"
    ):
        service.decode(token, expected="refresh")
    # A changed byte is another token, checked in full.
    with pytest.raises(InvalidTokenError):
        service.decode(token[:-2] + ("AA" if not token.endswith("AA") else "BB"), expected="access")
    later = time.time() + 900 + 10
    monkeypatch.setattr("serving.security.tokens.time.time", lambda: later)
    with pytest.raises(InvalidTokenError, match="the access token has expired"):
        service.decode(token, expected="access")


@pytest.mark.parametrize(
    ("claim", "value", "expected"),
    [
        ("aud", "another-api", "another audience"),
        ("iss", "someone-else", "another issuer"),
    ],
)
def test_a_token_for_another_audience_or_issuer_is_refused(
    client: TestClient, users: Users, claim: str, value: str, expected: str
) -> None:
    account = users.create()
    claims = _claims(account.access) | {claim: value}
    status, message = _me(client, jwt.encode(claims, JWT_SECRET, algorithm="HS256"))
    assert status == 401
    assert expected in message


@pytest.mark.parametrize("missing", ["exp", "iat", "jti", "aud", "iss", "sid"])
def test_a_token_missing_a_required_claim_is_refused(
    client: TestClient, users: Users, missing: str
) -> None:
    account = users.create()
    claims = _claims(account.access)
    del claims[missing]
    status, _ = _me(client, jwt.encode(claims, JWT_SECRET, algorithm="HS256"))
    assert status == 401


def test_a_refresh_token_is_not_an_access_token_and_back(client: TestClient, users: Users) -> None:
    account = users.create()
    status, message = _me(client, account.refresh)
    assert status == 401
    assert "a refresh token was given where an access token is needed" in message
    r = client.post("/api/v1/auth/refresh", json={"refresh_token": account.access})
    assert r.status_code == 401


def test_reusing_a_refresh_token_revokes_the_whole_family(client: TestClient, users: Users) -> None:
    account = users.create()
    first = client.post("/api/v1/auth/refresh", json={"refresh_token": account.refresh}).json()
    reuse = client.post("/api/v1/auth/refresh", json={"refresh_token": account.refresh})
    assert reuse.status_code == 401
    assert "already used" in reuse.json()["error"]["message"]
    # The legitimate newest tokens of the family die with it.
    assert (
        client.post(
            "/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]}
        ).status_code
        == 401
    )
    assert _me(client, first["access_token"])[0] == 401
    assert _me(client, account.access)[0] == 401


def test_a_listener_calling_an_operator_route_is_forbidden(
    client: TestClient, users: Users
) -> None:
    listener = users.create("listener")
    r = client.post("/api/v1/stream/control", json={"command": "skip"}, headers=listener.headers)
    assert r.status_code == 403
    assert r.json()["error"]["code"] == "forbidden"
    assert "'stream:control'" in r.json()["error"]["message"]


def test_a_role_change_applies_to_the_next_request(client: TestClient, users: Users) -> None:
    admin, listener = users.create("admin"), users.create()
    assert (
        client.post(
            "/api/v1/stream/control", json={"command": "skip"}, headers=listener.headers
        ).status_code
        == 403
    )
    r = client.patch(
        f"/api/v1/users/{listener.user_id}", json={"role": "operator"}, headers=admin.headers
    )
    assert r.status_code == 200
    assert r.json()["role"] == "operator"
    assert (
        client.post(
            "/api/v1/stream/control", json={"command": "skip"}, headers=listener.headers
        ).status_code
        == 202
    )


def test_a_disabled_account_is_locked_out_at_once(client: TestClient, users: Users) -> None:
    admin, user = users.create("admin"), users.create()
    client.patch(f"/api/v1/users/{user.user_id}", json={"is_active": False}, headers=admin.headers)
    assert _me(client, user.access) == (401, "this account is disabled")
    r = client.post("/api/v1/auth/login", json={"email": user.email, "password": PASSWORD})
    assert r.status_code == 403


def test_reading_another_users_keys_finds_nothing(client: TestClient, users: Users) -> None:
    alice, bob = users.create(), users.create()
    key = client.post(
        "/api/v1/api-keys", json={"name": "a", "scopes": ["votes:write"]}, headers=alice.headers
    ).json()
    assert client.get(f"/api/v1/api-keys/{key['id']}", headers=bob.headers).status_code == 404
    assert client.delete(f"/api/v1/api-keys/{key['id']}", headers=bob.headers).status_code == 404
    assert client.get("/api/v1/api-keys", headers=bob.headers).json() == []
    assert client.get(f"/api/v1/api-keys/{key['id']}", headers=alice.headers).status_code == 200


def test_login_is_throttled_per_account(make_context: Callable[..., AppContext]) -> None:
    ctx = make_context(login_rate_limit_account="3 per 15 minutes")
    with TestClient(create_app(context=ctx)) as client:
        client.post(
            "/api/v1/auth/register",
            json={"email": "t@example.com", "display_name": "T", "password": PASSWORD},
        )
        bad = {"email": "t@example.com", "password": "Wrong-Guess-99"}
        assert [client.post("/api/v1/auth/login", json=bad).status_code for _ in range(3)] == [
            401
        ] * 3
        r = client.post("/api/v1/auth/login", json={"email": "t@example.com", "password": PASSWORD})
        assert r.status_code == 429  # even the right password waits now
        assert int(r.headers["retry-after"]) > 0
        assert r.headers["x-ratelimit-limit"] == "3"
        assert r.headers["x-ratelimit-remaining"] == "0"
        assert "failed logins for this account" in r.json()["error"]["message"]


def test_login_is_throttled_per_address(make_context: Callable[..., AppContext]) -> None:
    ctx = make_context(login_rate_limit_ip="4/minute")
    with TestClient(create_app(context=ctx)) as client:
        codes = [
            client.post(
                "/api/v1/auth/login",
                json={"email": f"u{i}@example.com", "password": "Wrong-Guess-99"},
            ).status_code
            for i in range(5)
        ]
        assert codes == [401, 401, 401, 401, 429]


def test_a_successful_login_clears_the_account_failures(
    make_context: Callable[..., AppContext],
) -> None:
    ctx = make_context(login_rate_limit_account="2 per 15 minutes")
    with TestClient(create_app(context=ctx)) as client:
        client.post(
            "/api/v1/auth/register",
            json={"email": "s@example.com", "display_name": "S", "password": PASSWORD},
        )
        bad, good = (
            {"email": "s@example.com", "password": "Wrong-Guess-99"},
            {"email": "s@example.com", "password": PASSWORD},
        )
        assert client.post("/api/v1/auth/login", json=bad).status_code == 401
        assert client.post("/api/v1/auth/login", json=good).status_code == 200
        assert client.post("/api/v1/auth/login", json=bad).status_code == 401
        assert client.post("/api/v1/auth/login", json=good).status_code == 200


def test_bcrypt_cost_is_12_by_default_and_lower_only_in_tests() -> None:
    assert Settings().bcrypt_rounds == 12
    with pytest.raises(ConfigurationError, match="allowed only in tests"):
        Settings(environment="development", bcrypt_rounds=4).check_serving()
    Settings(environment="test", bcrypt_rounds=4, jwt_secret=JWT_SECRET).check_serving()


@pytest.mark.parametrize("secret", [None, "changethis", "secret", "short-key"])
def test_placeholder_jwt_secrets_are_refused_outside_development(secret: str | None) -> None:
    with pytest.raises(ConfigurationError, match="SONICFORGE_JWT_SECRET"):
        Settings(environment="production", jwt_secret=secret).check_serving()


def test_development_keeps_a_random_key_shared_by_workers(tmp_path: Any) -> None:
    a = Settings(var_dir=tmp_path).resolved_jwt_secret()
    b = Settings(var_dir=tmp_path).resolved_jwt_secret()
    assert a == b
    assert len(a) == 64
    assert (tmp_path / "secrets" / "jwt.key").stat().st_mode & 0o777 == 0o600


def test_an_unexpected_error_shows_no_stack_trace(
    client: TestClient, ctx: AppContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom() -> None:
        raise RuntimeError("secret internals /etc/passwd")

    monkeypatch.setattr(ctx.station, "queue", boom)
    r = client.get("/api/v1/stream/queue", headers={"X-Request-ID": "req-123"})
    assert r.status_code == 500
    assert r.json() == {
        "error": {
            "code": "internal_error",
            "message": "an unexpected error occurred; quote the request id when reporting it",
            "request_id": "req-123",
            "details": [],
        }
    }
    assert "Traceback" not in r.text and "passwd" not in r.text
    assert r.headers["x-request-id"] == "req-123"
    assert r.headers["x-content-type-options"] == "nosniff"


def test_validation_errors_do_not_echo_the_input(client: TestClient) -> None:
    r = client.post(
        "/api/v1/auth/login", json={"email": "not-an-email", "password": "hunter2-SECRET"}
    )
    assert r.status_code == 422
    assert "hunter2-SECRET" not in r.text
    assert r.json()["error"]["details"][0]["loc"] == ["body", "email"]


def test_security_headers_are_on_every_response(client: TestClient) -> None:
    for path in ("/health", "/api/v1/tracks", "/nope"):
        h = client.get(path).headers
        assert h["content-security-policy"].startswith("default-src 'none'")
        assert h["strict-transport-security"] == "max-age=63072000; includeSubDomains"
        assert h["x-frame-options"] == "DENY"
        assert h["x-content-type-options"] == "nosniff"
        assert h["referrer-policy"] == "strict-origin-when-cross-origin"
        assert "camera=()" in h["permissions-policy"]
        assert len(h["x-request-id"]) == 32


def test_a_bad_request_id_is_replaced(client: TestClient) -> None:
    r = client.get("/health", headers={"X-Request-ID": "bad id\twith spaces"})
    assert r.headers["x-request-id"] != "bad id\twith spaces"


def test_cors_allows_only_the_configured_origins(make_context: Callable[..., AppContext]) -> None:
    ctx = make_context(cors_origins=["https://app.example.com"])
    with TestClient(create_app(context=ctx)) as client:
        ok = client.options(
            "/api/v1/tracks",
            headers={"Origin": "https://app.example.com", "Access-Control-Request-Method": "GET"},
        )
        assert ok.status_code == 200
        assert ok.headers["access-control-allow-origin"] == "https://app.example.com"
        bad = client.options(
            "/api/v1/tracks",
            headers={"Origin": "https://evil.example.com", "Access-Control-Request-Method": "GET"},
        )
        assert bad.status_code == 400
        assert "access-control-allow-origin" not in bad.headers


def test_oversized_or_unsized_bodies_are_refused_unread(client: TestClient) -> None:
    big = client.post("/api/v1/auth/login", content=b"{" + b" " * 70_000 + b"}",
                      headers={"Content-Type": "application/json"})  # fmt: skip
    assert big.status_code == 413
    assert big.json()["error"]["code"] == "payload_too_large"
    assert big.headers["x-frame-options"] == "DENY"

    def chunks() -> Any:
        yield b'{"email": "a@example.com", '
        yield b'"password": "x"}'

    unsized = client.post(
        "/api/v1/auth/login", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert unsized.status_code == 411
