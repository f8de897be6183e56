"""Applying Stripe webhook events to the app database, each exactly once.

An event's id is inserted into ``stripe_events`` in the same transaction as
its effect: a second delivery meets the primary key and changes nothing; a
handler that fails rolls the id back with everything else, so Stripe's
retry applies it. Stripe promises neither order nor uniqueness, so each
subscription row keeps the time of the state it holds (``state_at``, the
event's ``created``) and an older event never overwrites a newer state; a
canceled subscription stays canceled (Stripe never revives one).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import queue
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import Integer, String, bindparam, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from serving.billing.ledger import add_credits
from serving.billing.plans import CREDIT_PACKS, PLANS
from serving.db.models import (
    BillingAccount,
    BillingSubscription,
    CheckoutSession,
    CreditEntry,
    StripeEvent,
    User,
)
from serving.db.session import Database
from serving.db.types import UTCDateTime, utcnow
from serving.services.outbox import record_event

log = logging.getLogger("serving.billing.webhooks")

Outcome = Literal["applied", "duplicate", "stale", "ignored"]


@dataclass(frozen=True)
class WebhookContext:
    """What handlers need beyond the event: price ids to plans."""

    price_plans: Mapping[str, str]


Handler = Callable[[Session, dict[str, Any], datetime, WebhookContext], Outcome]


def _ts(value: Any) -> datetime | None:
    if isinstance(value, int | float) and value > 0:
        return datetime.fromtimestamp(value, UTC)
    return None


def _id(value: Any) -> str | None:
    """An expandable field's id (Stripe sends an id or the object)."""
    if isinstance(value, dict):
        value = value.get("id")
    return value if isinstance(value, str) and value else None


def _user_for_customer(session: Session, customer: str | None) -> str | None:
    if customer is None:
        return None
    return session.scalar(
        select(BillingAccount.user_id).where(BillingAccount.stripe_customer_id == customer)
    )


def _existing_user(session: Session, user_id: Any) -> str | None:
    if not isinstance(user_id, str):
        return None
    return session.scalar(select(User.id).where(User.id == user_id))


# -- subscriptions ------------------------------------------------------------------


def _subscription_plan(obj: dict[str, Any], ctx: WebhookContext) -> str | None:
    plan = (obj.get("metadata") or {}).get("plan")
    if plan in PLANS:
        return str(plan)
    for item in (obj.get("items") or {}).get("data") or []:
        price = _id((item or {}).get("price"))
        if price and price in ctx.price_plans:
            return ctx.price_plans[price]
    return None


def _period_end(obj: dict[str, Any]) -> datetime | None:
    # API versions since 2025 carry the period on each item.
    end = _ts(obj.get("current_period_end"))
    for item in (obj.get("items") or {}).get("data") or []:
        item_end = _ts((item or {}).get("current_period_end"))
        if item_end is not None and (end is None or item_end > end):
            end = item_end
    return end


def _apply_subscription(
    session: Session, obj: dict[str, Any], at: datetime, ctx: WebhookContext, *, deleted: bool
) -> Outcome:
    sub_id = _id(obj.get("id"))
    if sub_id is None:
        return "ignored"
    row = session.get(BillingSubscription, sub_id, with_for_update=True)
    status = "canceled" if deleted else str(obj.get("status") or "incomplete")
    if row is not None:
        if at < row.state_at:
            return "stale"  # a later state is stored already
        if row.status == "canceled" and status != "canceled":
            return "stale"  # canceled is final at Stripe
    customer = _id(obj.get("customer"))
    user_id = (
        row.user_id
        if row is not None
        else _existing_user(session, (obj.get("metadata") or {}).get("user_id"))
        or _user_for_customer(session, customer)
    )
    plan = _subscription_plan(obj, ctx) or (row.plan if row is not None else None)
    if user_id is None or plan is None:
        log.warning("subscription %s names no known user or plan; ignored", sub_id)
        return "ignored"
    was_active = row is not None and row.status in ("active", "trialing")
    if row is None:
        row = BillingSubscription(id=sub_id, user_id=user_id, created_at=utcnow())
        session.add(row)
    row.stripe_customer_id = customer or row.stripe_customer_id
    row.plan = plan
    if status in ("past_due", "unpaid") and row.past_due_since is None:
        row.past_due_since = at
    elif status in ("active", "trialing"):
        row.past_due_since = None
    row.status = status
    row.current_period_end = _period_end(obj) or row.current_period_end
    row.cancel_at_period_end = bool(obj.get("cancel_at_period_end"))
    row.canceled_at = _ts(obj.get("canceled_at")) or (at if status == "canceled" else None)
    row.state_at = at
    row.updated_at = utcnow()
    now_active = status in ("active", "trialing")
    if now_active and not was_active:
        record_event(
            session,
            "conversion",
            event="subscription_started",
            user_id=user_id,
            properties={"plan": plan, "subscription_id": sub_id},
        )
    elif status == "canceled" and was_active:
        record_event(
            session,
            "subscription_canceled",
            user_id=user_id,
            properties={"plan": plan, "subscription_id": sub_id},
        )
    return "applied"


