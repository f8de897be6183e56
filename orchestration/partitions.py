"""Partitions: one dynamic partition per generation batch or listener request."""

from __future__ import annotations

from datetime import datetime

import dagster as dg

from sonicforge import ids

BATCHES = "batches"
batch_partitions = dg.DynamicPartitionsDefinition(name=BATCHES)


def new_batch_id(*, now: datetime | None = None) -> str:
    """A sortable, unique batch id such as ``b20261124-154500-3f9a``."""
    return ids.new_batch_id(now)
