"""Partitions: one dynamic partition per generation batch or listener request."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime

import dagster as dg

BATCHES = "batches"
batch_partitions = dg.DynamicPartitionsDefinition(name=BATCHES)


def new_batch_id(*, now: datetime | None = None) -> str:
    """A sortable, unique batch id such as ``b20261124-154500-3f9a``."""
    now = now or datetime.now(UTC)
    return f"b{now:%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"