def on_subscription(
    session: Session, obj: dict[str, Any], at: datetime, ctx: WebhookContext
) -> Outcome:
    return _apply_subscription(session, obj, at, ctx, deleted=False)


def on_subscription_deleted(
    session: Session, obj: dict[str, Any], at: datetime, ctx: WebhookContext
) -> Outcome:
    return _apply_subscription(session, obj, at, ctx, deleted=True)


def _invoice_subscription(obj: dict[str, Any]) -> str | None:
    sub = _id(obj.get("subscription"))
    if sub is None:  # API versions since 2025: under parent.subscription_details
        details = (obj.get("parent") or {}).get("subscription_details") or {}
        sub = _id(details.get("subscription"))
    return sub


def _invoice_period_end(obj: dict[str, Any]) -> datetime | None:
    end = None
    for line in (obj.get("lines") or {}).get("data") or []:
        line_end = _ts(((line or {}).get("period") or {}).get("end"))
        if line_end is not None and (end is None or line_end > end):
            end = line_end
    return end


def on_invoice_paid(
    session: Session, obj: dict[str, Any], at: datetime, ctx: WebhookContext
) -> Outcome:
    sub_id = _invoice_subscription(obj)
    row = session.get(BillingSubscription, sub_id, with_for_update=True) if sub_id else None
    if row is None:
        return "ignored"  # the subscription's own events create it
    end = _invoice_period_end(obj)
    if end is not None and (row.current_period_end is None or end > row.current_period_end):
        row.current_period_end = end
    if row.status != "canceled" and at >= row.state_at:
        row.status = "active"
        row.past_due_since = None
        row.state_at = at
    row.updated_at = utcnow()
    record_event(
        session,
        "invoice_paid",
        user_id=row.user_id,
        properties={"subscription_id": row.id, "amount_paid": obj.get("amount_paid")},
    )
    return "applied"


def on_invoice_payment_failed(
    session: Session, obj: dict[str, Any], at: datetime, ctx: WebhookContext
) -> Outcome:
    sub_id = _invoice_subscription(obj)
    row = session.get(BillingSubscription, sub_id, with_for_update=True) if sub_id else None
    if row is None:
        return "ignored"
    if row.status == "canceled" or at < row.state_at:
        return "stale"
    row.status = "past_due"
    if row.past_due_since is None:
        row.past_due_since = at
    row.state_at = at
    row.updated_at = utcnow()
    record_event(
        session,
        "invoice_payment_failed",
        user_id=row.user_id,
        properties={"subscription_id": row.id, "attempt_count": obj.get("attempt_count")},
    )
    return "applied"


# -- one-time purchases -------------------------------------------------------------


_COMPLETE_SESSION = (
    update(CheckoutSession)
    .where(CheckoutSession.id == bindparam("sid"))
    .values(
        status="complete",
        completed_at=bindparam("at", type_=UTCDateTime()),
        payment_intent=func.coalesce(
            bindparam("intent", type_=String()), CheckoutSession.payment_intent
        ),
        amount_total=func.coalesce(
            bindparam("amount", type_=Integer()), CheckoutSession.amount_total
        ),
    )
    .returning(CheckoutSession.user_id, CheckoutSession.item)
)
_SET_CUSTOMER = (
    update(BillingAccount)
    .where(BillingAccount.user_id == bindparam("uid"), BillingAccount.stripe_customer_id.is_(None))
    .values(stripe_customer_id=bindparam("customer", type_=String()))
)


