"""Track requests: validation, moderation, throttles, charging, the
license rule, and following a request through its run to a refund or air."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update

from serving.context import AppContext
from serving.db.models import CreditEntry, OutboxEvent, TrackRequest
from serving.services.requests import fail_and_refund
from sonicforge.lakehouse import Lakehouse
from sonicforge.station import InMemoryStationState, NowPlaying
from tests.payments.conftest import Deliver, RecordingLauncher, buy
from tests.payments.stripe_standin import StripeStandIn
from tests.serving.conftest import Account, Users
from tests.serving.factories import seed_tracks

REQUEST = {"prompt": "warm rolling bassline at night", "genre": "house", "duration_s": 30}


def post(client: TestClient, account: Account, **overrides: Any) -> Any:
    return client.post("/api/v1/requests", json={**REQUEST, **overrides}, headers=account.headers)


def wait_for(predicate: Callable[[], Any], timeout_s: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError("condition not met in time")


def status_of(client: TestClient, account: Account, request_id: str) -> dict[str, Any]:
    r = client.get(f"/api/v1/requests/{request_id}", headers=account.headers)
    assert r.status_code == 200, r.text
    return dict(r.json())


def settle(ctx: AppContext, request_id: str, **values: Any) -> None:
    """End a request (as if it aired) so its user's pending limit frees up."""
    with ctx.db.session() as s:
        s.execute(update(TrackRequest).where(TrackRequest.id == request_id).values(**values))
        s.commit()


SQLITE_ONLY = pytest.mark.parametrize("database", ["sqlite"], indirect=True)


@SQLITE_ONLY  # input checks before any database work: one backend is enough
@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        ({"genre": "polka"}, "unknown genre 'polka'"),
        ({"duration_s": 5}, "greater than or equal to 10"),
        ({"bpm": 300}, "less than or equal to 220"),
        ({"genre": "ambient", "bpm": 200}, "for 'bpm' is out of range"),
        ({"duration_s": 120}, "Free's limit: requests may last at most 60 s"),
        ({"prompt": "   "}, "besides whitespace"),
        ({"mood": "ANGRY!"}, "String should match pattern"),
    ],
)
def test_invalid_requests_say_what_is_allowed(
    client: TestClient, users: Users, overrides: dict[str, Any], fragment: str, ctx: AppContext
) -> None:
    user = users.create()
    r = post(client, user, **overrides)
    assert r.status_code == 422, r.text
    assert fragment in r.text
    with ctx.db.session() as s:
        assert s.scalar(select(func.count()).select_from(TrackRequest)) == 0


@SQLITE_ONLY
@pytest.mark.parametrize(
    "prompt",
    [
        "check out https://spam.example.com now",
        "like www.example.org but louder",
        "dark techno for evil.com fans",
        "a very badword anthem",
        "x" * 301,
    ],
)
def test_prompts_are_moderated(
    client: TestClient, users: Users, prompt: str, ctx: AppContext
) -> None:
    ctx.settings.request_block_list = ["badword"]
    user = users.create()
    r = post(client, user, prompt=prompt)
    assert r.status_code == 422
    assert r.json()["error"]["code"] in ("prompt_refused", "validation_error")
    with ctx.db.session() as s:
        assert s.scalar(select(func.count()).select_from(TrackRequest)) == 0


def test_a_request_gets_its_own_partition_and_the_same_job(
    client: TestClient, users: Users, launcher: RecordingLauncher, ctx: AppContext
) -> None:
    user = users.create()
    r = post(client, user, bpm=124, mood="uplifting", show_name=True)
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["status"] == "queued" and body["charge"] == "quota" and body["paid"] is False
    assert body["batch_id"] == f"req-{body['request_id']}"
    wait_for(lambda: launcher.launches)
    (launch,) = launcher.launches
    assert launch["batch_id"] == body["batch_id"]
    assert launch["config"] == {"request_id": body["request_id"]}
    data = launch["data"]
    assert (data.genres, data.count, data.duration_s, data.bpm) == (["house"], 1, 30.0, 124.0)
    assert data.prompt == "warm rolling bassline at night (uplifting mood)"
    run = wait_for(lambda: status_of(client, user, body["request_id"])["run_id"])
    assert run == "run-1"
    wait_for(lambda: status_of(client, user, body["request_id"])["status"] == "generating")
    with ctx.db.session() as s:
        created = s.scalars(select(OutboxEvent).where(OutboxEvent.event == "request_created")).all()
        assert [e.properties["request_id"] for e in created] == [body["request_id"]]
    other = users.create()
    r = client.get(f"/api/v1/requests/{body['request_id']}", headers=other.headers)
    assert r.status_code == 404


