"""The app database's tables (SQLAlchemy 2 typed declarative models).

Alembic migrations under ``serving/migrations`` create them; a test checks
that the migrations and these models agree.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from serving.db.types import UTCDateTime, utcnow, uuid7
from serving.security.permissions import Role

# Named constraints, so migrations can alter them on every backend.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UTCDateTime()}


class User(Base):
    __tablename__ = "users"
    __table_args__ = (
        CheckConstraint(f"role IN ({', '.join(repr(r.value) for r in Role)})", name="role"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=uuid7)
    # Stored lower-cased: one account per address whatever the case typed.
    email: Mapped[str] = mapped_column(String(320), unique=True)
    password_hash: Mapped[str] = mapped_column(String(100))
    display_name: Mapped[str] = mapped_column(String(80))
    role: Mapped[str] = mapped_column(String(16), default="listener")
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class RefreshFamily(Base):
    """One login session: every refresh token rotated from one login.

    Only ``current_jti`` may be exchanged; presenting an older token of the
    family means it was copied, so the whole family is revoked.
    """

    __tablename__ = "refresh_families"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=uuid7)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    current_jti: Mapped[str] = mapped_column(String(36))
    rotations: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)
    revoked_reason: Mapped[str | None] = mapped_column(String(32), default=None)
    user_agent: Mapped[str | None] = mapped_column(String(256), default=None)
    ip: Mapped[str | None] = mapped_column(String(64), default=None)


class ApiKey(Base):
    """An API key; the key itself is shown once and only its SHA-256 kept."""

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=uuid7)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(80))
    prefix: Mapped[str] = mapped_column(String(16))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    scopes: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(default=None)
    last_used_at: Mapped[datetime | None] = mapped_column(default=None)
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)


class Vote(Base):
    """A user's current vote on a track (the lakehouse keeps the history)."""

    __tablename__ = "votes"
    __table_args__ = (
        UniqueConstraint("user_id", "track_id", name="uq_votes_user_track"),
        CheckConstraint("stars IS NULL OR (stars BETWEEN 1 AND 5)", name="stars"),
        CheckConstraint("direction IS NULL OR direction IN (-1, 1)", name="direction"),
        CheckConstraint("stars IS NOT NULL OR direction IS NOT NULL", name="something"),
        Index("ix_votes_track_id", "track_id"),
        Index("ix_votes_genre_updated_at", "genre", "updated_at"),
        Index("ix_votes_updated_at", "updated_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    track_id: Mapped[str] = mapped_column(String(64))
    # Copied from the lakehouse when the vote is cast, so charts by genre
    # group in SQL without joining the lakehouse.
    genre: Mapped[str] = mapped_column(String(64))
    stars: Mapped[int | None] = mapped_column(SmallInteger, default=None)
    direction: Mapped[int | None] = mapped_column(SmallInteger, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class Share(Base):
    __tablename__ = "shares"

    code: Mapped[str] = mapped_column(String(24), primary_key=True)
    track_id: Mapped[str] = mapped_column(String(64), index=True)
    user_id: Mapped[str | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    clicks: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class OutboxEvent(Base):
    """An event waiting to be drained into the lakehouse ``events`` table.

    Written in the same transaction as the change it describes, so an event
    exists if and only if the change committed.
    """

    __tablename__ = "event_outbox"
    __table_args__ = (Index("ix_event_outbox_drained_at_ts", "drained_at", "ts"),)

    # 64: client-made ids (0002) may be longer than a UUID.
    event_id: Mapped[str] = mapped_column(String(64), primary_key=True, default=uuid7)
    type: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[str | None] = mapped_column(String(36), default=None)
    anonymous_id: Mapped[str | None] = mapped_column(String(64), default=None)
    track_id: Mapped[str | None] = mapped_column(String(64), default=None)
    properties: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    experiment_id: Mapped[str | None] = mapped_column(String(64), default=None)
    variant: Mapped[str | None] = mapped_column(String(64), default=None)
    ts: Mapped[datetime] = mapped_column(default=utcnow)
    drained_at: Mapped[datetime | None] = mapped_column(default=None)
    request_id: Mapped[str | None] = mapped_column(String(64), default=None)
    # Added by 0002 (analytics): the Segment-shaped fields of client events,
    # and the drain batch that claimed the row (serving/services/outbox.py).
    event: Mapped[str | None] = mapped_column(String(128), default=None)
    context: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    sent_at: Mapped[datetime | None] = mapped_column(default=None)
    received_at: Mapped[datetime | None] = mapped_column(default=None)
    clock_skew_s: Mapped[float | None] = mapped_column(Float, default=None)
    flags: Mapped[list[str] | None] = mapped_column(JSON, default=None)
    drain_batch: Mapped[int | None] = mapped_column(BigInteger, default=None, index=True)


class OutboxBatch(Base):
    """One batch the drain took from the outbox (0002): its rows carry the
    batch number; ``committed_at`` is set once they are in Delta, which
    marks them all drained (``analytics.drain``)."""

    __tablename__ = "event_outbox_batches"

    batch: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    app_id: Mapped[str] = mapped_column(String(64))
    rows: Mapped[int] = mapped_column(Integer)
    claimed_at: Mapped[datetime] = mapped_column(default=utcnow)
    committed_at: Mapped[datetime | None] = mapped_column(default=None)


class ExperimentAssignment(Base):
    """The variant a user or anonymous visitor was first served (0002).

    The variant itself is a pure function of the experiment and the unit
    (``analytics.experiments``); the row records the first exposure, so
    its event is written once, and lets a conversion find its exposure.
    """

    __tablename__ = "experiment_assignments"

    experiment_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    unit_id: Mapped[str] = mapped_column(String(80), primary_key=True)
    variant: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[str | None] = mapped_column(String(36), default=None)
    anonymous_id: Mapped[str | None] = mapped_column(String(64), default=None)
    exposure_event_id: Mapped[str] = mapped_column(String(64))
    assigned_at: Mapped[datetime] = mapped_column(default=utcnow)


# -- payments (0003): billing accounts, subscriptions, credits, webhooks, requests --


class BillingAccount(Base):
    """A user's Stripe customer and credit balance.

    The row is also the user's spending lock: reserving quota or a credit
    updates it first, so concurrent requests of one user run one at a time
    (a row lock on PostgreSQL, the write lock on SQLite).
    """

    __tablename__ = "billing_accounts"

    user_id: Mapped[str] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    stripe_customer_id: Mapped[str | None] = mapped_column(String(255), unique=True, default=None)
    # The sum of the user's credit entries, kept with them in one transaction.
    credit_balance: Mapped[int] = mapped_column(Integer, default=0)
    lock_version: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class BillingSubscription(Base):
    """A Stripe subscription as the webhooks last reported it."""

    __tablename__ = "billing_subscriptions"
    __table_args__ = (Index("ix_billing_subscriptions_user_id", "user_id"),)

    id: Mapped[str] = mapped_column(String(255), primary_key=True)  # sub_...
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    stripe_customer_id: Mapped[str | None] = mapped_column(String(255), default=None)
    plan: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(32))
    current_period_end: Mapped[datetime | None] = mapped_column(default=None)
    cancel_at_period_end: Mapped[bool] = mapped_column(Boolean, default=False)
    past_due_since: Mapped[datetime | None] = mapped_column(default=None)
    canceled_at: Mapped[datetime | None] = mapped_column(default=None)
    # When Stripe made the state stored here (the event's time): an older
    # event never overwrites a newer state.
    state_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class CheckoutSession(Base):
    """A Stripe Checkout Session this API created."""

    __tablename__ = "checkout_sessions"
    __table_args__ = (Index("ix_checkout_sessions_payment_intent", "payment_intent"),)

    id: Mapped[str] = mapped_column(String(255), primary_key=True)  # cs_...
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    mode: Mapped[str] = mapped_column(String(16))  # subscription, payment
    item: Mapped[str] = mapped_column(String(32))  # plan or credit pack id
    status: Mapped[str] = mapped_column(String(16), default="open")
    url: Mapped[str | None] = mapped_column(String(2048), default=None)
    payment_intent: Mapped[str | None] = mapped_column(String(255), default=None)
    amount_total: Mapped[int | None] = mapped_column(Integer, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    completed_at: Mapped[datetime | None] = mapped_column(default=None)


class CreditEntry(Base):
    """One change of a user's credits; ``ref`` makes each change happen once
    (a purchase per checkout session, a spend and a refund per request)."""

    __tablename__ = "credit_entries"
    __table_args__ = (Index("ix_credit_entries_user_id_created_at", "user_id", "created_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    delta: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(16))  # purchase, spend, refund, chargeback
    ref: Mapped[str] = mapped_column(String(255), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class StripeEvent(Base):
    """A webhook event applied: recorded in the transaction of its effect."""

    __tablename__ = "stripe_events"

    id: Mapped[str] = mapped_column(String(255), primary_key=True)  # evt_...
    type: Mapped[str] = mapped_column(String(128))
    created: Mapped[datetime] = mapped_column()
    outcome: Mapped[str] = mapped_column(String(32))  # applied, stale, ignored
    received_at: Mapped[datetime] = mapped_column(default=utcnow)


class TrackRequest(Base):
    """A listener's track request, from prompt to air."""

    __tablename__ = "track_requests"
    __table_args__ = (
        Index("ix_track_requests_user_id_created_at", "user_id", "created_at"),
        Index("ix_track_requests_status", "status"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=uuid7)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    prompt: Mapped[str] = mapped_column(String(2000))
    genre: Mapped[str] = mapped_column(String(64))
    duration_s: Mapped[float] = mapped_column(Float)
    bpm: Mapped[float | None] = mapped_column(Float, default=None)
    mood: Mapped[str | None] = mapped_column(String(64), default=None)
    plan: Mapped[str] = mapped_column(String(32))
    priority: Mapped[int] = mapped_column(Integer, default=0)
    charge: Mapped[str] = mapped_column(String(16))  # quota, credit
    paid: Mapped[bool] = mapped_column(Boolean, default=False)
    generator: Mapped[str | None] = mapped_column(String(32), default=None)
    show_name: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(16), default="queued")
    reason: Mapped[str | None] = mapped_column(String(1000), default=None)
    batch_id: Mapped[str] = mapped_column(String(64), unique=True)
    run_id: Mapped[str | None] = mapped_column(String(64), default=None)
    track_id: Mapped[str | None] = mapped_column(String(64), default=None)
    queue_entry_id: Mapped[str | None] = mapped_column(String(64), default=None)
    expected_air_at: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    aired_at: Mapped[datetime | None] = mapped_column(default=None)
    refunded_at: Mapped[datetime | None] = mapped_column(default=None)