def on_checkout_completed(
    session: Session, obj: dict[str, Any], at: datetime, ctx: WebhookContext
) -> Outcome:
    session_id = _id(obj.get("id"))
    if session_id is None:
        return "ignored"
    conn = session.connection()
    amount = obj.get("amount_total")
    stored = conn.execute(
        _COMPLETE_SESSION,
        {
            "sid": session_id,
            "at": at,
            "intent": _id(obj.get("payment_intent")),
            "amount": amount if isinstance(amount, int) else None,
        },
    ).first()
    metadata = obj.get("metadata") or {}
    if stored is not None:
        user_id, item = stored.user_id, stored.item
    else:  # made outside this API (a payment link): trust only a known user
        user_id = _existing_user(session, obj.get("client_reference_id"))
        item = metadata.get("item")
    if user_id is None or not isinstance(item, str):
        log.warning("checkout session %s is not one of ours; ignored", session_id)
        return "ignored"
    customer = _id(obj.get("customer"))
    mode = obj.get("mode")
    if mode == "payment":
        pack = CREDIT_PACKS.get(item)
        if pack is None or obj.get("payment_status") not in ("paid", "no_payment_required"):
            return "ignored"
        add_credits(
            session,
            user_id,
            pack.credits,
            kind="purchase",
            ref=f"checkout:{session_id}",
            customer=customer,
        )
    elif customer:
        conn.execute(_SET_CUSTOMER, {"uid": user_id, "customer": customer})
    if mode == "subscription":
        sub_id = _id(obj.get("subscription"))
        if (
            sub_id is not None
            and item in PLANS
            and session.get(BillingSubscription, sub_id) is None
        ):
            # The subscription's own events may come later (or earlier:
            # then the row exists and they own its state).
            session.add(
                BillingSubscription(
                    id=sub_id,
                    user_id=user_id,
                    stripe_customer_id=customer,
                    plan=item,
                    status="active" if obj.get("payment_status") == "paid" else "incomplete",
                    state_at=at,
                    created_at=utcnow(),
                    updated_at=utcnow(),
                )
            )
    record_event(
        session,
        "conversion",
        event="checkout_completed",
        user_id=user_id,
        properties={"item": item, "mode": mode, "amount_total": obj.get("amount_total")},
    )
    return "applied"


def on_charge_refunded(
    session: Session, obj: dict[str, Any], at: datetime, ctx: WebhookContext
) -> Outcome:
    """Credits bought with the charge are taken back in proportion to the
    amount refunded so far; the balance may go negative (spending stops)."""
    charge_id = _id(obj.get("id"))
    intent = _id(obj.get("payment_intent"))
    if charge_id is None or intent is None:
        return "ignored"
    bought = session.scalars(
        select(CheckoutSession).where(CheckoutSession.payment_intent == intent)
    ).first()
    if bought is None or bought.item not in CREDIT_PACKS:
        return "ignored"
    pack = CREDIT_PACKS[bought.item]
    amount = int(obj.get("amount") or bought.amount_total or pack.price_cents)
    refunded = min(int(obj.get("amount_refunded") or 0), amount)
    target = pack.credits if obj.get("refunded") else (pack.credits * refunded) // max(amount, 1)
    prefix = f"chargeback:{charge_id}:"
    taken = -sum(
        e.delta
        for e in session.scalars(select(CreditEntry).where(CreditEntry.ref.startswith(prefix)))
    )
    if target <= taken:
        return "stale"
    add_credits(
        session, bought.user_id, -(target - taken), kind="chargeback", ref=f"{prefix}{refunded}"
    )
    record_event(
        session,
        "credits_refunded",
        user_id=bought.user_id,
        properties={"charge_id": charge_id, "credits": target - taken, "item": bought.item},
    )
    return "applied"


HANDLERS: dict[str, Handler] = {
    "checkout.session.completed": on_checkout_completed,
    "customer.subscription.created": on_subscription,
    "customer.subscription.updated": on_subscription,
    "customer.subscription.deleted": on_subscription_deleted,
    "invoice.paid": on_invoice_paid,
    "invoice.payment_failed": on_invoice_payment_failed,
    "charge.refunded": on_charge_refunded,
}


@functools.cache
def _event_insert(dialect: str) -> Any:
    ins = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return (
        ins(StripeEvent)
        .values(
            id=bindparam("id"),
            type=bindparam("type"),
            created=bindparam("created"),
            outcome="applied",
            received_at=bindparam("received_at"),
        )
        .on_conflict_do_nothing(index_elements=["id"])
        .returning(StripeEvent.id)
    )


def apply_in_transaction(
    session: Session,
    event: Mapping[str, Any],
    ctx: WebhookContext,
    *,
    handlers: Mapping[str, Handler] = HANDLERS,
) -> Outcome:
    """Record the event's id and apply it in the session's open transaction
    (the caller commits); ``duplicate`` when the id is recorded already."""
    event_id = str(event["id"])
    event_type = str(event.get("type") or "")
    at = _ts(event.get("created")) or utcnow()
    # The id goes in first, before anything is read: on PostgreSQL a
    # concurrent delivery of the same event waits here for this one's
    # commit and then inserts nothing; on SQLite the write lock is taken
    # before any read, so no two transactions act on one snapshot.
    conn = session.connection()
    inserted = conn.execute(
        _event_insert(conn.dialect.name),
        {"id": event_id, "type": event_type, "created": at, "received_at": utcnow()},
    )
    if inserted.scalar() is None:  # RETURNING: psycopg's rowcount is -1 here
        return "duplicate"
    handler = handlers.get(event_type)
    obj = dict((event.get("data") or {}).get("object") or {})
    outcome: Outcome = handler(session, obj, at, ctx) if handler else "ignored"
    if outcome != "applied":
        conn.execute(update(StripeEvent).where(StripeEvent.id == event_id).values(outcome=outcome))
    return outcome


