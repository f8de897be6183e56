"""Lakehouse upkeep: compact small files and vacuum old ones, nightly.

Writers append in batches, but the streamer's plays and the event tables
still collect many small files; a scheduled job keeps scans fast.
"""

# No ``from __future__ import annotations``: Dagster reads the op's annotations
# at definition time to build its config schema.

import dagster as dg

from orchestration.resources import LakehouseResource
from sonicforge.tables import CONTRACTS


class MaintenanceConfig(dg.Config):
    retention_hours: int = 168


@dg.op
def compact_and_vacuum_tables(
    context: dg.OpExecutionContext, config: MaintenanceConfig, lakehouse: LakehouseResource
) -> dg.Output[dict[str, dict[str, int]]]:
    """Compact every existing table, then vacuum files older than the retention."""
    lh = lakehouse.open()
    report: dict[str, dict[str, int]] = {}
    for name in CONTRACTS:
        if not lh.exists(name):
            continue
        metrics = lh.compact(name)
        removed = lh.vacuum(name, retention_hours=config.retention_hours)
        report[name] = {
            "files_added": int(metrics.get("numFilesAdded", 0)),
            "files_removed": int(metrics.get("numFilesRemoved", 0)),
            "files_vacuumed": len(removed),
        }
        context.log.info(f"{name}: {report[name]}")
    return dg.Output(report, metadata={"tables": dg.MetadataValue.json(report)})


@dg.job(description="Compact and vacuum the Delta tables.")
def lakehouse_maintenance_job() -> None:
    compact_and_vacuum_tables()


lakehouse_maintenance_schedule = dg.ScheduleDefinition(
    job=lakehouse_maintenance_job,
    cron_schedule="30 3 * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
)
