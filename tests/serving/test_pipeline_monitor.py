"""The console's view of the pipeline: recent runs and the air-feed sensor,
read from a real Dagster webserver (GraphQL) and from the local instance."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from serving.app import create_app
from serving.context import AppContext
from serving.services.dagster import GraphQLLauncher
from serving.services.pipeline_monitor import RUNS, SENSOR
from tests.serving.conftest import Users


@pytest.mark.parametrize("query", [RUNS, SENSOR])
def test_the_graphql_documents_are_valid_for_this_dagster(query: str) -> None:
    from dagster_graphql.schema import create_schema
    from graphql import parse, validate

    assert validate(create_schema().graphql_schema, parse(query)) == []


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
def test_runs_and_sensor_through_graphql(
    make_context: Callable[..., AppContext], dagster_webserver: tuple[Any, Any]
) -> None:
    dagster_app, _instance = dagster_webserver
    ctx = make_context()
    ctx.pipeline = GraphQLLauncher(
        "http://dagster.test/graphql",
        location="sonicforge",
        repository="__repository__",
        transport=httpx.ASGITransport(app=dagster_app),
    )
    with TestClient(create_app(context=ctx)) as client:
        users = Users(client, ctx)
        operator, listener = users.create("operator"), users.create("listener")
        launched = client.post(
            "/api/v1/pipeline/run", json={"genres": ["house"], "count": 1}, headers=operator.headers
        )
        assert launched.status_code == 202, launched.text
        r = client.get("/api/v1/pipeline/runs", params={"limit": 5}, headers=operator.headers)
        assert r.status_code == 200
        runs = r.json()["items"]
        assert runs[0]["run_id"] == launched.json()["run_id"]
        assert runs[0]["batch_id"] == launched.json()["batch_id"]
        assert runs[0]["status"] == "QUEUED" and runs[0]["mode"] == "graphql"
        sensor = client.get("/api/v1/pipeline/sensor", headers=operator.headers).json()
        assert sensor["name"] == "air_feed_sensor" and sensor["available"] is True
        assert sensor["status"] in ("RUNNING", "STOPPED")
        assert sensor["last_tick"] is None  # no daemon here: never evaluated
        assert client.get("/api/v1/pipeline/runs", headers=listener.headers).status_code == 403
        assert (
            client.get(
                "/api/v1/pipeline/runs", params={"limit": 0}, headers=operator.headers
            ).status_code
            == 422
        )


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
def test_embedded_mode_lists_the_local_instance_and_says_it_cannot_read_sensors(
    client: TestClient, users: Users
) -> None:
    operator = users.create("operator")
    r = client.get("/api/v1/pipeline/runs", headers=operator.headers)
    assert r.status_code == 200 and r.json() == {"items": []}
    sensor = client.get("/api/v1/pipeline/sensor", headers=operator.headers).json()
    assert sensor == {
        "name": "air_feed_sensor",
        "status": "UNKNOWN",
        "last_tick": None,
        "available": False,
    }
