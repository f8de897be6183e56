"""POST /api/v1/analytics/track: accepted means in the outbox, committed;
bad input gets 4xx with the field path of every error; batches keep their
good events; the clock skew is removed (and clamped beyond 24 h)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from serving.context import AppContext
from serving.db.models import OutboxEvent
from tests.serving.conftest import Users

TRACK = "/api/v1/analytics/track"


def _event(**overrides: Any) -> dict[str, Any]:
    return {
        "event": "heartbeat",
        "anonymous_id": "anon-1",
        "properties": {"seconds": 10},
    } | overrides


def _rows(ctx: AppContext) -> dict[str, OutboxEvent]:
    with ctx.db.session() as s:
        return {e.event_id: e for e in s.scalars(select(OutboxEvent))}


def test_an_anonymous_event_is_in_the_outbox_when_accepted(
    client: TestClient, ctx: AppContext
) -> None:
    sent = datetime.now(UTC)
    r = client.post(TRACK, json=_event(event_id="ajs-1", track_id="t-1",
                                       context={"locale": "en-GB", "page": {"path": "/"}},
                                       sent_at=sent.isoformat()))  # fmt: skip
    assert r.status_code == 202, r.text
    body = r.json()
    assert body["accepted"] == 1 and body["event_ids"] == ["ajs-1"]
    assert body["rejected"] == [] and body["flagged"] == []
    row = _rows(ctx)["ajs-1"]
    assert (row.type, row.event, row.anonymous_id, row.user_id) == (
        "track",
        "heartbeat",
        "anon-1",
        None,
    )
    assert row.properties == {"seconds": 10}
    assert row.context == {"locale": "en-GB", "page": {"path": "/"}}
    assert row.received_at is not None and row.sent_at is not None
    assert abs(row.ts - sent) < timedelta(seconds=5)


def test_the_user_id_comes_from_the_token(
    client: TestClient, ctx: AppContext, users: Users
) -> None:
    account = users.create()
    r = client.post(TRACK, headers=account.headers,
                    json={"batch": [{"event": "skip", "track_id": "t-2"}, {"type": "page"}]})  # fmt: skip
    assert r.status_code == 202, r.text
    rows = [_rows(ctx)[i] for i in r.json()["event_ids"]]
    assert {row.user_id for row in rows} == {account.user_id}
    assert [row.type for row in rows] == ["track", "page"]


def test_an_api_key_is_answered_by_the_route(
    client: TestClient, ctx: AppContext, users: Users
) -> None:
    account = users.create()
    key = client.post("/api/v1/api-keys", headers=account.headers,
                      json={"name": "k", "scopes": ["votes:write"]}).json()["key"]  # fmt: skip
    r = client.post(TRACK, headers={"X-API-Key": key}, json=_event(event_id="via-key"))
    assert r.status_code == 202, r.text
    assert _rows(ctx)["via-key"].user_id == account.user_id


def test_a_client_clock_skew_is_removed(client: TestClient, ctx: AppContext) -> None:
    # The client's clock is 2 hours fast: it says it sent at 14:00, the server got it at 12:00.
    now = datetime.now(UTC)
    sent = now + timedelta(hours=2)
    happened = sent - timedelta(seconds=30)
    r = client.post(TRACK, json=_event(event_id="skewed", sent_at=sent.isoformat(),
                                       timestamp=happened.isoformat()))  # fmt: skip
    assert r.status_code == 202
    row = _rows(ctx)["skewed"]
    assert row.clock_skew_s == pytest.approx(-7200, abs=5)
    assert abs((row.ts - (now - timedelta(seconds=30))).total_seconds()) < 5
    assert not row.flags


def test_a_future_timestamp_beyond_a_day_is_clamped_and_flagged(
    client: TestClient, ctx: AppContext
) -> None:
    future = datetime.now(UTC) + timedelta(days=3)
    r = client.post(TRACK, json=_event(event_id="future", sent_at=future.isoformat()))
    assert r.status_code == 202
    assert r.json()["flagged"] == [
        {"index": 0, "event_id": "future", "flags": ["clock_skew_clamped", "future_timestamp"]}
    ]
    row = _rows(ctx)["future"]
    assert row.flags == ["clock_skew_clamped", "future_timestamp"]
    assert row.received_at is not None and row.ts <= row.received_at


def test_an_event_sent_twice_is_one_row(client: TestClient, ctx: AppContext) -> None:
    for _ in range(2):
        assert client.post(TRACK, json=_event(event_id="retry-1")).status_code == 202
    with ctx.db.session() as s:
        assert (
            len(s.scalars(select(OutboxEvent).where(OutboxEvent.event_id == "retry-1")).all()) == 1
        )


def test_a_batch_keeps_its_good_events_and_names_the_bad(
    client: TestClient, ctx: AppContext
) -> None:
    batch = [_event(event_id="good-1"), _event(properties="nope"), _event(event_id="good-2"),
             {"anonymous_id": "x"}]  # fmt: skip
    r = client.post(TRACK, json={"batch": batch})
    assert r.status_code == 202, r.text
    body = r.json()
    assert body["accepted"] == 2 and body["event_ids"] == ["good-1", "good-2"]
    assert [(x["index"], x["errors"][0]["loc"]) for x in body["rejected"]] == [
        (1, ["body", "batch", 1, "properties"]),
        (3, ["body", "batch", 3, "event"]),
    ]
    assert {"good-1", "good-2"} <= set(_rows(ctx))


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)  # validation only
@pytest.mark.parametrize(
    ("field", "value", "loc"),
    [
        ("event_id", 12, ["event_id"]),
        ("event_id", "has space", ["event_id"]),
        ("type", "click", ["type"]),
        ("event", ["x"], ["event"]),
        ("event", "", ["event"]),
        ("anonymous_id", 5, ["anonymous_id"]),
        ("track_id", "../etc", ["track_id"]),
        ("properties", [1, 2], ["properties"]),
        ("context", "mobile", ["context"]),
        ("context", {"locale": 7}, ["context", "locale"]),
        ("context", {"page": {"path": 1}}, ["context", "page", "path"]),
        ("context", {"app": "x"}, ["context", "app"]),
        ("timestamp", "yesterday", ["timestamp"]),
        ("sent_at", True, ["sent_at"]),
        ("user_id", "someone-else", ["user_id"]),
    ],
)
def test_every_field_of_the_wrong_type_is_a_422_with_its_path(
    client: TestClient, field: str, value: Any, loc: list[Any]
) -> None:
    r = client.post(TRACK, json=_event(**{field: value}))
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["code"] == "invalid_request"
    assert error["details"][0]["loc"] == ["body", *loc]


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)  # validation only
@pytest.mark.parametrize(
    ("body", "message"),
    [
        (_event(anonymous_id=None), "anonymous_id"),
        ({"type": "track", "anonymous_id": "a"}, "needs its name"),
        (_event(sent_at="2026-12-01T10:00:00Z", timestamp="2026-12-01T11:00:00Z"), "after sent_at"),
        ({"batch": []}, "non-empty"),
        ({"batch": [_event()], "extra": 1}, "unknown field"),
        ([_event()], "must be an event object"),
    ],
)
def test_requests_that_are_no_event_are_422(client: TestClient, body: Any, message: str) -> None:
    r = client.post(TRACK, json=body)
    assert r.status_code == 422, r.text
    assert message in r.json()["error"]["message"]


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)  # validation only
def test_invalid_json_is_422(client: TestClient) -> None:
    r = client.post(TRACK, content=b"{nope", headers={"Content-Type": "application/json"})
    assert r.status_code == 422 and r.json()["error"]["details"][0]["loc"] == ["body"]


def test_501_events_are_413(client: TestClient, ctx: AppContext) -> None:
    r = client.post(TRACK, json={"batch": [_event() for _ in range(501)]})
    assert r.status_code == 413
    assert "at most 500 events" in r.json()["error"]["message"]
    assert _rows(ctx) == {}


def test_500_events_are_accepted(client: TestClient, ctx: AppContext) -> None:
    r = client.post(TRACK, json={"batch": [_event() for _ in range(500)]})
    assert r.status_code == 202 and r.json()["accepted"] == 500
    assert len(_rows(ctx)) == 500


def test_a_2_mb_batch_is_413_before_it_is_read(client: TestClient, ctx: AppContext) -> None:
    big = {"batch": [_event(properties={"blob": "x" * 20_000}) for _ in range(100)]}
    raw = json.dumps(big).encode()
    assert len(raw) > 2_000_000
    r = client.post(TRACK, content=raw, headers={"Content-Type": "application/json"})
    assert r.status_code == 413
    assert "1048576 bytes" in r.json()["error"]["message"]
    assert _rows(ctx) == {}


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)  # validation only
def test_sendbeacon_text_plain_is_accepted(client: TestClient, ctx: AppContext) -> None:
    r = client.post(TRACK, content=json.dumps(_event(event_id="beacon")),
                    headers={"Content-Type": "text/plain;charset=UTF-8"})  # fmt: skip
    assert r.status_code == 202
    assert "beacon" in _rows(ctx)


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)  # validation only
def test_a_bad_token_is_401(client: TestClient) -> None:
    r = client.post(TRACK, headers={"Authorization": "Bearer not-a-jwt"}, json=_event())
    assert r.status_code == 401
