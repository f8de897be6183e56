"""subscriptions credits requests webhook events

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _ts(name: str, *, nullable: bool = False) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _user_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["user_id"], ["users.id"], name=op.f(f"fk_{table}_user_id_users"), ondelete="CASCADE"
    )


def upgrade() -> None:
    op.create_table(
        "billing_accounts",
        sa.Column("user_id", sa.String(length=36), nullable=False),
        sa.Column("stripe_customer_id", sa.String(length=255), nullable=True),
        sa.Column("credit_balance", sa.Integer(), nullable=False),
        sa.Column("lock_version", sa.Integer(), nullable=False),
        _ts("created_at"),
        _ts("updated_at"),
        _user_fk("billing_accounts"),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_billing_accounts")),
        sa.UniqueConstraint(
            "stripe_customer_id", name=op.f("uq_billing_accounts_stripe_customer_id")
        ),
    )
    op.create_table(
        "billing_subscriptions",
        sa.Column("id", sa.String(length=255), nullable=False),
        sa.Column("user_id", sa.String(length=36), nullable=False),
        sa.Column("stripe_customer_id", sa.String(length=255), nullable=True),
        sa.Column("plan", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        _ts("current_period_end", nullable=True),
        sa.Column("cancel_at_period_end", sa.Boolean(), nullable=False),
        _ts("past_due_since", nullable=True),
        _ts("canceled_at", nullable=True),
        _ts("state_at"),
        _ts("created_at"),
        _ts("updated_at"),
        _user_fk("billing_subscriptions"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_billing_subscriptions")),
    )
    op.create_index(
        "ix_billing_subscriptions_user_id", "billing_subscriptions", ["user_id"], unique=False
    )
    op.create_table(
        "checkout_sessions",
        sa.Column("id", sa.String(length=255), nullable=False),
        sa.Column("user_id", sa.String(length=36), nullable=False),
        sa.Column("mode", sa.String(length=16), nullable=False),
        sa.Column("item", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("url", sa.String(length=2048), nullable=True),
        sa.Column("payment_intent", sa.String(length=255), nullable=True),
        sa.Column("amount_total", sa.Integer(), nullable=True),
        _ts("created_at"),
        _ts("completed_at", nullable=True),
        _user_fk("checkout_sessions"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_checkout_sessions")),
    )
    op.create_index(
        op.f("ix_checkout_sessions_user_id"), "checkout_sessions", ["user_id"], unique=False
    )
    op.create_index(
        "ix_checkout_sessions_payment_intent",
        "checkout_sessions",
        ["payment_intent"],
        unique=False,
    )
    op.create_table(
        "credit_entries",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("user_id", sa.String(length=36), nullable=False),
        sa.Column("delta", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("ref", sa.String(length=255), nullable=False),
        _ts("created_at"),
        _user_fk("credit_entries"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_credit_entries")),
        sa.UniqueConstraint("ref", name=op.f("uq_credit_entries_ref")),
    )
    op.create_index(
        "ix_credit_entries_user_id_created_at",
        "credit_entries",
        ["user_id", "created_at"],
        unique=False,
    )
    op.create_table(
        "stripe_events",
        sa.Column("id", sa.String(length=255), nullable=False),
        sa.Column("type", sa.String(length=128), nullable=False),
        _ts("created"),
        sa.Column("outcome", sa.String(length=32), nullable=False),
        _ts("received_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stripe_events")),
    )
    op.create_table(
        "track_requests",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("user_id", sa.String(length=36), nullable=False),
        sa.Column("prompt", sa.String(length=2000), nullable=False),
        sa.Column("genre", sa.String(length=64), nullable=False),
        sa.Column("duration_s", sa.Float(), nullable=False),
        sa.Column("bpm", sa.Float(), nullable=True),
        sa.Column("mood", sa.String(length=64), nullable=True),
        sa.Column("plan", sa.String(length=32), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("charge", sa.String(length=16), nullable=False),
        sa.Column("paid", sa.Boolean(), nullable=False),
        sa.Column("generator", sa.String(length=32), nullable=True),
        sa.Column("show_name", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=1000), nullable=True),
        sa.Column("batch_id", sa.String(length=64), nullable=False),
        sa.Column("run_id", sa.String(length=64), nullable=True),
        sa.Column("track_id", sa.String(length=64), nullable=True),
        sa.Column("queue_entry_id", sa.String(length=64), nullable=True),
        _ts("expected_air_at", nullable=True),
        _ts("created_at"),
        _ts("updated_at"),
        _ts("aired_at", nullable=True),
        _ts("refunded_at", nullable=True),
        _user_fk("track_requests"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_track_requests")),
        sa.UniqueConstraint("batch_id", name=op.f("uq_track_requests_batch_id")),
    )
    op.create_index(
        "ix_track_requests_user_id_created_at",
        "track_requests",
        ["user_id", "created_at"],
        unique=False,
    )
    op.create_index("ix_track_requests_status", "track_requests", ["status"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_track_requests_status", table_name="track_requests")
    op.drop_index("ix_track_requests_user_id_created_at", table_name="track_requests")
    op.drop_table("track_requests")
    op.drop_table("stripe_events")
    op.drop_index("ix_credit_entries_user_id_created_at", table_name="credit_entries")
    op.drop_table("credit_entries")
    op.drop_index("ix_checkout_sessions_payment_intent", table_name="checkout_sessions")
    op.drop_index(op.f("ix_checkout_sessions_user_id"), table_name="checkout_sessions")
    op.drop_table("checkout_sessions")
    op.drop_index("ix_billing_subscriptions_user_id", table_name="billing_subscriptions")
    op.drop_table("billing_subscriptions")
    op.drop_table("billing_accounts")
