"""Plans, checkout and the customer portal against the Stripe stand-in."""

from __future__ import annotations

from collections.abc import Callable

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from serving.app import create_app
from serving.context import AppContext
from serving.db.models import BillingAccount, CheckoutSession, OutboxEvent
from tests.payments.conftest import Deliver, buy, checkout
from tests.payments.stripe_standin import StripeStandIn
from tests.serving.conftest import Users


def test_plans_are_public_and_paid_plans_use_only_commercial_generators(
    client: TestClient,
) -> None:
    r = client.get("/api/v1/plans")
    assert r.status_code == 200
    body = r.json()
    plans = {p["id"]: p for p in body["plans"]}
    assert list(plans) == ["free", "pro", "premium", "enterprise"]
    assert plans["free"]["monthly_price_cents"] == 0 and plans["free"]["purchasable"] is False
    assert plans["pro"]["purchasable"] is True and plans["pro"]["currency"] == "usd"
    for plan_id in ("pro", "premium", "enterprise"):
        gens = plans[plan_id]["generators"]
        assert gens == [{"backend": "procedural", "license": "apache-2.0", "commercial_use": True}]
    free = {g["backend"]: g for g in plans["free"]["generators"]}
    assert free["musicgen"] == {
        "backend": "musicgen",
        "license": "cc-by-nc-4.0",
        "commercial_use": False,
    }
    # Quotas, durations and priorities rise with the price.
    ordered = [plans[p] for p in ("free", "pro", "premium", "enterprise")]
    for key in ("quota_per_day", "max_request_duration_s", "request_priority"):
        values = [p[key] for p in ordered]
        assert values == sorted(values) and len(set(values)) == 4, key
    packs = {p["id"]: p for p in body["credit_packs"]}
    assert packs["credits_10"]["credits"] == 10 and packs["credits_10"]["purchasable"] is True
    assert packs["credits_200"]["purchasable"] is False  # no price configured for it


def test_checkout_creates_the_customer_once_and_a_double_click_makes_one_session(
    client: TestClient, users: Users, ctx: AppContext, standin: StripeStandIn
) -> None:
    user = users.create()
    before = len(standin.state.customers)
    first = checkout(client, user.headers, "pro")
    again = checkout(client, user.headers, "pro")  # the double click
    assert again["session_id"] == first["session_id"]
    assert first["mode"] == "subscription" and first["url"].startswith(standin.url)
    pack = checkout(client, user.headers, "credits_10")
    assert pack["mode"] == "payment" and pack["session_id"] != first["session_id"]
    assert len(standin.state.customers) == before + 1  # created once, reused
    stripe_session = standin.state.sessions[first["session_id"]]
    assert stripe_session["client_reference_id"] == user.user_id
    assert stripe_session["success_url"].endswith("session_id={CHECKOUT_SESSION_ID}")
    assert stripe_session["cancel_url"] == "https://radio.example.com/billing/cancel"
    assert stripe_session["metadata"] == {"item": "pro", "user_id": user.user_id}
    with ctx.db.session() as s:
        account = s.get(BillingAccount, user.user_id)
        assert account is not None and account.stripe_customer_id == stripe_session["customer"]
        assert s.scalar(select(func.count()).select_from(CheckoutSession)) == 2
        started = s.scalars(
            select(OutboxEvent).where(OutboxEvent.event == "checkout_started")
        ).all()
        assert len(started) == 2  # the double click is not a second conversion step


def test_an_explicit_idempotency_key_opens_a_new_session(client: TestClient, users: Users) -> None:
    user = users.create()
    a = client.post(
        "/api/v1/checkout", json={"item": "pro"}, headers={**user.headers, "Idempotency-Key": "k1"}
    )
    b = client.post(
        "/api/v1/checkout", json={"item": "pro"}, headers={**user.headers, "Idempotency-Key": "k2"}
    )
    c = client.post(
        "/api/v1/checkout", json={"item": "pro"}, headers={**user.headers, "Idempotency-Key": "k1"}
    )
    assert a.status_code == b.status_code == c.status_code == 201
    assert a.json()["session_id"] != b.json()["session_id"]
    assert a.json()["session_id"] == c.json()["session_id"]


