"""The OpenAPI document is complete, and schemathesis finds no 5xx in it.

The fuzzing runs as an admin (every route is reachable past auth) against
the app on SQLite with a seeded lakehouse, a real Dagster webserver (runs
stay queued) and bounded examples per operation.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from serving.app import create_app
from serving.context import AppContext
from serving.services.dagster import GraphQLLauncher
from tests.serving.conftest import Users
from tests.serving.factories import SeededTrack

# ``/stream.mp3`` and ``/viz/events`` stream for as long as a player
# listens, so they are not fuzzed here; ``/hls/{path}`` answers at once.
FUZZED = r"^/(api/v1/|health|ready|live|hls/)"


def test_every_operation_is_documented(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    ops = [
        (path, method, op) for path, item in spec["paths"].items() for method, op in item.items()
    ]
    assert len(ops) >= 30
    for path, method, op in ops:
        if not path.startswith(("/api/v1", "/health", "/ready", "/live")):
            continue
        assert op.get("summary"), (method, path)
        assert op.get("tags"), (method, path)
        responses = op["responses"]
        assert any(code.startswith("2") for code in responses), (method, path)
        assert responses["429"]["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/ErrorBody"
        }
        if "422" in responses:
            assert responses["422"]["content"]["application/json"]["schema"] == {
                "$ref": "#/components/schemas/ErrorBody"
            }
        body = (
            op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
        )
        if body:  # request bodies show an example
            name = body["$ref"].rsplit("/", 1)[-1]
            schema = spec["components"]["schemas"][name]
            has_examples = "examples" in schema or any(
                "examples" in p for p in schema["properties"].values()
            )
            assert has_examples, (method, path, name)
    assert "HTTPValidationError" not in spec["components"]["schemas"]
    assert set(spec["components"]["securitySchemes"]) == {"HTTPBearer", "APIKeyHeader"}


@pytest.fixture
def fuzz_app(
    make_context: Callable[..., AppContext],
    seeded: list[SeededTrack],
    dagster_webserver: tuple[Any, Any],
) -> Iterator[tuple[Any, dict[str, str]]]:
    ctx = make_context()
    dagster_app, _instance = dagster_webserver
    ctx.pipeline = GraphQLLauncher(
        "http://dagster.test/graphql",
        location="sonicforge",
        repository="__repository__",
        transport=httpx.ASGITransport(app=dagster_app),
    )
    app = create_app(context=ctx)
    with TestClient(app) as client:  # runs the lifespan for the whole fuzzing
        admin = Users(client, ctx).create("admin")
        yield app, admin.headers


@pytest.mark.parametrize("database", ["sqlite", "postgresql"], indirect=True)
def test_no_server_errors(fuzz_app: tuple[Any, dict[str, str]]) -> None:
    """Every operation, positive and negative examples (12 each), checked
    for 5xx and for conformance with the documented statuses and schemas.

    Driven per operation with Hypothesis directly: schemathesis' pytest
    plugin does not support pytest 9 yet (it reads ``node._nodeid``)."""
    app, headers = fuzz_app
    schema = schemathesis.openapi.from_asgi("/openapi.json", app).include(path_regex=FUZZED)
    checks = [
        not_a_server_error,
        status_code_conformance,
        content_type_conformance,
        response_schema_conformance,
        negative_data_rejection,
    ]
    failures: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(
                max_examples=12,
                deadline=None,
                database=None,
                derandomize=True,
                suppress_health_check=list(HealthCheck),
                phases=[Phase.explicit, Phase.generate],
            )
            def call(case: Any) -> None:
                case.call_and_validate(headers=headers, checks=checks)

            try:
                call()
            except Unsatisfiable:  # no parameters: nothing to make invalid
                assert mode is GenerationMode.NEGATIVE
            except (
                Exception,
                BaseExceptionGroup,
            ) as exc:  # collect, so one run reports every operation
                failures.append(f"{operation.label} ({mode.value}): {str(exc)[:800]}")
    assert operations >= 30
    assert not failures, "\n\n".join(failures)
