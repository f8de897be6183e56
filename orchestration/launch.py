"""Launch the generation job for a new batch partition.

The CLI and embedded callers use this; it runs the same assets, checks and
resources as the Dagster UI, and records the run in the instance so it shows
up there.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import dagster as dg

from orchestration.config import GenerationConfig
from orchestration.jobs import GENERATE_JOB
from orchestration.partitions import BATCHES, new_batch_id
from sonicforge.settings import Settings, get_settings

# Who asked for a run ("sonicforge" here, the feed sensor's name, "api").
LAUNCHED_BY_TAG = "sonicforge/launched_by"


@dataclass
class LaunchResult:
    batch_id: str
    run_id: str
    success: bool
    failed_steps: list[str]
    failed_checks: list[str]


def ensure_dagster_home(settings: Settings | None = None) -> str:
    """Point ``DAGSTER_HOME`` at the embedded instance unless it is set."""
    settings = settings or get_settings()
    home = os.environ.setdefault("DAGSTER_HOME", str(settings.resolved_dagster_home))
    os.makedirs(home, exist_ok=True)
    config = os.path.join(home, "dagster.yaml")
    if not os.path.exists(config):
        # An empty file means "the embedded SQLite storage under this home";
        # production points this file at dagster-postgres and the K8s launcher.
        with open(config, "w") as fh:
            fh.write("# Embedded instance: SQLite storage under DAGSTER_HOME.\n")
    return home


def run_config_for(config: GenerationConfig) -> dict[str, Any]:
    return {"ops": {"generated_tracks": {"config": config.model_dump(exclude_none=True)}}}


def launch_generation(
    config: GenerationConfig,
    *,
    defs: dg.Definitions | None = None,
    instance: dg.DagsterInstance | None = None,
    batch_id: str | None = None,
    tags: dict[str, str] | None = None,
    log_level: str = "INFO",
) -> LaunchResult:
    """Add a batch partition and materialize the track pipeline for it."""
    if defs is None:
        from orchestration.definitions import build_definitions

        defs = build_definitions()
    if instance is None:
        ensure_dagster_home()
        instance = dg.DagsterInstance.get()
    batch_id = batch_id or new_batch_id()
    instance.add_dynamic_partitions(BATCHES, [batch_id])
    job = defs.resolve_job_def(GENERATE_JOB)
    result = job.execute_in_process(
        run_config={
            **run_config_for(config),
            "loggers": {"console": {"config": {"log_level": log_level}}},
        },
        instance=instance,
        partition_key=batch_id,
        raise_on_error=False,
        tags={LAUNCHED_BY_TAG: "sonicforge", **(tags or {})},
    )
    failed_steps = [e.step_key or "" for e in result.all_events if e.is_step_failure]
    failed_checks = [
        f"{e.asset_check_evaluation_data.asset_key.to_user_string()}:{e.asset_check_evaluation_data.check_name}"
        for e in result.all_events
        if e.event_type_value == "ASSET_CHECK_EVALUATION"
        and not e.asset_check_evaluation_data.passed
    ]
    return LaunchResult(batch_id, result.run_id, result.success, failed_steps, failed_checks)
