"""The production form: an s3:// lakehouse on a local S3 API (moto on loopback)."""

from __future__ import annotations

import logging
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from analytics.sql import SqlEngine
from orchestration.resources import S3LakehouseResource
from sonicforge.lakehouse import Lakehouse

moto_app = pytest.importorskip(
    "moto.moto_server.werkzeug_app", reason="moto[server] is in the test extra"
)

REPO = Path(__file__).resolve().parents[2]


@dataclass
class S3Server:
    """moto's S3 API on loopback, with every Delta commit PUT it answered:
    (path, If-None-Match header, HTTP status)."""

    endpoint: str
    commit_puts: list[tuple[str, str | None, int]] = field(default_factory=list)


def _recording(app: Any, server: S3Server) -> Any:
    lock = threading.Lock()

    def wsgi(environ: dict[str, Any], start_response: Any) -> Any:
        path = environ.get("PATH_INFO", "")
        if not (
            environ["REQUEST_METHOD"] == "PUT" and "/_delta_log/" in path and path.endswith(".json")
        ):
            return app(environ, start_response)

        def recorded(status: str, headers: Any, exc_info: Any = None) -> Any:
            with lock:
                server.commit_puts.append(
                    (path, environ.get("HTTP_IF_NONE_MATCH"), int(status.split()[0]))
                )
            return start_response(status, headers, exc_info)

        return app(environ, recorded)

    return wsgi


@pytest.fixture(scope="module")
def s3_server() -> Iterator[S3Server]:
    from werkzeug.serving import make_server

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = S3Server(endpoint="")
    app = _recording(moto_app.DomainDispatcherApplication(moto_app.create_backend_app), server)
    http = make_server(
        "127.0.0.1", 0, app, threaded=True, request_handler=moto_app.MotoRequestHandler
    )
    server.endpoint = f"http://127.0.0.1:{http.server_port}"
    thread = threading.Thread(target=http.serve_forever, daemon=True)
    thread.start()
    import boto3

    boto3.client(
        "s3",
        endpoint_url=server.endpoint,
        aws_access_key_id="test",
        aws_secret_access_key="test",
        region_name="us-east-1",
    ).create_bucket(Bucket="radio")
    yield server
    http.shutdown()
    thread.join()


@pytest.fixture(scope="module")
def s3_endpoint(s3_server: S3Server) -> str:
    return s3_server.endpoint


def _resource(endpoint: str, prefix: str) -> S3LakehouseResource:
    return S3LakehouseResource(
        uri=f"s3://radio/{prefix}",
        region="us-east-1",
        endpoint_url=endpoint,
        access_key_id="test",
        secret_access_key="test",
        allow_http=True,
    )


def test_s3_tables_audio_and_sql(s3_endpoint: str) -> None:
    lh = _resource(s3_endpoint, "lake1").open()
    assert isinstance(lh, Lakehouse)
    lh.ensure_all()
    row = {
        "track_id": "t1",
        "batch_id": "b1",
        "genre": "house",
        "weight": 1.2,
        "duration_s": 180.0,
        "quality_score": 90.0,
        "eligible_from": datetime(2026, 11, 24, tzinfo=UTC),
        "retired_at": None,
    }
    assert lh.insert_new("rotation", [row]) == 1
    assert lh.insert_new("rotation", [row]) == 0
    assert lh.read("rotation", where={"batch_id": "b1"})["track_id"].to_pylist() == ["t1"]

    uri, sha = lh.audio.put("masters/b1/t1.flac", b"fLaC-bytes")
    assert uri == "s3://radio/lake1/audio/masters/b1/t1.flac"
    assert lh.audio.get(uri) == b"fLaC-bytes" and len(sha) == 64

    engine = SqlEngine(lh)
    assert engine.uses_delta_extension
    assert engine.query("select track_id, weight from rotation").to_pylist() == [
        {"track_id": "t1", "weight": 1.2}
    ]


# One writer process: ``n`` single-row insert_new calls (each its own Delta
# commit) into ``plays`` on the lakehouse at ``prefix``.
_WRITER = """
import sys
from datetime import UTC, datetime
from orchestration.resources import S3LakehouseResource

endpoint, prefix, writer, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
lh = S3LakehouseResource(
    uri=f"s3://radio/{prefix}", region="us-east-1", endpoint_url=endpoint,
    access_key_id="test", secret_access_key="test", allow_http=True,
).open()
for i in range(n):
    row = {
        "play_id": f"{writer}-{i:03d}", "track_id": "t1", "started_at": datetime.now(UTC),
        "ended_at": None, "listeners": 1, "skipped": False, "channel": writer,
    }
    assert lh.insert_new("plays", [row]) == 1, row
"""


def test_two_processes_appending_to_one_s3_table_lose_no_commit(s3_server: S3Server) -> None:
    """Two processes x 100 commits to one table's log: every row and every
    commit is there, and every commit was a conditional put."""
    per_writer, prefix = 100, "concurrent"
    lh = _resource(s3_server.endpoint, prefix).open()
    lh.ensure("plays")  # version 0
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", _WRITER, s3_server.endpoint, prefix, name, str(per_writer)],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for name in ("a", "b")
    ]
    try:
        for w in writers:
            out, _ = w.communicate(timeout=240)
            assert w.returncode == 0, out[-3000:]
    finally:
        for w in writers:
            if w.poll() is None:
                w.kill()
                w.wait()

    ids = lh.read("plays", columns=["play_id"])["play_id"].to_pylist()
    expected = {f"{w}-{i:03d}" for w in "ab" for i in range(per_writer)}
    assert len(ids) == 2 * per_writer and set(ids) == expected
    assert lh.version("plays") == 2 * per_writer

    table_puts = [p for p in s3_server.commit_puts if f"/radio/{prefix}/plays/" in p[0]]
    won = [p for p in table_puts if p[2] == 200]
    assert len(won) == 2 * per_writer + 1  # versions 0..200, each written once
    assert len({p[0] for p in won}) == len(won)
    assert all(p[1] == "*" for p in table_puts), "a commit PUT without If-None-Match: *"
    lost = [p for p in table_puts if p[2] != 200]
    assert all(p[2] == 412 for p in lost), lost
