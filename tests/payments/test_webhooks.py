"""Stripe webhooks: verified, applied exactly once, in any order."""

from __future__ import annotations

import copy
import json
import threading
import time
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update

from serving.billing import webhooks
from serving.context import AppContext
from serving.db.models import BillingSubscription, CreditEntry, OutboxEvent, StripeEvent
from tests.payments.conftest import Deliver, buy, checkout
from tests.payments.stripe_standin import StripeStandIn
from tests.serving.conftest import Account, Users


def _subscription(ctx: AppContext, sub_id: str) -> BillingSubscription:
    with ctx.db.session() as s:
        row = s.get(BillingSubscription, sub_id)
        assert row is not None
        return row


def _count(ctx: AppContext, model: Any, *where: Any) -> int:
    with ctx.db.session() as s:
        return int(s.scalar(select(func.count()).select_from(model).where(*where)) or 0)


def _plan(client: TestClient, account: Account) -> dict[str, Any]:
    r = client.get("/api/v1/subscription", headers=account.headers)
    assert r.status_code == 200
    return dict(r.json())


@pytest.fixture
def paid_credits(
    client: TestClient, users: Users, standin: StripeStandIn
) -> tuple[Account, list[dict[str, Any]]]:
    """A user and the (undelivered) events of their paid 10-credit checkout."""
    user = users.create()
    session = checkout(client, user.headers, "credits_10")
    return user, standin.complete_checkout(session["session_id"])


def test_a_replayed_event_applies_once(
    client: TestClient,
    deliver: Deliver,
    paid_credits: tuple[Account, list[dict[str, Any]]],
    ctx: AppContext,
) -> None:
    user, events = paid_credits
    (completed,) = events
    assert deliver.all([completed, completed, completed]) == ["applied", "duplicate", "duplicate"]
    assert _plan(client, user)["credit_balance"] == 10
    assert _count(ctx, CreditEntry, CreditEntry.user_id == user.user_id) == 1
    assert (
        _count(
            ctx,
            OutboxEvent,
            OutboxEvent.event == "checkout_completed",
            OutboxEvent.user_id == user.user_id,
        )
        == 1
    )


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)  # refused before the database
@pytest.mark.parametrize(
    "signature",
    [None, "t=1,v1=deadbeef", "garbage", "sign-with-another-secret"],
    ids=["missing", "forged", "malformed", "wrong-secret"],
)
def test_a_bad_or_missing_signature_is_400_and_changes_nothing(
    client: TestClient,
    deliver: Deliver,
    paid_credits: tuple[Account, list[dict[str, Any]]],
    ctx: AppContext,
    signature: str | None,
) -> None:
    user, (completed,) = paid_credits
    if signature == "sign-with-another-secret":
        r = deliver(completed, secret="whsec_someone_else")
    else:
        r = deliver(completed, signature=signature)
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "bad_request"
    assert "Stripe-Signature" in r.json()["error"]["message"]
    assert _plan(client, user)["credit_balance"] == 0
    assert _count(ctx, StripeEvent) == 0


def test_a_tampered_payload_fails_its_signature(
    client: TestClient, paid_credits: tuple[Account, list[dict[str, Any]]]
) -> None:
    user, (completed,) = paid_credits
    from tests.payments.stripe_standin import sign

    header = sign(json.dumps(completed).encode())
    forged = copy.deepcopy(completed)
    forged["data"]["object"]["metadata"]["item"] = "credits_50"
    r = client.post(
        "/api/v1/webhooks/stripe",
        content=json.dumps(forged).encode(),
        headers={"Stripe-Signature": header, "Content-Type": "application/json"},
    )
    assert r.status_code == 400
    assert _plan(client, user)["credit_balance"] == 0


def test_a_stale_signature_past_the_tolerance_is_refused(
    client: TestClient, deliver: Deliver, paid_credits: tuple[Account, list[dict[str, Any]]]
) -> None:
    user, (completed,) = paid_credits
    r = deliver(completed, timestamp=int(time.time()) - 301)
    assert r.status_code == 400
    assert "tolerance" in r.json()["error"]["message"].lower()
    r = deliver(completed, timestamp=int(time.time()) - 250)  # inside the 300 s
    assert r.status_code == 200 and r.json()["outcome"] == "applied"
    assert _plan(client, user)["credit_balance"] == 10


