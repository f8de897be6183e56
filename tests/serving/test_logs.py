"""The access log: one JSON line per request, in the shape of the other
log lines, with the request id the client saw; batched, flushed at the
latest on shutdown."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

from serving.app import create_app
from serving.context import AppContext
from serving.logs import AccessLog


def _access_lines(text: str) -> list[dict[str, object]]:
    lines = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    return [line for line in lines if line.get("logger") == "serving.access"]


def test_every_request_gets_one_access_line_with_its_request_id(
    make_context: Callable[..., AppContext], capsys: pytest.CaptureFixture[str]
) -> None:
    ctx = make_context(access_log=True)
    with TestClient(create_app(context=ctx)) as client:
        answers = [
            client.get("/health"),
            client.get('/no"such\\path'),  # quotes and backslashes stay valid JSON
            client.get("/api/v1/tracks", headers={"X-Request-ID": "client-id-1"}),
        ]
    lines = _access_lines(capsys.readouterr().err)
    assert [line["request_id"] for line in lines] == [a.headers["x-request-id"] for a in answers]
    assert [line["path"] for line in lines] == ["/health", '/no"such\\path', "/api/v1/tracks"]
    assert [line["status"] for line in lines] == [200, 404, 200]
    first = lines[0]
    assert first["level"] == "info" and first["message"] == "request" and first["method"] == "GET"
    assert isinstance(first["duration_ms"], float) and first["client"] == "testclient"
    assert str(first["ts"]).endswith("+00:00") and len(str(first["ts"])) == 29


def test_access_lines_wait_for_a_batch_outside_shutdown(capsys: pytest.CaptureFixture[str]) -> None:
    from serving.logs import configure_logging

    configure_logging("INFO")
    log = AccessLog(max_lines=3)
    log.request("r1", "GET", "/a", 200, 0.5, None)  # no event loop: written at once
    assert len(_access_lines(capsys.readouterr().err)) == 1

    async def burst() -> tuple[str, str]:
        for i in range(5):
            log.request(f"r{i}", "GET", "/b", 200, 0.1, "10.0.0.1")
        written = capsys.readouterr().err  # a full batch is written at once
        log.flush()  # the rest, at shutdown or when the timer fires
        return written, capsys.readouterr().err

    batch, rest = asyncio.run(burst())
    assert [line["request_id"] for line in _access_lines(batch)] == ["r0", "r1", "r2"]
    assert [line["request_id"] for line in _access_lines(rest)] == ["r3", "r4"]


def test_a_partial_batch_is_written_after_the_delay(capsys: pytest.CaptureFixture[str]) -> None:
    from serving.logs import configure_logging

    configure_logging("INFO")
    log = AccessLog(max_lines=100, max_delay_s=0.05)

    async def trickle() -> tuple[str, str]:
        log.request("r1", "GET", "/c", 200, 0.1, None)
        before = capsys.readouterr().err
        await asyncio.sleep(0.2)
        return before, capsys.readouterr().err

    before, after = asyncio.run(trickle())
    assert _access_lines(before) == []
    assert [line["request_id"] for line in _access_lines(after)] == ["r1"]


def test_the_access_log_follows_the_log_level(capsys: pytest.CaptureFixture[str]) -> None:
    from serving.logs import configure_logging

    configure_logging("WARNING")
    try:
        AccessLog().request("r1", "GET", "/a", 200, 0.5, None)
        assert _access_lines(capsys.readouterr().err) == []
    finally:
        configure_logging("INFO")
