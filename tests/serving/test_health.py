"""Health, readiness and liveness."""

from __future__ import annotations

from collections.abc import Callable

from fastapi.testclient import TestClient

from serving.app import create_app
from serving.context import AppContext
from sonicforge.station import InMemoryStationState
from tests.serving.conftest import Users


def test_health_and_live(client: TestClient) -> None:
    for path in ("/health", "/live", "/api/v1/health"):
        r = client.get(path)
        assert r.status_code == 200
        assert r.json()["status"] == "ok"
        assert r.json()["environment"] == "test"


def test_ready_when_the_required_dependencies_answer(client: TestClient) -> None:
    r = client.get("/ready")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ready"
    assert [(d["name"], d["status"]) for d in body["dependencies"]] == [
        ("app_db", "ok"),
        ("redis", "disabled"),
        ("lakehouse", "ok"),
    ]
    assert body["dependencies"][0]["latency_ms"] >= 0


def test_not_ready_when_the_app_database_is_down(make_context: Callable[..., AppContext]) -> None:
    from serving.db.session import Database

    ctx = make_context()
    ctx.db = Database("postgresql+psycopg://nobody@127.0.0.1:1/none")
    with TestClient(create_app(context=ctx)) as client:
        r = client.get("/ready")
        assert r.status_code == 503
        assert r.json()["status"] == "not_ready"
        assert r.json()["dependencies"][0]["status"] == "down"


def test_detailed_health_times_every_dependency(
    client: TestClient, users: Users, station: InMemoryStationState
) -> None:
    station.beat({"uptime_s": 1.0})
    op = users.create("operator")
    r = client.get("/health/detailed", headers=op.headers)
    assert r.status_code == 200
    body = r.json()
    deps = {d["name"]: d for d in body["dependencies"]}
    assert list(deps) == ["app_db", "redis", "lakehouse", "dagster", "mlflow", "streamer"]
    assert deps["app_db"]["status"] == "ok"
    assert deps["lakehouse"]["status"] == "ok"
    assert deps["dagster"]["status"] == "ok"
    assert "local instance" in deps["dagster"]["detail"]
    assert deps["mlflow"]["status"] == "down"  # nothing logged to MLflow in this test
    assert deps["streamer"]["status"] == "ok"
    assert all(d["latency_ms"] is None or d["latency_ms"] >= 0 for d in deps.values())
    assert body["status"] == "degraded"


def test_detailed_health_is_for_operators(client: TestClient, users: Users) -> None:
    assert client.get("/health/detailed").status_code == 401
    assert client.get("/health/detailed", headers=users.create().headers).status_code == 403
