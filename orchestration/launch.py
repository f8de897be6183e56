"""Launch the generation job for a new batch partition.

The CLI and embedded callers use this; it runs the same assets, checks and
resources as the Dagster UI, and records the run in the instance so it shows
up there.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg

from orchestration.config import GenerationConfig
from orchestration.jobs import GENERATE_JOB
from orchestration.partitions import BATCHES, new_batch_id
from sonicforge import telemetry
from sonicforge.settings import Settings, get_settings

# Who asked for a run ("sonicforge" here, the feed sensor's name, "api",
# FIRST_BATCH for the batch `make run` puts on air first).
LAUNCHED_BY_TAG = "sonicforge/launched_by"
FIRST_BATCH = "make-run"
EMBEDDED_MARKER = "# Embedded instance: SQLite storage under DAGSTER_HOME."


def embedded_instance_yaml(settings: Settings) -> str:
    """The embedded instance's ``dagster.yaml``: SQLite storage under the home
    (the default when no storage is named), run monitoring on so that a run
    whose worker died is marked failed instead of staying STARTED, and no
    telemetry."""
    timeout = settings.generation_run_timeout_s
    return (
        f"{EMBEDDED_MARKER}\n"
        "# Written by `sonicforge init`; production points this file at\n"
        "# dagster-postgres and the K8s run launcher instead.\n"
        "run_monitoring:\n"
        "  enabled: true\n"
        "  start_timeout_seconds: 180\n"
        f"  max_runtime_seconds: {timeout}\n"
        "  poll_interval_seconds: 30\n"
        # One launched run at a time (the feed sensor's, the API's): each
        # holds the pipeline and its audio in memory.
        "concurrency:\n"
        "  runs:\n"
        "    max_concurrent_runs: 1\n"
        "telemetry:\n"
        "  enabled: false\n"
    )


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
    text = embedded_instance_yaml(settings)
    if settings.dagster_postgres_url:  # the production profile (orchestration.instance)
        from orchestration.instance import production_instance_yaml

        text = production_instance_yaml(settings)
    current = None
    if os.path.exists(config):
        with open(config) as fh:
            current = fh.read()
    # A file someone else wrote (production's) is left alone; the embedded
    # one is brought up to date (earlier versions lacked run monitoring).
    ours = (EMBEDDED_MARKER, "# Production instance: dagster-postgres storage.")
    if current is None or (current != text and current.startswith(ours)):
        tmp = f"{config}.tmp-{os.getpid()}"
        with open(tmp, "w") as fh:
            fh.write(text)
        os.replace(tmp, config)
    return home


def run_config_for(config: GenerationConfig, *, in_process: bool = False) -> dict[str, Any]:
    """Run config of the generation job. ``in_process`` runs every step in the
    run's own process instead of a process per step (each of which would load
    the whole code location again): what a run launched into the embedded
    instance uses, since its steps form a chain and the tracks of a step
    already fan out over the generator's worker processes."""
    out: dict[str, Any] = {
        "ops": {"generated_tracks": {"config": config.model_dump(exclude_none=True)}}
    }
    if get_settings().dagster_run_executor == "k8s":  # a Job per step, GPU for MusicGen
        from sonicforge.k8s_steps import k8s_execution_config

        out["execution"] = k8s_execution_config(config.backend)
    elif in_process:
        out["execution"] = {"config": {"in_process": {}}}
    return out


def _process_started_at(pid: int) -> float | None:
    """When process ``pid`` started (Unix time), or ``None`` if there is none
    (a zombie counts as none)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        btime = next(
            float(line.split()[1])
            for line in Path("/proc/stat").read_text().splitlines()
            if line.startswith("btime ")
        )
    except (FileNotFoundError, ProcessLookupError, PermissionError, StopIteration):
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    if fields[0] in ("Z", "X"):
        return None
    return btime + int(fields[19]) / os.sysconf("SC_CLK_TCK")


def local_worker_gone(instance: dg.DagsterInstance, run_id: str) -> bool:
    """True when the run started in a process on this machine that no longer
    exists. Only meaningful where runs execute on this machine (the embedded
    instance: the default run launcher or ``execute_in_process``); a run with
    no start event, or off Linux, is never called gone."""
    if not Path("/proc/stat").exists():
        return False
    records = instance.get_records_for_run(
        run_id, of_type=dg.DagsterEventType.RUN_START, limit=1
    ).records
    if not records:
        return False
    entry = records[0].event_log_entry
    pid = entry.dagster_event.pid if entry.dagster_event is not None else None
    if pid is None:
        return False
    started = _process_started_at(pid)
    # A process with that id that started after the run did is another one.
    return started is None or started > entry.timestamp + 1.0


def runs_execute_locally(instance: dg.DagsterInstance) -> bool:
    """Whether this instance's runs execute as processes on this machine."""
    from dagster._core.launcher import DefaultRunLauncher

    return isinstance(instance.run_launcher, DefaultRunLauncher)


def fail_dead_local_runs(
    instance: dg.DagsterInstance, records: list[dg.RunRecord] | None = None
) -> list[str]:
    """Mark failed the in-flight runs whose worker process on this machine is
    gone (a hard stop of the stack, a killed worker). Dagster's run monitoring
    cannot tell this for the default run launcher, which has no worker health
    check; it catches such runs only after ``max_runtime_seconds``. Returns the
    ids of the runs marked failed."""
    if not runs_execute_locally(instance):
        return []
    if records is None:
        records = list(
            instance.get_run_records(
                filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED]), limit=100
            )
        )
    failed = []
    for record in records:
        run = record.dagster_run
        if run.status != dg.DagsterRunStatus.STARTED or not local_worker_gone(instance, run.run_id):
            continue
        instance.report_run_failed(
            run, "the run's process is gone (killed, or the stack stopped while it ran)"
        )
        failed.append(run.run_id)
    return failed


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
        tags={LAUNCHED_BY_TAG: "sonicforge", **telemetry.trace_tags(), **(tags or {})},
    )
    failed_steps = [e.step_key or "" for e in result.all_events if e.is_step_failure]
    failed_checks = [
        f"{e.asset_check_evaluation_data.asset_key.to_user_string()}:{e.asset_check_evaluation_data.check_name}"
        for e in result.all_events
        if e.event_type_value == "ASSET_CHECK_EVALUATION"
        and not e.asset_check_evaluation_data.passed
    ]
    return LaunchResult(batch_id, result.run_id, result.success, failed_steps, failed_checks)
