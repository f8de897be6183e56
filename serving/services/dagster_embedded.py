"""Embedded mode: no Dagster webserver, so a generation run is started as a
``sonicforge generate`` subprocess, which materializes the job in the local
Dagster instance (``DAGSTER_HOME``) where the UI shows it later.

The API only reads that instance (through ``dagster``, imported on first
use) to find the run the subprocess created for its batch and to report
its status; it never imports the pipeline's code.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import anyio

from serving.exceptions import NotFoundError, UpstreamError
from serving.schemas.pipeline import PipelineRunCreate, PipelineRunPublic, RunMode
from serving.services.dagster import (
    PARTITION_TAG,
    PipelineLauncher,
    new_batch_id,
    utc_from_timestamp,
)
from sonicforge import telemetry
from sonicforge.settings import Settings

PROJECT_ROOT = Path(__file__).resolve().parents[2]


class EmbeddedLauncher(PipelineLauncher):
    mode: RunMode = "embedded"

    def __init__(self, settings: Settings, *, launch_timeout_s: float = 120.0) -> None:
        self.settings = settings
        self.home = Path(os.environ.get("DAGSTER_HOME") or settings.resolved_dagster_home)
        self.launch_timeout_s = launch_timeout_s
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self._instance: Any = None

    def instance(self) -> Any:
        if self._instance is None:
            from dagster import DagsterInstance

            self.home.mkdir(parents=True, exist_ok=True)
            self._instance = DagsterInstance.from_config(str(self.home))
        return self._instance

    def _env(self) -> dict[str, str]:
        s = self.settings
        env = {
            **os.environ,
            "DAGSTER_HOME": str(self.home),
            "SONICFORGE_VAR_DIR": str(s.var_dir.absolute()),
            "SONICFORGE_LAKEHOUSE_URI": s.resolved_lakehouse_uri,
            "SONICFORGE_MLFLOW_TRACKING_URI": s.resolved_mlflow_tracking_uri,
            "SONICFORGE_DEFAULT_BACKEND": s.default_backend,
        }
        if s.lakehouse_storage_options:
            env["SONICFORGE_LAKEHOUSE_STORAGE_OPTIONS"] = json.dumps(s.lakehouse_storage_options)
        env.update(telemetry.trace_env())  # the run joins the request's trace
        return env

    def argv(
        self, data: PipelineRunCreate, batch_id: str, config: Mapping[str, Any] | None = None
    ) -> list[str]:
        argv = [sys.executable, "-m", "cli.main", "generate", "--batch-id", batch_id]
        argv += ["--count", str(data.count), "--duration", repr(data.duration_s)]
        for genre in data.genres:
            argv += ["--genre", genre]
        for flag, value in (
            ("--seed", data.seed),
            ("--bpm", data.bpm),
            ("--backend", data.backend),
            ("--prompt", data.prompt),
        ):
            if value is not None:
                argv += [flag, str(value)]
        extra = dict(config or {})
        if extra.get("request_id"):
            argv += ["--request-id", str(extra["request_id"])]
        if extra.get("commercial_only"):
            argv += [
                "--commercial-only",
                "--license-policy",
                str(extra.get("license_policy", "fallback")),
            ]
        return argv

    def _start(
        self, data: PipelineRunCreate, batch_id: str, config: Mapping[str, Any] | None = None
    ) -> subprocess.Popen[bytes]:
        logs = self.settings.var_dir / "pipeline"
        logs.mkdir(parents=True, exist_ok=True)
        with open(logs / f"{batch_id}.log", "wb") as log:
            # A session of its own: the run goes on if this API worker stops.
            proc = subprocess.Popen(
                self.argv(data, batch_id, config),
                cwd=PROJECT_ROOT,
                env=self._env(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.processes[batch_id] = proc
        return proc

    def _find_run(self, batch_id: str, proc: subprocess.Popen[bytes]) -> Any:
        """Wait for the subprocess to record its run; its record, or an
        error with the subprocess's last words if it stopped first."""
        from dagster import RunsFilter

        deadline = time.monotonic() + self.launch_timeout_s
        while time.monotonic() < deadline:
            records = self.instance().get_run_records(
                RunsFilter(tags={PARTITION_TAG: batch_id}), limit=1
            )
            if records:
                return records[0]
            if proc.poll() is not None:
                log = self.settings.var_dir / "pipeline" / f"{batch_id}.log"
                lines = log.read_text(errors="replace").strip().splitlines() if log.exists() else []
                last = lines[-1] if lines else f"exit status {proc.returncode}"
                raise UpstreamError(f"the generation command stopped before starting a run: {last}")
            time.sleep(0.25)
        raise UpstreamError(
            f"no run recorded for batch {batch_id} within {self.launch_timeout_s:g} s; "
            f"see var/pipeline/{batch_id}.log"
        )

    def _public(self, record: Any) -> PipelineRunPublic:
        run = record.dagster_run
        return PipelineRunPublic(
            run_id=run.run_id,
            batch_id=run.tags.get(PARTITION_TAG),
            status=run.status.value,
            mode=self.mode,
            job_name=run.job_name,
            started_at=utc_from_timestamp(record.start_time),
            ended_at=utc_from_timestamp(record.end_time),
        )

    async def launch(
        self,
        data: PipelineRunCreate,
        *,
        requested_by: str,
        batch_id: str | None = None,
        config: Mapping[str, Any] | None = None,
    ) -> PipelineRunPublic:
        batch_id = batch_id or new_batch_id()

        def work() -> PipelineRunPublic:
            proc = self._start(data, batch_id, config)
            return self._public(self._find_run(batch_id, proc))

        return await anyio.to_thread.run_sync(work)

    async def run(self, run_id: str) -> PipelineRunPublic:
        def work() -> PipelineRunPublic:
            record = self.instance().get_run_record_by_id(run_id)
            if record is None:
                raise NotFoundError(f"no Dagster run {run_id!r}")
            return self._public(record)

        return await anyio.to_thread.run_sync(work)

    async def failure_reason(self, run_id: str) -> str | None:
        """The first failed step's own description (a ``dg.Failure``'s) or
        the last line of its error."""

        def work() -> str | None:
            from dagster import DagsterEventType

            records = (
                self.instance()
                .get_records_for_run(run_id, of_type=DagsterEventType.STEP_FAILURE, limit=5)
                .records
            )
            for record in records:
                event = record.event_log_entry.dagster_event
                data = event.event_specific_data if event is not None else None
                described = getattr(getattr(data, "user_failure_data", None), "description", None)
                if described:
                    return str(described)
                error = getattr(data, "error", None)
                if error is not None and error.message:
                    return str(error.message).strip().splitlines()[-1]
            return None

        return await anyio.to_thread.run_sync(work)

    async def ping(self) -> str:
        def work() -> str:
            self.instance().get_run_records(limit=1)
            return f"local instance at {self.home}"

        return await anyio.to_thread.run_sync(work)

    def wait(self, timeout_s: float | None = None) -> None:
        """Wait for the subprocesses this launcher started (tests, shutdown)."""
        for proc in self.processes.values():
            proc.wait(timeout=timeout_s)

    async def close(self) -> None:
        if self._instance is not None:
            self._instance.dispose()
