"""The production form: an s3:// lakehouse on a local S3 API (moto on loopback)."""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from analytics.sql import SqlEngine
from orchestration.resources import S3LakehouseResource
from sonicforge.lakehouse import Lakehouse

moto_server = pytest.importorskip("moto.server", reason="moto[server] is in the test extra")


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    import boto3

    boto3.client(
        "s3",
        endpoint_url=f"http://127.0.0.1:{port}",
        aws_access_key_id="test",
        aws_secret_access_key="test",
        region_name="us-east-1",
    ).create_bucket(Bucket="radio")
    yield f"http://127.0.0.1:{port}"
    server.stop()


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
