"""Plans, subscriptions, checkout, the customer portal, and whether a user
may generate now."""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy.orm import Session

from models.provenance import license_for
from serving.billing.ledger import (
    Entitlement,
    Usage,
    credit_balance,
    ensure_account,
    entitlement,
    insert_for,
    last_request_at,
    pending_requests,
    quota_usage,
)
from serving.billing.plans import (
    CREDIT_PACKS,
    PLANS,
    CreditPack,
    Plan,
    purchasable,
    purchasable_ids,
)
from serving.billing.stripe_client import StripeGateway
from serving.db.models import BillingAccount, CheckoutSession, User
from serving.db.types import utcnow
from serving.exceptions import ConflictError, NotFoundError, ServingError, UnavailableError
from serving.schemas.billing import (
    CanGeneratePublic,
    CheckoutPublic,
    CreditPackPublic,
    GeneratorPublic,
    PlanPublic,
    PlansPublic,
    PortalPublic,
    QuotaPublic,
    SubscriptionPublic,
)
from serving.services.outbox import record_event
from sonicforge.settings import Settings

CURRENCY = "usd"
#: A double click (or a retried request) within this window opens one session.
CHECKOUT_DEDUPE_S = 600


class UnknownItemError(ServingError):
    status_code = 422
    code = "unknown_item"


def _generators(plan: Plan) -> list[GeneratorPublic]:
    out = []
    for name in plan.generators:
        lic = license_for(name)
        out.append(
            GeneratorPublic(backend=name, license=lic.spdx, commercial_use=lic.commercial_use)
        )
    return out


def list_plans(settings: Settings, gateway: StripeGateway) -> PlansPublic:
    def sellable(item_id: str) -> bool:
        return gateway.configured and item_id in settings.stripe_price_ids

    return PlansPublic(
        plans=[
            PlanPublic(
                id=p.id,
                name=p.name,
                monthly_price_cents=p.monthly_price_cents,
                currency=CURRENCY,
                features=list(p.features),
                quota_per_day=p.quota_per_day,
                quota_per_month=p.quota_per_month,
                max_request_duration_s=p.max_request_duration_s,
                request_priority=p.request_priority,
                max_pending_requests=p.max_pending,
                request_delay_s=p.request_delay_s,
                paid=p.paid,
                generators=_generators(p),
                purchasable=p.subscription and sellable(p.id),
            )
            for p in PLANS.values()
        ],
        credit_packs=[
            CreditPackPublic(
                id=c.id,
                name=c.name,
                credits=c.credits,
                price_cents=c.price_cents,
                currency=CURRENCY,
                purchasable=sellable(c.id),
            )
            for c in CREDIT_PACKS.values()
        ],
    )


def read_subscription(session: Session, user_id: str, settings: Settings) -> SubscriptionPublic:
    now = utcnow()
    ent = entitlement(session, user_id, grace_s=settings.billing_grace_period_s, now=now)
    usage = quota_usage(session, user_id, ent.plan, now=now)
    sub = ent.subscription
    grace_ends = None
    if ent.in_grace and sub is not None:
        since = sub.past_due_since or sub.state_at
        grace_ends = since + timedelta(seconds=settings.billing_grace_period_s)
    return SubscriptionPublic(
        plan=ent.plan.id,
        status=sub.status if sub is not None else "none",
        subscription_id=sub.id if sub is not None else None,
        current_period_end=sub.current_period_end if sub is not None else None,
        cancel_at_period_end=bool(sub.cancel_at_period_end) if sub is not None else False,
        in_grace_period=ent.in_grace,
        grace_ends_at=grace_ends,
        quota=_quota(usage),
        credit_balance=credit_balance(session, user_id),
        pending_requests=pending_requests(session, user_id),
    )


def _quota(usage: Usage) -> QuotaPublic:
    return QuotaPublic(
        used_today=usage.used_today,
        used_this_month=usage.used_this_month,
        left_today=usage.left_today,
        left_this_month=usage.left_this_month,
        resets_at=usage.resets_at,
    )


# -- may this user generate now? ----------------------------------------------------


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str
    charge: Literal["quota", "credit"] | None
    entitlement: Entitlement
    usage: Usage
    balance: int
    retry_after_s: float | None = None
    #: why not, as an HTTP answer: 402 (nothing left to pay with), 429 (throttled)
    status: int = 200


def decide(
    session: Session, user_id: str, settings: Settings, *, now: datetime | None = None
) -> Decision:
    """Whether the user's next request would be accepted, and what it would
    use: the plan's quota first, then one credit."""
    now = now or utcnow()
    ent = entitlement(session, user_id, grace_s=settings.billing_grace_period_s, now=now)
    plan = ent.plan
    usage = quota_usage(session, user_id, plan, now=now)
    balance = credit_balance(session, user_id)

    def no(reason: str, status: int, retry: float | None = None) -> Decision:
        return Decision(False, reason, None, ent, usage, balance, retry, status)

    pending = pending_requests(session, user_id)
    if pending >= plan.max_pending:
        what = (
            "one pending request at a time"
            if plan.max_pending == 1
            else (f"{plan.max_pending} pending requests at a time")
        )
        return no(
            f"you have {pending} request(s) in flight; {plan.name} allows {what}: wait until "
            "one airs or fails",
            429,
            float(settings.request_poll_s * 5),
        )
    last = last_request_at(session, user_id)
    if last is not None and plan.request_delay_s > 0:
        wait = plan.request_delay_s - (now - last).total_seconds()
        if wait > 0:
            return no(
                f"{plan.name} allows one request every {plan.request_delay_s:g} s; "
                f"the next in {wait:.0f} s",
                429,
                round(wait, 1),
            )
    if balance < 0:
        return no(
            f"your credit balance is {balance} after a refunded purchase; requests are blocked "
            "until it is back to zero (buy a credit pack)",
            402,
        )
    if usage.left > 0:
        return Decision(
            True,
            f"{usage.left_today} of {plan.quota_per_day} requests left today on {plan.name}",
            "quota",
            ent,
            usage,
            balance,
        )
    if balance > 0:
        return Decision(
            True,
            f"{plan.name}'s quota is used up (it resets at {usage.resets_at.isoformat()}); "
            f"the request uses one of your {balance} credits",
            "credit",
            ent,
            usage,
            balance,
        )
    return no(
        f"{plan.name}'s quota is used up until {usage.resets_at.isoformat()} and you have no "
        "credits: buy a credit pack or a plan (GET /api/v1/plans)",
        402,
    )