def test_free_allows_one_pending_request_then_its_delay(
    client: TestClient, users: Users, ctx: AppContext
) -> None:
    user = users.create()
    first = post(client, user)
    assert first.status_code == 201
    r = post(client, user)
    assert r.status_code == 429
    assert "Free allows one pending request at a time" in r.json()["error"]["message"]
    assert "Retry-After" in r.headers
    settle(ctx, first.json()["request_id"], status="aired")
    r = post(client, user)
    assert r.status_code == 429
    assert "one request every 300 s" in r.json()["error"]["message"]
    can = client.get("/api/v1/can-generate", headers=user.headers).json()
    assert can["allowed"] is False and can["retry_after_s"] > 250


def test_quota_first_then_credits_then_402(
    client: TestClient,
    users: Users,
    ctx: AppContext,
    standin: StripeStandIn,
    deliver: Deliver,
) -> None:
    ctx.settings.request_license_policy = "refuse"
    user = users.create()
    buy(client, standin, deliver, user.headers, "enterprise")
    buy(client, standin, deliver, user.headers, "credits_10")
    with ctx.db.session() as s:  # the day's quota used but for one
        for i in range(499):
            s.add(
                TrackRequest(
                    user_id=user.user_id, prompt="p", genre="house", duration_s=30.0,
                    plan="enterprise", charge="quota", status="aired", batch_id=f"old-{user.user_id}-{i}",
                )
            )  # fmt: skip
        s.commit()
    can = client.get("/api/v1/can-generate", headers=user.headers).json()
    assert (can["allowed"], can["charge"], can["quota_left"], can["plan"]) == (
        True, "quota", 1, "enterprise",
    )  # fmt: skip
    a = post(client, user)
    assert a.status_code == 201 and a.json()["charge"] == "quota" and a.json()["paid"] is True
    b = post(client, user)
    assert b.status_code == 201 and b.json()["charge"] == "credit"
    assert client.get("/api/v1/subscription", headers=user.headers).json()["credit_balance"] == 9
    # A paid request runs commercial-only, with the server's license rule.
    assert b.json()["generator"] is None
    can = client.get("/api/v1/can-generate", headers=user.headers).json()
    assert can["charge"] == "credit" and "uses one of your 9 credits" in can["reason"]


def test_paid_requests_refuse_a_non_commercial_generator(
    client: TestClient,
    users: Users,
    standin: StripeStandIn,
    deliver: Deliver,
    launcher: RecordingLauncher,
) -> None:
    user = users.create()
    buy(client, standin, deliver, user.headers, "pro")
    r = post(client, user, generator="musicgen")
    assert r.status_code == 403
    message = r.json()["error"]["message"]
    assert "cc-by-nc-4.0" in message and "does not allow commercial use" in message
    assert "allowed: procedural" in message
    r = post(client, user, generator="procedural")
    assert r.status_code == 201
    wait_for(lambda: launcher.launches)
    assert launcher.launches[0]["config"] == {
        "request_id": r.json()["request_id"],
        "commercial_only": True,
        "license_policy": "fallback",
    }
    # A free request is not sold work: the non-commercial weights may serve it.
    listener = users.create()
    assert post(client, listener, generator="musicgen").status_code == 201


def test_a_failed_run_fails_the_request_and_refunds_its_credit_once(
    client: TestClient,
    users: Users,
    ctx: AppContext,
    launcher: RecordingLauncher,
    standin: StripeStandIn,
    deliver: Deliver,
) -> None:
    user = users.create()
    buy(client, standin, deliver, user.headers, "credits_10")
    with ctx.db.session() as s:  # Free's quota is used up today
        for i in range(3):
            s.add(TrackRequest(user_id=user.user_id, prompt="p", genre="house", duration_s=30.0,
                               plan="free", charge="quota", status="aired", batch_id=f"f-{user.user_id}-{i}",
                               created_at=datetime.now(UTC).replace(hour=0, minute=0, second=1)))  # fmt: skip
        s.commit()
    r = post(client, user)
    assert r.status_code == 201 and r.json()["charge"] == "credit"
    request_id = r.json()["request_id"]
    assert client.get("/api/v1/subscription", headers=user.headers).json()["credit_balance"] == 9
    wait_for(lambda: status_of(client, user, request_id)["run_id"])
    launcher.statuses["run-1"] = "FAILURE"
    body = wait_for(lambda: (b := status_of(client, user, request_id))["status"] == "failed" and b)
    assert body["refunded"] is True
    assert "the generation run ended (FAILURE)" in body["reason"]
    assert client.get("/api/v1/subscription", headers=user.headers).json()["credit_balance"] == 10
    assert fail_and_refund(ctx.db, request_id, "again") is False  # exactly once
    with ctx.db.session() as s:
        refunds = s.scalars(select(CreditEntry).where(CreditEntry.kind == "refund")).all()
        assert [e.ref for e in refunds] == [f"request:{request_id}:refund"]


