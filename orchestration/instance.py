"""The Dagster instance of the production profile, and the run executor.

With ``SONICFORGE_DAGSTER_POSTGRES_URL`` set, ``sonicforge init`` (and any
launch) writes a ``dagster.yaml`` whose run, event-log and schedule
storage is dagster-postgres (Dagster loads it from that config); on Kubernetes the official Helm chart writes the same
storage from ``deploy/dagster/values.yaml`` instead. With
``SONICFORGE_DAGSTER_RUN_EXECUTOR=k8s`` the code location's jobs run each
step as its own Kubernetes Job (``k8s_job_executor``), where the
``dagster-k8s/config`` tags of the MusicGen step put it on a GPU node.
"""

from __future__ import annotations

from typing import Any

from sonicforge.settings import Settings, get_settings

PRODUCTION_MARKER = "# Production instance: dagster-postgres storage."


def dagster_postgres_url(url: str) -> str:
    """dagster-postgres speaks psycopg2 (its NOTIFY takes a parameter only
    psycopg2 fills in); SQLAlchemy 2.1 would pick psycopg 3 for a bare
    ``postgresql://``, so the driver is named."""
    scheme, sep, rest = url.partition("://")
    if not sep or not scheme.startswith(("postgresql", "postgres")):
        raise ValueError(
            f"SONICFORGE_DAGSTER_POSTGRES_URL must be a postgresql:// URL, not {url!r}"
        )
    return "postgresql+psycopg2://" + rest


def production_instance_yaml(settings: Settings) -> str:
    """``dagster.yaml`` for run, event-log and schedule storage on PostgreSQL,
    the queued run coordinator and run monitoring."""
    assert settings.dagster_postgres_url is not None
    url = dagster_postgres_url(settings.dagster_postgres_url)
    timeout = settings.generation_run_timeout_s
    return (
        f"{PRODUCTION_MARKER}\n"
        "storage:\n"
        "  postgres:\n"
        f"    postgres_url: {url!r}\n"
        "run_coordinator:\n"
        "  module: dagster.core.run_coordinator\n"
        "  class: QueuedRunCoordinator\n"
        "  config:\n"
        "    max_concurrent_runs: 4\n"
        "    tag_concurrency_limits:\n"
        "      - key: sonicforge/backend\n"
        "        value: musicgen\n"
        "        limit: 1\n"
        "run_monitoring:\n"
        "  enabled: true\n"
        "  start_timeout_seconds: 180\n"
        f"  max_runtime_seconds: {timeout}\n"
        "  poll_interval_seconds: 30\n"
        "run_retries:\n"
        "  enabled: true\n"
        "  max_retries: 1\n"
        "telemetry:\n"
        "  enabled: false\n"
    )


def executor_for(settings: Settings | None = None) -> Any:
    """``k8s_job_executor`` when runs execute on Kubernetes, else ``None``
    (Dagster's default: in process or a process per step)."""
    settings = settings or get_settings()
    if settings.dagster_run_executor != "k8s":
        return None
    from dagster_k8s import k8s_job_executor

    return k8s_job_executor
