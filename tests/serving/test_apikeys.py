"""API keys: shown once, stored hashed, scoped, last-used, two headers."""

from __future__ import annotations

import hashlib

from fastapi.testclient import TestClient
from sqlalchemy import select

from serving.context import AppContext
from serving.db.models import ApiKey
from tests.serving.conftest import Users
from tests.serving.factories import SeededTrack


def _create(
    client: TestClient, headers: dict[str, str], scopes: list[str], name: str = "k"
) -> dict:  # type: ignore[type-arg]
    r = client.post("/api/v1/api-keys", json={"name": name, "scopes": scopes}, headers=headers)
    assert r.status_code == 201, r.text
    return dict(r.json())


def test_a_key_is_shown_once_and_stored_as_its_hash(
    client: TestClient, ctx: AppContext, users: Users
) -> None:
    account = users.create()
    created = _create(client, account.headers, ["votes:write"], name="dashboard")
    assert created["key"].startswith("sfk_")
    assert created["prefix"] == created["key"][:12]
    assert created["name"] == "dashboard"
    assert created["scopes"] == ["votes:write"]
    assert created["last_used_at"] is None
    assert created["revoked_at"] is None
    listed = client.get("/api/v1/api-keys", headers=account.headers).json()
    assert [k["id"] for k in listed] == [created["id"]]
    assert "key" not in listed[0]
    with ctx.db.session() as s:
        row = s.scalar(select(ApiKey).where(ApiKey.id == created["id"]))
        assert row is not None
        assert row.key_hash == hashlib.sha256(created["key"].encode()).hexdigest()
        assert created["key"] not in (row.key_hash, row.prefix)


def test_a_key_works_as_bearer_and_as_x_api_key(client: TestClient, users: Users) -> None:
    account = users.create()
    key = _create(client, account.headers, ["votes:write"])["key"]
    for headers in ({"Authorization": f"Bearer {key}"}, {"X-API-Key": key}):
        r = client.get("/api/v1/auth/me", headers=headers)
        assert r.status_code == 200
        assert r.json()["id"] == account.user_id
        assert r.json()["auth"] == "api_key"
        assert r.json()["permissions"] == ["votes:write"]


def test_a_key_records_when_it_was_last_used(client: TestClient, users: Users) -> None:
    account = users.create()
    created = _create(client, account.headers, ["votes:write"])
    client.get("/api/v1/auth/me", headers={"X-API-Key": created["key"]})
    read = client.get(f"/api/v1/api-keys/{created['id']}", headers=account.headers).json()
    assert read["last_used_at"] is not None


def test_a_key_acts_only_within_its_scopes(
    client: TestClient, users: Users, seeded: list[SeededTrack]
) -> None:
    account = users.create("subscriber")
    key = _create(client, account.headers, ["shares:create"])["key"]
    vote = client.post(
        "/api/v1/vote",
        json={"track_id": seeded[0].track_id, "stars": 5},
        headers={"X-API-Key": key},
    )
    assert vote.status_code == 403
    assert "API key's scopes" in vote.json()["error"]["message"]
    share = client.post(
        "/api/v1/share", json={"track_id": seeded[0].track_id}, headers={"X-API-Key": key}
    )
    assert share.status_code == 201


def test_scopes_beyond_the_role_are_refused(client: TestClient, users: Users) -> None:
    account = users.create()
    r = client.post(
        "/api/v1/api-keys",
        json={"name": "x", "scopes": ["stream:control"]},
        headers=account.headers,
    )
    assert r.status_code == 403
    assert "stream:control" in r.json()["error"]["message"]


def test_a_demoted_owner_narrows_the_key(client: TestClient, users: Users) -> None:
    admin, op = users.create("admin"), users.create("operator")
    key = _create(client, op.headers, ["stream:control", "votes:write"])["key"]
    assert (
        client.post(
            "/api/v1/stream/control", json={"command": "skip"}, headers={"X-API-Key": key}
        ).status_code
        == 202
    )
    client.patch(f"/api/v1/users/{op.user_id}", json={"role": "listener"}, headers=admin.headers)
    assert (
        client.post(
            "/api/v1/stream/control", json={"command": "skip"}, headers={"X-API-Key": key}
        ).status_code
        == 403
    )


def test_a_key_cannot_mint_keys(client: TestClient, users: Users) -> None:
    account = users.create()
    key = _create(client, account.headers, ["keys:manage"])["key"]
    r = client.post(
        "/api/v1/api-keys",
        json={"name": "y", "scopes": ["votes:write"]},
        headers={"X-API-Key": key},
    )
    assert r.status_code == 403
    assert "login session" in r.json()["error"]["message"]


def test_a_revoked_or_unknown_key_is_refused(client: TestClient, users: Users) -> None:
    account = users.create()
    created = _create(client, account.headers, ["votes:write"])
    r = client.delete(f"/api/v1/api-keys/{created['id']}", headers=account.headers)
    assert r.status_code == 200
    assert r.json()["revoked_at"] is not None
    refused = client.get("/api/v1/auth/me", headers={"X-API-Key": created["key"]})
    assert refused.status_code == 401
    assert refused.json()["error"]["message"] == "this API key was revoked"
    unknown = client.get("/api/v1/auth/me", headers={"X-API-Key": "sfk_" + "A" * 43})
    assert unknown.status_code == 401
    assert unknown.json()["error"]["message"] == "unknown API key"


def test_key_requests_validate_their_input(client: TestClient, users: Users) -> None:
    account = users.create()
    r = client.post(
        "/api/v1/api-keys", json={"name": "", "scopes": ["nope"]}, headers=account.headers
    )
    assert r.status_code == 422
    locs = [d["loc"] for d in r.json()["error"]["details"]]
    assert ["body", "name"] in locs
    assert ["body", "scopes", 0] in locs
