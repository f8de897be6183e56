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
