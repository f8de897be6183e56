"""Generation runs through Dagster (GraphQL and embedded) and benchmarks."""

from __future__ import annotations

import json
import time
from typing import Any

import anyio
import httpx
import pytest
from fastapi.testclient import TestClient

from serving.context import AppContext
from serving.schemas.pipeline import PipelineRunCreate
from serving.services.dagster import ADD_PARTITION, LAUNCH_RUN, RUN_STATUS, VERSION, GraphQLLauncher
from tests.serving.conftest import Users


@pytest.mark.parametrize("query", [ADD_PARTITION, LAUNCH_RUN, RUN_STATUS, VERSION])
def test_the_graphql_documents_are_valid_for_this_dagster(query: str) -> None:
    from dagster_graphql.schema import create_schema
    from graphql import parse, validate

    assert validate(create_schema().graphql_schema, parse(query)) == []


def test_graphql_launcher_against_a_real_dagster_webserver(
    dagster_webserver: tuple[Any, Any],
) -> None:
    """The webserver's ASGI app on the real code location; the queued run
    coordinator keeps the run from executing, which is all that is needed
    to see the partition added and the run created with its config."""
    app, instance = dagster_webserver

    async def scenario() -> None:
        launcher = GraphQLLauncher(
            "http://dagster.test/graphql",
            location="sonicforge",
            repository="__repository__",
            transport=httpx.ASGITransport(app=app),
        )
        data = PipelineRunCreate(genres=["house"], count=1, duration_s=10.0, seed=7)
        launched = await launcher.launch(data, requested_by="user-1")
        assert launched.status == "QUEUED"
        assert launched.job_name == "generate_tracks_job"
        assert launched.mode == "graphql"
        assert launched.batch_id is not None
        assert instance.get_dynamic_partitions("batches") == [launched.batch_id]
        run = instance.get_run_by_id(launched.run_id)
        assert run is not None
        assert run.tags["dagster/partition"] == launched.batch_id
        assert run.tags["sonicforge/requested_by"] == "user-1"
        assert run.run_config["ops"]["generated_tracks"]["config"] == {
            "genres": ["house"], "count": 1, "duration_s": 10.0, "seed": 7,
        }  # fmt: skip
        assert run.run_config["execution"] == {"config": {"in_process": {}}}
        status = await launcher.run(launched.run_id)
        assert (status.run_id, status.batch_id, status.status) == (
            launched.run_id,
            launched.batch_id,
            "QUEUED",
        )
        assert (await launcher.ping()).startswith("dagster ")
        from serving.exceptions import NotFoundError

        with pytest.raises(NotFoundError):
            await launcher.run("00000000-0000-0000-0000-000000000000")
        await launcher.close()

    anyio.run(scenario)


def test_an_unreachable_dagster_is_a_502(client: TestClient, ctx: AppContext, users: Users) -> None:
    ctx.pipeline = GraphQLLauncher(
        "http://127.0.0.1:9/graphql", location="sonicforge", repository="__repository__"
    )
    op = users.create("operator")
    r = client.post(
        "/api/v1/pipeline/run", json={"genres": ["house"], "count": 1}, headers=op.headers
    )
    assert r.status_code == 502
    assert r.json()["error"]["code"] == "upstream_error"
    assert "unreachable" in r.json()["error"]["message"]


def test_pipeline_routes_need_their_permissions(client: TestClient, users: Users) -> None:
    listener = users.create()
    assert client.post("/api/v1/pipeline/run", json={}, headers=listener.headers).status_code == 403
    assert client.get("/api/v1/pipeline/runs/abc", headers=listener.headers).status_code == 403
    assert client.get("/api/v1/pipeline/benchmark", headers=listener.headers).status_code == 403


def test_run_parameters_are_validated(client: TestClient, users: Users) -> None:
    op = users.create("operator")
    for bad in (
        {"count": 0},
        {"count": 65},
        {"duration_s": 5},
        {"genres": []},
        {"genres": ["Drum And Bass"]},
    ):
        r = client.post("/api/v1/pipeline/run", json=bad, headers=op.headers)
        assert r.status_code == 422, bad


@pytest.mark.slow
@pytest.mark.parametrize("database", ["sqlite"], indirect=True)  # not about the app database
def test_embedded_mode_runs_the_job_in_the_local_instance(
    client: TestClient, ctx: AppContext, users: Users
) -> None:
    """A real ``sonicforge generate`` subprocess: one 10-second track."""
    op = users.create("operator")
    r = client.post(
        "/api/v1/pipeline/run",
        json={"genres": ["ambient"], "count": 1, "duration_s": 10, "seed": 3},
        headers=op.headers,
    )
    assert r.status_code == 202, r.text
    run = r.json()
    assert run["mode"] == "embedded"
    assert run["job_name"] == "generate_tracks_job"
    assert run["batch_id"].startswith("b")
    ctx.pipeline.wait(timeout_s=240)  # type: ignore[attr-defined]
    deadline = time.monotonic() + 30
    status = client.get(f"/api/v1/pipeline/runs/{run['run_id']}", headers=op.headers).json()
    while status["status"] not in ("SUCCESS", "FAILURE") and time.monotonic() < deadline:
        time.sleep(0.5)
        status = client.get(f"/api/v1/pipeline/runs/{run['run_id']}", headers=op.headers).json()
    assert status["status"] == "SUCCESS"
    assert status["ended_at"] is not None
    tracks = client.get("/api/v1/tracks").json()
    assert tracks["total"] == 1
    assert tracks["items"][0]["genre"] == "ambient"
    assert (
        client.get(
            "/api/v1/pipeline/runs/00000000-0000-0000-0000-000000000000", headers=op.headers
        ).status_code
        == 404
    )


def test_benchmark_figures_latest_per_backend(
    client: TestClient, ctx: AppContext, users: Users
) -> None:
    bench = ctx.settings.var_dir / "bench"
    bench.mkdir(parents=True)
    PROC = {"model": "procedural-v1", "device": "cpu", "weights": "none"}
    TINY = {"model": "random-weights:musicgen-tiny", "device": "cpu", "weights": "random"}
    files = {
        "procedural-old.json": {"backend": "procedural", **PROC, "figures": {"tracks_per_min": 10.0},
                                "measured_at": "2026-11-01T10:00:00+00:00"},
        "procedural-new.json": {"backend": "procedural", **PROC, "figures": {"tracks_per_min": 12.5},
                                "measured_at": "2026-11-20T10:00:00+00:00", "host": "ci"},
        "musicgen.json": {"backend": "musicgen", **TINY, "figures": {"realtime_factor": 0.09, "device": "cpu"},
                          "measured_at": "2026-11-21T10:00:00+00:00"},
    }  # fmt: skip
    for name, data in files.items():
        (bench / name).write_text(json.dumps(data))
    (bench / "broken.json").write_text("{not json")
    r = client.get("/api/v1/pipeline/benchmark", headers=users.create("operator").headers)
    assert r.status_code == 200
    assert r.json() == {
        "items": [
            {"backend": "musicgen", **TINY, "figures": {"realtime_factor": 0.09, "device": "cpu"},
             "measured_at": "2026-11-21T10:00:00Z", "source": "musicgen.json"},
            {"backend": "procedural", **PROC, "figures": {"tracks_per_min": 12.5},
             "measured_at": "2026-11-20T10:00:00Z", "source": "procedural-new.json"},
        ]
    }  # fmt: skip