def can_generate(session: Session, user_id: str, settings: Settings) -> CanGeneratePublic:
    d = decide(session, user_id, settings)
    return CanGeneratePublic(
        allowed=d.allowed,
        reason=d.reason,
        charge=d.charge,
        plan=d.entitlement.plan.id,
        quota_left=d.usage.left,
        credit_balance=d.balance,
        resets_at=d.usage.resets_at,
        retry_after_s=d.retry_after_s,
    )


# -- checkout and the portal --------------------------------------------------------


def _urls(settings: Settings) -> tuple[str, str]:
    base = settings.web_base_url.rstrip("/")
    success = settings.checkout_success_url or (
        f"{base}/billing/success?session_id={{CHECKOUT_SESSION_ID}}"
    )
    cancel = settings.checkout_cancel_url or f"{base}/billing/cancel"
    return success, cancel


def _customer(session: Session, gateway: StripeGateway, user: User) -> tuple[str, bool]:
    """The user's Stripe customer id; created at Stripe the first time (the
    caller stores it with the rest). (id, created now)."""
    account = session.get(BillingAccount, user.id)
    if account is not None and account.stripe_customer_id:
        return account.stripe_customer_id, False
    customer = gateway.create_customer(user_id=user.id, email=user.email, name=user.display_name)
    return str(customer["id"]), True


def start_checkout(
    session: Session,
    gateway: StripeGateway,
    settings: Settings,
    user: User,
    item_id: str,
    *,
    idempotency_key: str | None = None,
) -> CheckoutPublic:
    item: Plan | CreditPack | None = purchasable(item_id)
    if item is None:
        raise UnknownItemError(
            f"{item_id!r} cannot be bought; items: {', '.join(purchasable_ids())}"
        )
    price = settings.stripe_price_ids.get(item.id)
    if not gateway.configured or not price:
        raise UnavailableError(
            f"{item.name} is not for sale on this server: no Stripe price is configured for "
            f"{item.id!r} (SONICFORGE_STRIPE_PRICE_IDS)"
            if gateway.configured
            else "payments are not configured on this server (SONICFORGE_STRIPE_API_KEY is unset)"
        )
    customer, _created = _customer(session, gateway, user)
    mode: Literal["subscription", "payment"] = (
        "subscription" if isinstance(item, Plan) else "payment"
    )
    success, cancel = _urls(settings)
    metadata = {"item": item.id, "user_id": user.id}
    params: dict[str, object] = {
        "mode": mode,
        "customer": customer,
        "client_reference_id": user.id,
        "line_items": [{"price": price, "quantity": 1}],
        "success_url": success,
        "cancel_url": cancel,
        "metadata": metadata,
    }
    if mode == "subscription":
        params["subscription_data"] = {"metadata": {"plan": item.id, "user_id": user.id}}
    else:
        params["payment_intent_data"] = {"metadata": metadata}
    window = idempotency_key or str(int(time.time() // CHECKOUT_DEDUPE_S))
    key = (
        "sonicforge-checkout-"
        + hashlib.sha256(f"{user.id}|{item.id}|{window}".encode()).hexdigest()[:32]
    )
    cs = gateway.create_checkout_session(params, key=key)
    # Stripe answered: now, and only now, the customer and session are kept,
    # in a transaction that writes first (SQLite: no stale read snapshot).
    session.rollback()
    ensure_account(session, user.id)
    account = session.get(BillingAccount, user.id)
    assert account is not None
    if account.stripe_customer_id is None:
        account.stripe_customer_id = customer
    stmt = (
        insert_for(session)(CheckoutSession)
        .values(
            id=str(cs["id"]),
            user_id=user.id,
            mode=mode,
            item=item.id,
            status="open",
            url=cs.get("url"),
            amount_total=cs.get("amount_total"),
            created_at=utcnow(),
        )
        .on_conflict_do_nothing(index_elements=["id"])
        .returning(CheckoutSession.id)
    )
    if session.execute(stmt).scalar() is not None:
        record_event(
            session,
            "conversion",
            event="checkout_started",
            user_id=user.id,
            properties={"item": item.id, "mode": mode, "session_id": str(cs["id"])},
        )
    session.commit()
    return CheckoutPublic(session_id=str(cs["id"]), url=str(cs["url"]), mode=mode, item=item.id)


def open_portal(
    session: Session, gateway: StripeGateway, settings: Settings, user_id: str
) -> PortalPublic:
    account = session.get(BillingAccount, user_id)
    if account is None or not account.stripe_customer_id:
        raise ConflictError(
            "you have no billing account yet: buy a plan or a credit pack first (POST /api/v1/checkout)"
        )
    return_url = settings.billing_portal_return_url or settings.web_base_url
    portal = gateway.create_portal_session(
        customer=account.stripe_customer_id, return_url=return_url
    )
    return PortalPublic(url=str(portal["url"]))


def user_or_404(session: Session, user_id: str) -> User:
    user = session.get(User, user_id)
    if user is None:
        raise NotFoundError("your account no longer exists")
    return user
