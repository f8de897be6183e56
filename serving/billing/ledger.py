"""Billing accounts, credits and entitlements in the app database.

Every change of credits is a ``CreditEntry`` with a unique ``ref`` and the
matching change of the account's balance, in the caller's transaction: a
purchase, spend or refund that runs twice meets the unique ref the second
time and changes nothing. ``lock_account`` serialises one user's spending.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import String, bindparam, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from serving.billing.plans import PLANS, Plan
from serving.db.models import BillingAccount, BillingSubscription, CreditEntry, TrackRequest
from serving.db.types import UTCDateTime, utcnow

#: Subscription states that grant the plan; ``past_due`` does during the grace period.
ACTIVE_STATES = frozenset({"active", "trialing"})
GRACE_STATES = frozenset({"past_due", "unpaid"})
#: Request states that still hold quota or a credit and count as pending.
PENDING_STATES = ("queued", "generating", "scoring", "mastering", "queued_on_air")


def insert_for(session: Session) -> Any:
    """The dialect's INSERT (both have ON CONFLICT DO NOTHING)."""
    dialect = session.get_bind().dialect.name
    return postgresql.insert if dialect == "postgresql" else sqlite.insert


def ensure_account(session: Session, user_id: str) -> None:
    """Create the user's billing account if missing (race-free)."""
    stmt = insert_for(session)(BillingAccount).values(
        user_id=user_id, credit_balance=0, lock_version=0, created_at=utcnow(), updated_at=utcnow()
    )
    session.execute(stmt.on_conflict_do_nothing(index_elements=["user_id"]))


def lock_account(session: Session, user_id: str) -> BillingAccount:
    """The user's account, locked for the rest of the transaction.

    An UPDATE first: on PostgreSQL it takes the row lock (a second
    transaction waits here, then reads what the first committed); on SQLite
    it takes the database's write lock before anything is read, so no two
    spends read the same balance.
    """
    ensure_account(session, user_id)
    session.execute(
        update(BillingAccount)
        .where(BillingAccount.user_id == user_id)
        .values(lock_version=BillingAccount.lock_version + 1, updated_at=utcnow())
    )
    account = session.get(BillingAccount, user_id, populate_existing=True)
    assert account is not None
    return account


@functools.cache
def _entry_insert(dialect: str) -> Any:
    ins = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return (
        ins(CreditEntry)
        .values({c: bindparam(c) for c in ("user_id", "delta", "kind", "ref", "created_at")})
        .on_conflict_do_nothing(index_elements=["ref"])
        .returning(CreditEntry.id)
    )


# Built once: webhooks apply hundreds a second, and building a statement
# costs about as much as running it.
_BALANCE_UPDATE = (
    update(BillingAccount)
    .where(BillingAccount.user_id == bindparam("uid"))
    .values(
        credit_balance=BillingAccount.credit_balance + bindparam("delta"),
        stripe_customer_id=func.coalesce(
            BillingAccount.stripe_customer_id, bindparam("customer", type_=String())
        ),
        updated_at=bindparam("now", type_=UTCDateTime()),
    )
)


def add_credits(
    session: Session,
    user_id: str,
    delta: int,
    *,
    kind: str,
    ref: str,
    customer: str | None = None,
) -> bool:
    """Record a credit change once per ``ref``; False when it was recorded
    before. ``customer`` sets the account's Stripe customer if it has none."""
    conn = session.connection()
    now = utcnow()
    inserted = conn.execute(
        _entry_insert(conn.dialect.name),
        {"user_id": user_id, "delta": delta, "kind": kind, "ref": ref, "created_at": now},
    )
    # RETURNING, not rowcount: psycopg reports -1 for ON CONFLICT inserts.
    if inserted.scalar() is None:
        return False
    params = {"uid": user_id, "delta": delta, "customer": customer, "now": now}
    if conn.execute(_BALANCE_UPDATE, params).rowcount != 1:
        ensure_account(session, user_id)
        conn.execute(_BALANCE_UPDATE, params)
    return True


def credit_balance(session: Session, user_id: str) -> int:
    value = session.scalar(
        select(BillingAccount.credit_balance).where(BillingAccount.user_id == user_id)
    )
    return int(value or 0)


@dataclass(frozen=True)
class Entitlement:
    """What a user may do now: their plan, the subscription granting it."""

    plan: Plan
    subscription: BillingSubscription | None
    in_grace: bool = False


def grants_plan(sub: BillingSubscription, now: datetime, grace_s: float) -> tuple[bool, bool]:
    """(grants the plan, only thanks to the grace period)."""
    if sub.plan not in PLANS:
        return False, False
    if sub.status in ACTIVE_STATES:
        return True, False
    if sub.status in GRACE_STATES:
        since = sub.past_due_since or sub.state_at
        return now - since < timedelta(seconds=grace_s), True
    return False, False


def entitlement(
    session: Session, user_id: str, *, grace_s: float, now: datetime | None = None
) -> Entitlement:
    """The best plan the user's subscriptions grant now (Free without one);
    an unpaid invoice keeps the plan for ``grace_s``, then it is Free."""
    now = now or utcnow()
    subs = session.scalars(
        select(BillingSubscription).where(BillingSubscription.user_id == user_id)
    ).all()
    best: Entitlement | None = None
    for sub in subs:
        ok, grace = grants_plan(sub, now, grace_s)
        if not ok:
            continue
        plan = PLANS[sub.plan]
        if best is None or plan.request_priority > best.plan.request_priority:
            best = Entitlement(plan, sub, grace)
    if best is not None:
        return best
    latest = max(subs, key=lambda s: s.state_at, default=None)
    return Entitlement(PLANS["free"], latest)


def day_start(now: datetime) -> datetime:
    return now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def month_start(now: datetime) -> datetime:
    return day_start(now).replace(day=1)


def next_day(now: datetime) -> datetime:
    return day_start(now) + timedelta(days=1)


def next_month(now: datetime) -> datetime:
    start = month_start(now)
    return (start + timedelta(days=32)).replace(day=1)


@dataclass(frozen=True)
class Usage:
    used_today: int
    used_this_month: int
    left_today: int
    left_this_month: int
    resets_at: datetime  # when the binding limit frees a request

    @property
    def left(self) -> int:
        return min(self.left_today, self.left_this_month)


def quota_usage(
    session: Session, user_id: str, plan: Plan, *, now: datetime | None = None
) -> Usage:
    """Requests charged to the plan's quota (refunded ones do not count)."""
    now = now or utcnow()
    charged = (
        select(func.count())
        .select_from(TrackRequest)
        .where(
            TrackRequest.user_id == user_id,
            TrackRequest.charge == "quota",
            TrackRequest.refunded_at.is_(None),
        )
    )
    today = int(session.scalar(charged.where(TrackRequest.created_at >= day_start(now))) or 0)
    month = int(session.scalar(charged.where(TrackRequest.created_at >= month_start(now))) or 0)
    left_day = max(0, plan.quota_per_day - today)
    left_month = max(0, plan.quota_per_month - month)
    resets = next_month(now) if left_month == 0 else next_day(now)
    return Usage(today, month, left_day, left_month, resets)


def pending_requests(session: Session, user_id: str) -> int:
    return int(
        session.scalar(
            select(func.count())
            .select_from(TrackRequest)
            .where(TrackRequest.user_id == user_id, TrackRequest.status.in_(PENDING_STATES))
        )
        or 0
    )


def last_request_at(session: Session, user_id: str) -> datetime | None:
    return session.scalar(
        select(func.max(TrackRequest.created_at)).where(
            TrackRequest.user_id == user_id, TrackRequest.refunded_at.is_(None)
        )
    )