def apply_event(
    session: Session,
    event: Mapping[str, Any],
    ctx: WebhookContext,
    *,
    handlers: Mapping[str, Handler] = HANDLERS,
) -> Outcome:
    """Apply a verified event once; commits. A handler's exception rolls
    back everything, the event id included, and propagates."""
    try:
        outcome = apply_in_transaction(session, event, ctx, handlers=handlers)
        if outcome == "duplicate":
            session.rollback()
        else:
            session.commit()
    except BaseException:
        session.rollback()
        raise
    return outcome


@dataclass
class _Pending:
    event: Mapping[str, Any]
    ctx: WebhookContext
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[Outcome] = field(repr=False)


class WebhookWriter:
    """Group commit for webhook events: one thread per API worker applies
    every event waiting in its queue in one transaction, so a burst of
    deliveries (Stripe retrying after an outage) shares its commits. Each
    event's id still commits with its effect, and a delivery is answered
    only after the commit. A batch in which a handler fails is applied
    again event by event, so only the failing event is refused (and rolled
    back whole: Stripe delivers it again)."""

    def __init__(self, db: Database, *, max_batch: int = 128, linger_s: float = 0.002) -> None:
        self.db = db
        self.max_batch = max_batch
        # How long a batch waits for more deliveries after its first: a
        # burst's deliveries arrive a little apart, and a commit that waits
        # two milliseconds for them is shared instead of repeated.
        self.linger_s = linger_s
        self._queue: queue.SimpleQueue[_Pending | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self.batches = 0  # group commits made
        self.events = 0  # events taken from the queue
        self.takes = 0  # batches taken (events / takes: the mean batch)

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="webhook-writer", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout=30)
            self._thread = None

    async def apply(self, event: Mapping[str, Any], ctx: WebhookContext) -> Outcome:
        if self._thread is None:  # not started (no lifespan): apply it here
            return await asyncio.to_thread(self._apply_one, event, ctx)
        loop = asyncio.get_running_loop()
        pending = _Pending(event, ctx, loop, loop.create_future())
        self._queue.put(pending)
        return await pending.future

    def _apply_one(self, event: Mapping[str, Any], ctx: WebhookContext) -> Outcome:
        with self.db.session() as session:
            return apply_event(session, event, ctx, handlers=HANDLERS)

    def _run(self) -> None:
        stopping = False
        while not stopping:
            first = self._queue.get()
            if first is None:
                break
            batch = [first]
            deadline = time.monotonic() + self.linger_s
            while len(batch) < self.max_batch:
                try:
                    wait = deadline - time.monotonic()
                    item = self._queue.get(timeout=wait) if wait > 0 else self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stopping = True
                    break
                batch.append(item)
            self.events += len(batch)
            self.takes += 1
            self._write(batch)

    def _write(self, batch: list[_Pending]) -> None:
        if len(batch) == 1:
            item = batch[0]
            try:
                _settle(item, result=self._apply_one(item.event, item.ctx))
            except Exception as exc:
                _settle(item, error=exc)
            return
        try:
            with self.db.session() as session:
                outcomes = [
                    apply_in_transaction(session, p.event, p.ctx, handlers=HANDLERS) for p in batch
                ]
                session.commit()
            self.batches += 1
        except Exception:
            log.warning("webhook batch failed; applying its events one by one", exc_info=True)
            for item in batch:
                self._write([item])
            return
        # One event-loop wake-up per batch and loop, not one per delivery.
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[_Pending, Outcome]]] = {}
        for item, outcome in zip(batch, outcomes, strict=True):
            by_loop.setdefault(item.loop, []).append((item, outcome))
        for loop, settled in by_loop.items():
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(_settle_all, settled)


def _settle_all(settled: list[tuple[_Pending, Outcome]]) -> None:
    for item, outcome in settled:
        if not item.future.done():
            item.future.set_result(outcome)


def _settle(
    item: _Pending, *, result: Outcome | None = None, error: BaseException | None = None
) -> None:
    def done() -> None:
        if item.future.done():
            return
        if error is not None:
            item.future.set_exception(error)
        else:
            item.future.set_result(result)  # type: ignore[arg-type]

    with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
        item.loop.call_soon_threadsafe(done)