def test_a_launch_that_fails_refunds_the_quota(
    client: TestClient, users: Users, ctx: AppContext, launcher: RecordingLauncher
) -> None:
    from serving.exceptions import UpstreamError

    launcher.fail_with = UpstreamError(
        "Dagster at http://dagster:3000/graphql is unreachable: ConnectError"
    )
    user = users.create()
    r = post(client, user)
    request_id = r.json()["request_id"]
    body = wait_for(lambda: (b := status_of(client, user, request_id))["status"] == "failed" and b)
    assert "could not be started: Dagster at" in body["reason"] and body["refunded"] is True
    sub = client.get("/api/v1/subscription", headers=user.headers).json()
    assert sub["quota"]["used_today"] == 0 and sub["pending_requests"] == 0


def _seed_batch(lakehouse: Lakehouse, batch: str, *, passed: bool) -> str:
    """What the pipeline writes for the request's partition: its tracks and
    score rows, and when it passed, its master and rotation rows."""
    (track,) = seed_tracks(lakehouse, 1, batch=batch, start=0 if passed else 2)
    return track.track_id


def test_a_track_failing_the_quality_gate_refunds(
    client: TestClient,
    users: Users,
    ctx: AppContext,
    launcher: RecordingLauncher,
    lakehouse: Lakehouse,
) -> None:
    user = users.create()
    request_id = post(client, user).json()["request_id"]
    wait_for(lambda: launcher.launches)
    _seed_batch(lakehouse, f"req-{request_id}", passed=False)
    body = wait_for(lambda: (b := status_of(client, user, request_id))["status"] == "failed" and b)
    assert body["reason"] == "the track failed the quality gate: too quiet"
    assert body["refunded"] is True and body["track_id"] is not None


def test_a_passed_request_is_queued_next_and_marked_aired_when_it_plays(
    client: TestClient,
    users: Users,
    ctx: AppContext,
    launcher: RecordingLauncher,
    lakehouse: Lakehouse,
    station: InMemoryStationState,
) -> None:
    user = users.create()
    rotation_track = seed_tracks(lakehouse, 1, batch="b-rotation")[0].track_id
    station.set_now_playing(
        NowPlaying(rotation_track, "t", "a", "house", datetime.now(UTC), 0.0, 120.0)
    )
    station.enqueue(rotation_track, source="operator", requested_by="op")
    request_id = post(client, user, show_name=True).json()["request_id"]
    wait_for(lambda: launcher.launches)
    track_id = _seed_batch(lakehouse, f"req-{request_id}", passed=True)
    body = wait_for(
        lambda: (b := status_of(client, user, request_id))["status"] == "queued_on_air" and b
    )
    assert body["track_id"] == track_id
    # After the track on air (120 s, less the 1 s crossfade) and the
    # operator's pick (2 s, less the crossfade).
    eta = datetime.fromisoformat(body["expected_air_at"])
    started = station.now_playing()
    assert started is not None
    assert abs((eta - started.started_at).total_seconds() - (119.0 + 1.0)) < 2.0
    (op, req) = station.queue()
    assert (op.source, req.source, req.request_id, req.display_name) == (
        "operator", "request", request_id, "U",
    )  # fmt: skip
    assert req.priority == 0
    station.remove(op.entry_id)
    station.remove(req.entry_id)
    station.set_now_playing(
        NowPlaying(track_id, "t", "a", "house", datetime.now(UTC), 0.0, 2.0, source="request",
                   request_id=request_id, requested_by="U")
    )  # fmt: skip
    body = wait_for(lambda: (b := status_of(client, user, request_id))["status"] == "aired" and b)
    assert body["aired_at"] is not None and body["refunded"] is False
    status = client.get("/api/v1/stream/status").json()
    assert status["now_playing"]["requested_by"] == "U"


def test_status_changes_are_pushed_as_server_sent_events(
    client: TestClient, users: Users, ctx: AppContext, launcher: RecordingLauncher
) -> None:
    user = users.create()
    request_id = post(client, user).json()["request_id"]
    wait_for(lambda: launcher.launches)
    launcher.statuses["run-1"] = "CANCELED"
    seen = []
    with client.stream("GET", f"/api/v1/requests/{request_id}/events", headers=user.headers) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        for line in r.iter_lines():
            if line.startswith("data: "):
                import json

                seen.append(json.loads(line[6:])["status"])
    assert seen[-1] == "failed"
    assert seen[0] in ("queued", "generating", "failed")


def test_two_trackers_refund_and_enqueue_once(
    make_ctx: Callable[..., AppContext],
    lakehouse: Lakehouse,
    station: InMemoryStationState,
    launcher: RecordingLauncher,
    ctx: AppContext,
    client: TestClient,
    users: Users,
) -> None:
    """Two API workers follow the same requests: the compare-and-set on the
    status lets one of them act."""
    user = users.create()
    request_id = post(client, user).json()["request_id"]
    wait_for(lambda: launcher.launches)
    _seed_batch(lakehouse, f"req-{request_id}", passed=True)
    other = make_ctx()

    async def both() -> None:
        await asyncio.gather(ctx.requests.step(), other.requests.step(), other.requests.step())

    asyncio.run(both())
    wait_for(lambda: status_of(client, user, request_id)["status"] == "queued_on_air")
    assert [e.request_id for e in station.queue()] == [request_id]
