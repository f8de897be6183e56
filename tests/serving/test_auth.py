"""Registration, login, refresh, logout and /me."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select

from serving.context import AppContext
from serving.db.models import OutboxEvent, User
from tests.serving.conftest import PASSWORD, Users


def test_register_creates_a_listener_with_a_bcrypt_hash(
    client: TestClient, ctx: AppContext
) -> None:
    r = client.post(
        "/api/v1/auth/register",
        json={"email": "Ada@Example.com", "display_name": " Ada ", "password": PASSWORD},
    )
    assert r.status_code == 202
    assert r.json()["status"] == "accepted"
    assert r.json()["email"] == "ada@example.com"
    assert "password" not in r.text and "hash" not in r.text
    with ctx.db.session() as s:
        user = s.scalar(select(User).where(User.email == "ada@example.com"))
        assert user is not None
        assert user.display_name == "Ada"
        assert user.role == "listener"
        assert user.is_active is True
        assert user.password_hash.startswith("$2b$04$")  # the test cost; 12+ outside tests
        events = s.scalars(select(OutboxEvent.type).where(OutboxEvent.user_id == user.id)).all()
    assert events == ["user_registered"]
    tokens = client.post(
        "/api/v1/auth/login", json={"email": "ada@example.com", "password": PASSWORD}
    ).json()
    me = client.get(
        "/api/v1/auth/me", headers={"Authorization": f"Bearer {tokens['access_token']}"}
    )
    assert me.json()["email"] == "ada@example.com"
    assert me.json()["display_name"] == "Ada"


def test_registering_a_taken_email_answers_as_for_a_new_one(
    client: TestClient, ctx: AppContext
) -> None:
    """The answer must not tell whether an address has an account (409
    naming it did), and the existing account must be left as it was."""
    body = {"email": "bo@example.com", "display_name": "Bo", "password": PASSWORD}
    first = client.post("/api/v1/auth/register", json=body)
    again = client.post(
        "/api/v1/auth/register",
        json=body
        | {"email": "BO@example.com", "display_name": "Mallory", "password": "Other-Pass-77"},
    )
    fresh = client.post("/api/v1/auth/register", json=body | {"email": "cy@example.com"})
    assert first.status_code == again.status_code == fresh.status_code == 202
    assert again.json() == first.json()
    assert set(fresh.json()) == set(first.json())
    assert fresh.json()["message"] == first.json()["message"]
    assert "already" not in again.text
    with ctx.db.session() as s:
        users = s.scalars(select(User).where(User.email == "bo@example.com")).all()
        assert [u.display_name for u in users] == ["Bo"]
    ok = client.post("/api/v1/auth/login", json={"email": "bo@example.com", "password": PASSWORD})
    assert ok.status_code == 200
    taken = {"email": "bo@example.com", "password": "Other-Pass-77"}
    assert client.post("/api/v1/auth/login", json=taken).status_code == 401


def test_weak_password_is_refused_with_every_broken_rule(client: TestClient) -> None:
    r = client.post(
        "/api/v1/auth/register",
        json={"email": "carl@example.com", "display_name": "C", "password": "carlabc"},
    )
    assert r.status_code == 422
    error = r.json()["error"]
    assert error["code"] == "weak_password"
    assert "at least 10 are needed" in error["message"]
    assert "three of lowercase, uppercase, digits and symbols" in error["message"]
    assert "name part of your email" in error["message"]


def test_a_long_passphrase_passes_without_mixed_classes(client: TestClient) -> None:
    r = client.post(
        "/api/v1/auth/register",
        json={
            "email": "dee@example.com",
            "display_name": "D",
            "password": "correct horse battery staple",
        },
    )
    assert r.status_code == 202


def test_login_returns_a_token_pair_and_me_answers(client: TestClient, users: Users) -> None:
    account = users.create()
    r = client.get("/api/v1/auth/me", headers=account.headers)
    assert r.status_code == 200
    me = r.json()
    assert me["id"] == account.user_id
    assert me["email"] == account.email
    assert me["role"] == "listener"
    assert me["auth"] == "jwt"
    assert me["permissions"] == ["keys:manage", "shares:create", "votes:write"]


def test_login_pair_has_the_configured_lifetimes(client: TestClient, users: Users) -> None:
    account = users.create()
    tokens = users.login(account.email)
    assert tokens["token_type"] == "bearer"
    assert tokens["expires_in"] == 15 * 60
    assert tokens["refresh_expires_in"] == 7 * 24 * 3600


def test_wrong_password_and_unknown_email_get_the_same_answer(
    client: TestClient, users: Users
) -> None:
    account = users.create()
    wrong = client.post(
        "/api/v1/auth/login", json={"email": account.email, "password": "Nope-Nope-123"}
    )
    unknown = client.post(
        "/api/v1/auth/login", json={"email": "ghost@example.com", "password": PASSWORD}
    )
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json()["error"]["message"] == unknown.json()["error"]["message"]
    assert wrong.json()["error"]["code"] == "invalid_credentials"
    assert wrong.headers["www-authenticate"] == "Bearer"


def test_refresh_rotates_both_tokens(client: TestClient, users: Users) -> None:
    account = users.create()
    r = client.post("/api/v1/auth/refresh", json={"refresh_token": account.refresh})
    assert r.status_code == 200
    pair = r.json()
    assert pair["refresh_token"] != account.refresh
    assert (
        client.get(
            "/api/v1/auth/me", headers={"Authorization": f"Bearer {pair['access_token']}"}
        ).status_code
        == 200
    )
    again = client.post("/api/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]})
    assert again.status_code == 200


def test_logout_revokes_the_session_at_once(client: TestClient, users: Users) -> None:
    account = users.create()
    r = client.post("/api/v1/auth/logout", headers=account.headers)
    assert r.status_code == 200
    assert r.json()["revoked"] is True
    me = client.get("/api/v1/auth/me", headers=account.headers)
    assert me.status_code == 401
    assert "revoked" in me.json()["error"]["message"]
    refreshed = client.post("/api/v1/auth/refresh", json={"refresh_token": account.refresh})
    assert refreshed.status_code == 401


def test_logout_of_one_session_leaves_the_others(client: TestClient, users: Users) -> None:
    account = users.create()
    other = users.login(account.email)
    assert client.post("/api/v1/auth/logout", headers=account.headers).status_code == 200
    r = client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {other['access_token']}"})
    assert r.status_code == 200


def test_me_without_credentials_is_401_with_how_to_authenticate(client: TestClient) -> None:
    r = client.get("/api/v1/auth/me")
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "not_authenticated"
    assert "X-API-Key" in r.json()["error"]["message"]
