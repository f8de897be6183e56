"""Launching generation runs: through a Dagster webserver's GraphQL API, or
(embedded mode, no webserver) as a ``sonicforge generate`` subprocess that
records its run in the local Dagster instance.

The API never imports the pipeline's code: it names the job and passes the
run config of ``GenerationConfig`` (``ops.generated_tracks.config``).
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import httpx

from serving.exceptions import NotFoundError, UpstreamError
from serving.schemas.pipeline import PipelineRunCreate, PipelineRunPublic, RunMode
from sonicforge import ids, telemetry
from sonicforge.k8s_steps import k8s_execution_config
from sonicforge.settings import get_settings

JOB_NAME = "generate_tracks_job"
PARTITIONS_DEF = "batches"
PARTITION_TAG = "dagster/partition"

ADD_PARTITION = """
mutation AddBatch($repositorySelector: RepositorySelector!, $partitionsDefName: String!,
                  $partitionKey: String!) {
  addDynamicPartition(repositorySelector: $repositorySelector,
                      partitionsDefName: $partitionsDefName, partitionKey: $partitionKey) {
    __typename
    ... on AddDynamicPartitionSuccess { partitionKey }
    ... on Error { message }
  }
}
"""

LAUNCH_RUN = """
mutation LaunchGeneration($executionParams: ExecutionParams!) {
  launchRun(executionParams: $executionParams) {
    __typename
    ... on LaunchRunSuccess { run { runId status jobName tags { key value } } }
    ... on RunConfigValidationInvalid { errors { message } }
    ... on Error { message }
  }
}
"""

RUN_STATUS = """
query GenerationRun($runId: ID!) {
  runOrError(runId: $runId) {
    __typename
    ... on Run { runId status jobName startTime endTime tags { key value } }
    ... on Error { message }
  }
}
"""

VERSION = "query DagsterVersion { version }"


def new_batch_id(now: datetime | None = None) -> str:
    """A pipeline batch id: ``b20261124-154500-3f9a``."""
    return ids.new_batch_id(now)


def run_config(data: PipelineRunCreate, extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The generation job's run config. Every step runs in the run's own
    process, as the air-feed sensor's runs do: a subprocess per step would
    load the pipeline again for each of the four assets and their checks.
    ``extra`` adds GenerationConfig fields the public schema does not carry
    (a listener request's id and license rule)."""
    config = {**data.model_dump(exclude_none=True), **(extra or {})}
    return {
        "ops": {"generated_tracks": {"config": config}},
        # Under k8s_job_executor every step is its own Job: MusicGen on a GPU node.
        "execution": k8s_execution_config(data.backend)
        if _k8s_steps()
        else {"config": {"in_process": {}}},
    }


def _k8s_steps() -> bool:
    return get_settings().dagster_run_executor == "k8s"


def utc_from_timestamp(value: float | None) -> datetime | None:
    """A Dagster run time (Unix seconds, or none yet) as an aware datetime."""
    return datetime.fromtimestamp(value, UTC) if value else None


class PipelineLauncher(abc.ABC):
    mode: RunMode

    @abc.abstractmethod
    async def launch(
        self,
        data: PipelineRunCreate,
        *,
        requested_by: str,
        batch_id: str | None = None,
        config: Mapping[str, Any] | None = None,
    ) -> PipelineRunPublic:
        """Add a dynamic partition (``batch_id``, or a new batch id) and
        launch the generation job for it; ``config`` as in ``run_config``."""

    @abc.abstractmethod
    async def run(self, run_id: str) -> PipelineRunPublic: ...

    async def failure_reason(self, run_id: str) -> str | None:
        """Why a failed run failed, in a line, where the launcher can tell."""
        return None

    @abc.abstractmethod
    async def ping(self) -> str:
        """A short description of the Dagster reached; raises if unreachable."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        pass


class GraphQLLauncher(PipelineLauncher):
    """Talks to ``dagster-webserver``'s ``/graphql`` endpoint."""

    mode: RunMode = "graphql"

    def __init__(
        self,
        url: str,
        *,
        location: str,
        repository: str,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout_s: float = 15.0,
    ) -> None:
        self.url = url
        self.repository_selector = {
            "repositoryLocationName": location,
            "repositoryName": repository,
        }
        self._client = httpx.AsyncClient(transport=transport, timeout=timeout_s)

    async def _call(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        try:
            response = await self._client.post(
                self.url, json={"query": query, "variables": variables or {}}
            )
        except httpx.HTTPError as exc:
            raise UpstreamError(
                f"Dagster at {self.url} is unreachable: {type(exc).__name__}"
            ) from exc
        if response.status_code != 200:
            raise UpstreamError(f"Dagster answered HTTP {response.status_code}")
        body = response.json()
        if body.get("errors"):
            raise UpstreamError(
                "Dagster refused the query: " + body["errors"][0].get("message", "")
            )
        return dict(body["data"])

    async def launch(
        self,
        data: PipelineRunCreate,
        *,
        requested_by: str,
        batch_id: str | None = None,
        config: Mapping[str, Any] | None = None,
    ) -> PipelineRunPublic:
        batch_id = batch_id or new_batch_id()
        added = (
            await self._call(
                ADD_PARTITION,
                {
                    "repositorySelector": self.repository_selector,
                    "partitionsDefName": PARTITIONS_DEF,
                    "partitionKey": batch_id,
                },
            )
        )["addDynamicPartition"]
        if added["__typename"] != "AddDynamicPartitionSuccess":
            raise UpstreamError(f"Dagster did not add the batch partition: {added.get('message')}")
        params = {
            "selector": {**self.repository_selector, "jobName": JOB_NAME},
            "runConfigData": run_config(data, config),
            "executionMetadata": {
                "tags": [
                    {"key": PARTITION_TAG, "value": batch_id},
                    {"key": "sonicforge/launched_by", "value": "api"},
                    {"key": "sonicforge/requested_by", "value": requested_by},
                    {"key": "sonicforge/backend", "value": data.backend or "registry"},
                    *({"key": k, "value": v} for k, v in telemetry.trace_tags().items()),
                ]
            },
        }
        result = (await self._call(LAUNCH_RUN, {"executionParams": params}))["launchRun"]
        kind = result["__typename"]
        if kind != "LaunchRunSuccess":
            errors = result.get("errors") or [{"message": result.get("message", kind)}]
            raise UpstreamError(f"Dagster did not launch the run ({kind}): {errors[0]['message']}")
        run = result["run"]
        return PipelineRunPublic(
            run_id=run["runId"],
            batch_id=batch_id,
            status=run["status"],
            mode=self.mode,
            job_name=run["jobName"],
        )

    async def run(self, run_id: str) -> PipelineRunPublic:
        result = (await self._call(RUN_STATUS, {"runId": run_id}))["runOrError"]
        if result["__typename"] == "RunNotFoundError":
            raise NotFoundError(f"no Dagster run {run_id!r}")
        if result["__typename"] != "Run":
            raise UpstreamError(f"Dagster could not report the run: {result.get('message')}")
        tags = {t["key"]: t["value"] for t in result["tags"]}
        return PipelineRunPublic(
            run_id=result["runId"],
            batch_id=tags.get(PARTITION_TAG),
            status=result["status"],
            mode=self.mode,
            job_name=result["jobName"],
            started_at=utc_from_timestamp(result.get("startTime")),
            ended_at=utc_from_timestamp(result.get("endTime")),
        )

    async def ping(self) -> str:
        return f"dagster {(await self._call(VERSION))['version']} at {self.url}"

    async def close(self) -> None:
        await self._client.aclose()
