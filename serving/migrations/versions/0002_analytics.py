"""experiment assignments, outbox columns and drain batches

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_OUTBOX_COLUMNS = (
    sa.Column("event", sa.String(length=128), nullable=True),
    sa.Column("context", sa.JSON(), nullable=True),
    sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("received_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("clock_skew_s", sa.Float(), nullable=True),
    sa.Column("flags", sa.JSON(), nullable=True),
    sa.Column("drain_batch", sa.BigInteger(), nullable=True),
)


def upgrade() -> None:
    with op.batch_alter_table("event_outbox") as batch:
        # Client-made ids (Segment's "ajs-next-<uuid>") are longer than a UUID.
        batch.alter_column(
            "event_id", existing_type=sa.String(length=36), type_=sa.String(length=64)
        )
        for column in _OUTBOX_COLUMNS:
            batch.add_column(column.copy())
    op.create_index(
        op.f("ix_event_outbox_drain_batch"), "event_outbox", ["drain_batch"], unique=False
    )
    op.create_table(
        "event_outbox_batches",
        sa.Column("batch", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("app_id", sa.String(length=64), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("committed_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("batch", name=op.f("pk_event_outbox_batches")),
    )
    op.create_table(
        "experiment_assignments",
        sa.Column("experiment_id", sa.String(length=64), nullable=False),
        sa.Column("unit_id", sa.String(length=80), nullable=False),
        sa.Column("variant", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.String(length=36), nullable=True),
        sa.Column("anonymous_id", sa.String(length=64), nullable=True),
        sa.Column("exposure_event_id", sa.String(length=64), nullable=False),
        sa.Column("assigned_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("experiment_id", "unit_id", name=op.f("pk_experiment_assignments")),
    )


def downgrade() -> None:
    op.drop_table("experiment_assignments")
    op.drop_table("event_outbox_batches")
    op.drop_index(op.f("ix_event_outbox_drain_batch"), table_name="event_outbox")
    with op.batch_alter_table("event_outbox") as batch:
        for column in reversed(_OUTBOX_COLUMNS):
            batch.drop_column(column.name)
        batch.alter_column(
            "event_id", existing_type=sa.String(length=64), type_=sa.String(length=36)
        )