def test_unknown_event_types_are_acknowledged_and_recorded(
    deliver: Deliver, ctx: AppContext
) -> None:
    event = {
        "id": "evt_test_unknown_1",
        "object": "event",
        "type": "customer.tax_id.created",
        "created": int(time.time()),
        "data": {"object": {"id": "txi_1", "object": "tax_id"}},
    }
    r = deliver(event)
    assert r.status_code == 200
    assert r.json() == {"received": True, "event_id": "evt_test_unknown_1", "outcome": "ignored"}
    with ctx.db.session() as s:
        row = s.get(StripeEvent, "evt_test_unknown_1")
        assert row is not None and row.outcome == "ignored"
    assert deliver(event).json()["outcome"] == "duplicate"


def test_a_payload_that_is_no_event_is_400(client: TestClient) -> None:
    from tests.payments.stripe_standin import sign

    payload = b'["not", "an", "event"]'
    r = client.post(
        "/api/v1/webhooks/stripe",
        content=payload,
        headers={"Stripe-Signature": sign(payload), "Content-Type": "application/json"},
    )
    assert r.status_code == 400
    assert "not a Stripe event" in r.json()["error"]["message"]


def test_a_handler_failing_mid_transaction_applies_once_when_delivered_again(
    client: TestClient,
    deliver: Deliver,
    paid_credits: tuple[Account, list[dict[str, Any]]],
    ctx: AppContext,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    user, (completed,) = paid_credits
    real = webhooks.HANDLERS["checkout.session.completed"]
    calls = []

    def crashing(*args: Any) -> Any:
        calls.append(1)
        # Credits added and the conversion recorded, in the open transaction:
        assert real(*args) == "applied"
        raise RuntimeError("the database connection dropped")

    monkeypatch.setitem(webhooks.HANDLERS, "checkout.session.completed", crashing)
    r = deliver(completed)
    assert r.status_code == 500
    assert r.json()["error"]["code"] == "webhook_failed"
    assert "Stripe's next delivery applies it" in r.json()["error"]["message"]
    assert calls == [1]
    assert _plan(client, user)["credit_balance"] == 0  # nothing of it was kept
    assert _count(ctx, StripeEvent) == 0
    monkeypatch.setitem(webhooks.HANDLERS, "checkout.session.completed", real)
    assert deliver.all([completed, completed]) == ["applied", "duplicate"]
    assert _plan(client, user)["credit_balance"] == 10


def test_subscription_lifecycle_and_a_late_update_cannot_undo_a_cancellation(
    client: TestClient, users: Users, standin: StripeStandIn, deliver: Deliver, ctx: AppContext
) -> None:
    user = users.create()
    created, _paid, _completed = buy(client, standin, deliver, user.headers, "pro")
    sub_id = created["data"]["object"]["id"]
    assert _plan(client, user)["plan"] == "pro"
    (flag,) = standin.set_cancel_at_period_end(sub_id)
    (deleted,) = standin.cancel_subscription(sub_id)
    # Stripe delivers the cancellation first and the earlier update late.
    assert deliver.all([deleted, flag]) == ["applied", "stale"]
    row = _subscription(ctx, sub_id)
    assert row.status == "canceled" and row.canceled_at is not None
    assert _plan(client, user)["plan"] == "free"
    # Even a newer-looking "active" update does not revive a canceled one.
    revived = copy.deepcopy(flag)
    revived["id"], revived["created"] = "evt_test_revive", deleted["created"] + 10
    revived["data"]["object"]["status"] = "active"
    assert deliver.all([revived]) == ["stale"]
    assert _plan(client, user)["plan"] == "free"
    assert (
        _count(
            ctx,
            OutboxEvent,
            OutboxEvent.type == "subscription_canceled",
            OutboxEvent.user_id == user.user_id,
        )
        == 1
    )


def test_events_in_reverse_order_end_in_the_latest_state(
    client: TestClient, users: Users, standin: StripeStandIn, deliver: Deliver, ctx: AppContext
) -> None:
    user = users.create()
    session = checkout(client, user.headers, "premium")
    events = standin.complete_checkout(session["session_id"])
    sub_id = events[0]["data"]["object"]["id"]
    events += standin.set_cancel_at_period_end(sub_id)
    outcomes = deliver.all(list(reversed(events)))
    assert outcomes[0] == "applied"  # the latest update
    assert "stale" in outcomes  # the created event, older than the update
    row = _subscription(ctx, sub_id)
    assert (row.plan, row.status, row.cancel_at_period_end) == ("premium", "active", True)
    assert _plan(client, user)["plan"] == "premium"


def test_a_failed_invoice_keeps_the_plan_for_the_grace_period_then_free(
    client: TestClient, users: Users, standin: StripeStandIn, deliver: Deliver, ctx: AppContext
) -> None:
    user = users.create()
    created, *_ = buy(client, standin, deliver, user.headers, "pro")
    sub_id = created["data"]["object"]["id"]
    failed, updated = standin.renew(sub_id, paid=False)
    assert deliver.all([failed, updated]) == ["applied", "applied"]
    body = _plan(client, user)
    assert (body["plan"], body["status"], body["in_grace_period"]) == ("pro", "past_due", True)
    assert body["grace_ends_at"] is not None
    # Past the grace period (three days by default) the plan is Free; a day
    # of margin, as the stand-in's clock runs a little ahead of real time.
    since = _subscription(ctx, sub_id).past_due_since
    assert since is not None
    with ctx.db.session() as s:
        s.execute(
            update(BillingSubscription)
            .where(BillingSubscription.id == sub_id)
            .values(past_due_since=since - timedelta(days=4))
        )
        s.commit()
    body = _plan(client, user)
    assert (body["plan"], body["status"], body["in_grace_period"]) == ("free", "past_due", False)
    # The retried invoice is paid: the plan is back.
    (paid,) = standin.renew(sub_id, paid=True)
    assert deliver.all([paid]) == ["applied"]
    body = _plan(client, user)
    assert (body["plan"], body["status"]) == ("pro", "active")


def test_a_refund_takes_credits_back_and_a_negative_balance_blocks_spending(
    client: TestClient,
    users: Users,
    standin: StripeStandIn,
    deliver: Deliver,
    ctx: AppContext,
) -> None:
    user = users.create()
    buy(client, standin, deliver, user.headers, "credits_10")
    with ctx.db.session() as s:  # all ten spent meanwhile
        from serving.billing.ledger import add_credits

        add_credits(s, user.user_id, -10, kind="spend", ref="test:spent-them")
        s.commit()
    session_id = next(
        sid
        for sid, cs in standin.state.sessions.items()
        if cs["client_reference_id"] == user.user_id
    )
    intent = standin.state.sessions[session_id]["payment_intent"]
    (partial,) = standin.refund(intent, amount=250)  # about half of 4.99
    assert deliver.all([partial, partial]) == ["applied", "duplicate"]
    assert _plan(client, user)["credit_balance"] == -5
    (rest,) = standin.refund(intent)
    assert deliver.all([rest]) == ["applied"]
    assert _plan(client, user)["credit_balance"] == -10
    refunds = _count(
        ctx, CreditEntry, CreditEntry.kind == "chargeback", CreditEntry.user_id == user.user_id
    )
    assert refunds == 2
    can = client.get("/api/v1/can-generate", headers=user.headers).json()
    assert can["allowed"] is False and "balance is -10" in can["reason"]
    r = client.post(
        "/api/v1/requests",
        json={"prompt": "a test", "genre": "house", "duration_s": 30},
        headers=user.headers,
    )
    assert r.status_code == 402
    assert r.json()["error"]["code"] == "payment_required"


def test_webhooks_are_not_spent_from_the_per_address_budget(
    make_ctx: Any, users: Users, standin: StripeStandIn
) -> None:
    from serving.app import create_app

    ctx = make_ctx(rate_limit_ip="3/minute")
    with TestClient(create_app(context=ctx)) as client:
        deliver = Deliver(client)
        events = [
            {"id": f"evt_test_burst_{i}", "type": "ping", "created": int(time.time()), "data": {}}
            for i in range(6)
        ]
        assert deliver.all(events) == ["ignored"] * 6  # none answered 429
        assert client.get("/api/v1/plans").status_code == 200
        codes = [client.get("/api/v1/plans").status_code for _ in range(3)]
        assert 429 in codes  # the API itself is still limited


def test_a_burst_is_group_committed_and_one_failing_event_fails_alone(
    ctx: AppContext,
    client: TestClient,
    users: Users,
    standin: StripeStandIn,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Deliveries queued together share one transaction; when a handler in
    the batch fails, the others are applied one by one and only that event
    is refused (and kept nowhere)."""
    import asyncio

    from serving.billing.webhooks import WebhookContext, WebhookWriter

    buyers = [users.create() for _ in range(4)]
    events = []
    for account in buyers:
        session = checkout(client, account.headers, "credits_10")
        events += standin.complete_checkout(session["session_id"])
    poisoned = {**events[2], "type": "charge.refunded", "id": "evt_test_poison"}
    real = webhooks.HANDLERS["charge.refunded"]

    def boom(*args: Any) -> Any:
        raise RuntimeError("handler bug")

    monkeypatch.setitem(webhooks.HANDLERS, "charge.refunded", boom)
    writer = WebhookWriter(ctx.db)
    hook = WebhookContext(price_plans={})

    async def burst() -> list[Any]:
        writer._thread = threading.current_thread()  # queue without a thread yet
        tasks = [
            asyncio.ensure_future(writer.apply(e, hook))
            for e in [*events, events[0], poisoned, events[1]]
        ]
        await asyncio.sleep(0.05)
        writer._thread = None
        writer.start()  # the whole queue is one batch
        return await asyncio.gather(*tasks, return_exceptions=True)

    try:
        results = asyncio.run(burst())
    finally:
        writer.stop()
        monkeypatch.setitem(webhooks.HANDLERS, "charge.refunded", real)
    assert results[:4] == ["applied"] * 4
    assert results[4] == "duplicate" and results[6] == "duplicate"
    assert isinstance(results[5], RuntimeError)
    for account in buyers:
        assert _plan(client, account)["credit_balance"] == 10
    with ctx.db.session() as s:
        assert s.get(StripeEvent, "evt_test_poison") is None
    # A clean burst: one commit for all of it.
    pings = [
        {"id": f"evt_test_ping_{i}", "type": "ping", "created": 1, "data": {}} for i in range(5)
    ]
    writer = WebhookWriter(ctx.db)

    async def clean() -> list[Any]:
        writer._thread = threading.current_thread()
        tasks = [asyncio.ensure_future(writer.apply(e, hook)) for e in pings]
        await asyncio.sleep(0.05)
        writer._thread = None
        writer.start()
        return await asyncio.gather(*tasks)

    try:
        assert asyncio.run(clean()) == ["ignored"] * 5
    finally:
        writer.stop()
    assert writer.batches == 1


def test_the_hot_path_and_the_route_receive_webhooks_alike(
    client: TestClient,
    deliver: Deliver,
    users: Users,
    standin: StripeStandIn,
    ctx: AppContext,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Stripe's JSON deliveries are received by the hot path (serving.hot),
    without FastAPI's routing; any other media type reaches the route,
    which stays the reference (and the documentation). Both verify, dedupe
    and answer the same, through one ``receive_webhook``."""
    from serving.routes import billing as route_module
    from tests.payments.stripe_standin import sign

    routed: list[bytes] = []
    real = route_module.receive_webhook

    async def counting(ctx: Any, payload: bytes, signature: str | None) -> Any:
        routed.append(payload)
        return await real(ctx, payload, signature)

    monkeypatch.setattr(route_module, "receive_webhook", counting)

    def by_route(event: dict[str, Any], signature: str | None = "sign") -> Any:
        payload = json.dumps(event).encode()
        headers = {"Content-Type": "text/plain"}
        if signature is not None:
            headers["Stripe-Signature"] = sign(payload) if signature == "sign" else signature
        return client.post("/api/v1/webhooks/stripe", content=payload, headers=headers)

    first, second = users.create(), users.create()
    (hot_event,) = standin.complete_checkout(
        checkout(client, first.headers, "credits_10")["session_id"]
    )
    (route_event,) = standin.complete_checkout(
        checkout(client, second.headers, "credits_10")["session_id"]
    )

    # A forged signature: the same 400 both ways, nothing kept, nothing applied.
    hot_bad, route_bad = deliver(hot_event, signature="t=1,v1=00"), by_route(hot_event, "t=1,v1=00")
    assert hot_bad.status_code == route_bad.status_code == 400
    assert hot_bad.json()["error"]["code"] == route_bad.json()["error"]["code"] == "bad_request"
    assert hot_bad.json()["error"]["message"] == route_bad.json()["error"]["message"]
    assert hot_bad.headers["content-type"] == route_bad.headers["content-type"]
    assert _count(ctx, StripeEvent) == 0
    assert len(routed) == 1

    hot = deliver(hot_event)
    assert len(routed) == 1  # served by the hot path
    by_the_route = by_route(route_event)
    assert len(routed) == 2
    assert hot.status_code == by_the_route.status_code == 200, (hot.text, by_the_route.text)
    assert hot.json() == {"received": True, "event_id": hot_event["id"], "outcome": "applied"}
    assert by_the_route.json() == {
        "received": True,
        "event_id": route_event["id"],
        "outcome": "applied",
    }
    assert hot.headers["content-type"] == by_the_route.headers["content-type"]
    assert hot.headers["x-frame-options"] == by_the_route.headers["x-frame-options"] == "DENY"
    # Each way sees what the other applied: a replay is a duplicate either way.
    assert by_route(hot_event).json()["outcome"] == "duplicate"
    assert deliver(route_event).json()["outcome"] == "duplicate"
    assert _plan(client, first)["credit_balance"] == _plan(client, second)["credit_balance"] == 10
    assert _count(ctx, StripeEvent) == 2
    # The route is the documented one.
    spec = client.get("/openapi.json").json()
    assert "post" in spec["paths"]["/api/v1/webhooks/stripe"]
