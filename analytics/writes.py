"""Writing the analytics tables: a day's partition is replaced as a whole
(a re-run of a day replaces it, never adds to it), a snapshot table is
overwritten; and the event tables' upkeep (compaction per day, vacuum)."""

from __future__ import annotations

from datetime import date
from typing import Any

import pyarrow as pa
from deltalake import DeltaTable, write_deltalake

from sonicforge.lakehouse import Lakehouse
from sonicforge.tables import contract


def replace_day(lh: Lakehouse, name: str, data: pa.Table, day: date) -> int:
    """Replace partition ``day`` of table ``name`` with ``data``."""
    c = contract(name)
    lh.ensure(name)
    table = lh.conform(c, data)
    write_deltalake(
        lh.table_uri(name),
        table,
        mode="overwrite",
        predicate=f"day = '{day.isoformat()}'",
        storage_options=lh.storage_options or None,
    )
    return table.num_rows


def replace_all(lh: Lakehouse, name: str, data: pa.Table) -> int:
    """Overwrite a snapshot table (trending, experiment results)."""
    c = contract(name)
    lh.ensure(name)
    table = lh.conform(c, data)
    write_deltalake(
        lh.table_uri(name), table, mode="overwrite", storage_options=lh.storage_options or None
    )
    return table.num_rows


def files_per_day(lh: Lakehouse, name: str) -> dict[str, int]:
    """How many data files each day partition of ``name`` holds now."""
    if not lh.exists(name):
        return {}
    dt = DeltaTable(lh.table_uri(name), storage_options=lh.storage_options or None)
    actions = pa.table(dt.get_add_actions(flatten=True)).to_pydict()
    out: dict[str, int] = {}
    for value in actions.get("partition.day", []):
        key = str(value)
        out[key] = out.get(key, 0) + 1
    return out


def compact_days(
    lh: Lakehouse, name: str, *, days: list[date] | None = None, target_size: int | None = None
) -> dict[str, Any]:
    """Merge each day's small files (all days, or ``days``)."""
    if not lh.exists(name):
        return {"files_added": 0, "files_removed": 0}
    dt = DeltaTable(lh.table_uri(name), storage_options=lh.storage_options or None)
    filters: Any = None
    if days:
        filters = [("day", "in", [d.isoformat() for d in days])]
    metrics = dt.optimize.compact(partition_filters=filters, target_size=target_size)
    return {
        "files_added": int(metrics.get("numFilesAdded", 0)),
        "files_removed": int(metrics.get("numFilesRemoved", 0)),
    }