def test_unknown_items_are_refused_with_what_can_be_bought(
    client: TestClient, users: Users
) -> None:
    user = users.create()
    r = client.post("/api/v1/checkout", json={"item": "free"}, headers=user.headers)
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "unknown_item"
    assert "pro, premium, enterprise, credits_10" in r.json()["error"]["message"]
    assert client.post("/api/v1/checkout", json={"item": "pro"}).status_code == 401


def test_stripe_unreachable_answers_503_and_writes_nothing(
    make_ctx: Callable[..., AppContext],
) -> None:
    ctx = make_ctx(stripe_api_base="http://127.0.0.1:9")  # nothing listens on the discard port
    with TestClient(create_app(context=ctx)) as client:
        user = Users(client, ctx).create()
        r = client.post("/api/v1/checkout", json={"item": "credits_10"}, headers=user.headers)
        assert r.status_code == 503
        error = r.json()["error"]
        assert error["code"] == "payments_unavailable"
        assert "Stripe could not be reached" in error["message"]
        assert "nothing was charged or saved" in error["message"]
        with ctx.db.session() as s:
            assert s.get(BillingAccount, user.user_id) is None
            assert s.scalar(select(func.count()).select_from(CheckoutSession)) == 0
            assert (
                s.scalar(
                    select(func.count())
                    .select_from(OutboxEvent)
                    .where(OutboxEvent.user_id == user.user_id, OutboxEvent.type == "conversion")
                )
                == 0
            )


def test_payments_unconfigured_is_a_clear_503(make_ctx: Callable[..., AppContext]) -> None:
    ctx = make_ctx(stripe_api_key=None)
    with TestClient(create_app(context=ctx)) as client:
        user = Users(client, ctx).create()
        r = client.post("/api/v1/checkout", json={"item": "pro"}, headers=user.headers)
        assert r.status_code == 503
        assert "SONICFORGE_STRIPE_API_KEY is unset" in r.json()["error"]["message"]
        plans = client.get("/api/v1/plans").json()["plans"]
        assert not any(p["purchasable"] for p in plans)


def test_portal_needs_a_customer_then_links_to_stripe(
    client: TestClient, users: Users, standin: StripeStandIn, deliver: Deliver
) -> None:
    user = users.create()
    r = client.post("/api/v1/billing/portal", headers=user.headers)
    assert r.status_code == 409
    assert "buy a plan or a credit pack first" in r.json()["error"]["message"]
    buy(client, standin, deliver, user.headers, "credits_10")
    r = client.post("/api/v1/billing/portal", headers=user.headers)
    assert r.status_code == 200
    assert r.json()["url"].startswith(f"{standin.url}/portal/bps_test_")


def test_subscription_shows_plan_period_quota_and_credits(
    client: TestClient, users: Users, standin: StripeStandIn, deliver: Deliver
) -> None:
    user = users.create()
    r = client.get("/api/v1/subscription", headers=user.headers)
    assert r.status_code == 200
    body = r.json()
    assert (body["plan"], body["status"], body["credit_balance"]) == ("free", "none", 0)
    assert body["quota"]["left_today"] == 3
    events = buy(client, standin, deliver, user.headers, "premium")
    buy(client, standin, deliver, user.headers, "credits_10")
    body = client.get("/api/v1/subscription", headers=user.headers).json()
    sub = events[0]["data"]["object"]
    assert (body["plan"], body["status"], body["subscription_id"]) == (
        "premium",
        "active",
        sub["id"],
    )
    assert body["current_period_end"] is not None
    assert body["credit_balance"] == 10
    assert body["quota"]["left_today"] == 50
    assert client.get("/api/v1/subscription").status_code == 401
