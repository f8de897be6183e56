"""OpenTelemetry: the span tree of a request that launches a generation run
(in-memory exporter), and spans arriving at a local OTLP/HTTP receiver from
a run process that joined a request's trace."""

from __future__ import annotations

import gzip
import importlib
import os
import subprocess
import sys
import threading
import zlib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest
from fastapi.testclient import TestClient

from serving.app import create_app
from serving.context import AppContext
from serving.services.dagster import GraphQLLauncher
from sonicforge import telemetry
from sonicforge.settings import get_settings
from tests.serving.conftest import Users

pytest.importorskip("opentelemetry.sdk")
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def memory_exporter() -> Iterator[Any]:
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    telemetry.reset_for_tests()
    exporter = InMemorySpanExporter()
    yield exporter
    telemetry.reset_for_tests()


def _trace_id(traceparent: str) -> int:
    return int(traceparent.split("-")[1], 16)


def _span_id(traceparent: str) -> int:
    return int(traceparent.split("-")[2], 16)


@pytest.mark.slow
def test_a_request_that_launches_a_run_is_one_trace(
    ctx: AppContext,
    users: Users,
    dagster_webserver: tuple[Any, Any],
    memory_exporter: Any,
    otlp_receiver: tuple[str, list[bytes]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """POST /pipeline/run: the server span, its database and GraphQL client
    spans, then the run it created executed as a run worker would, whose
    asset spans hang under the request's span with the batch id. The same
    spans also go over OTLP/HTTP to a receiver on loopback."""
    from dagster._core.definitions.reconstruct import ReconstructableJob
    from dagster._core.events import DagsterEvent, DagsterEventType
    from dagster._core.execution.api import execute_run
    from dagster._utils.hosted_user_process import recon_job_from_origin
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    webserver, instance = dagster_webserver
    telemetry.setup_tracing(ctx.settings, component="api", exporter=memory_exporter, batch=False)
    endpoint, bodies = otlp_receiver
    telemetry.setup_tracing(
        exporter=OTLPSpanExporter(endpoint=f"{endpoint}/v1/traces"), batch=False
    )
    ctx.settings = ctx.settings.model_copy(update={"otel_enabled": True})
    ctx.pipeline = GraphQLLauncher(
        "http://dagster.test/graphql",
        location="sonicforge",
        repository="__repository__",
        transport=httpx.ASGITransport(app=webserver),
    )
    op = users.create("operator")
    memory_exporter.clear()
    with TestClient(create_app(context=ctx)) as client:
        r = client.post(
            "/api/v1/pipeline/run",
            json={"genres": ["house"], "count": 1, "duration_s": 10.0, "seed": 3},
            headers=op.headers,
        )
    assert r.status_code == 202, r.text
    run = instance.get_run_by_id(r.json()["run_id"])
    assert run is not None
    traceparent = run.tags[telemetry.TRACEPARENT_TAG]

    spans = memory_exporter.get_finished_spans()
    (server,) = [s for s in spans if s.kind.name == "SERVER" and "pipeline/run" in s.name]
    assert server.attributes["http.route"] == "/api/v1/pipeline/run"
    trace_id = server.context.trace_id
    assert _trace_id(traceparent) == trace_id
    in_trace = [s for s in spans if s.context.trace_id == trace_id]
    clients = [s for s in in_trace if s.kind.name == "CLIENT" and s.name.startswith("POST")]
    assert len(clients) == 2, [s.name for s in in_trace]  # add the partition, launch the run
    by_id = {s.context.span_id: s for s in in_trace}

    def ancestors(span: Any) -> list[Any]:
        out = []
        while span.parent is not None and span.parent.span_id in by_id:
            span = by_id[span.parent.span_id]
            out.append(span)
        return out

    assert all(server in ancestors(c) for c in clients)
    sql = [s for s in in_trace if s.attributes.get("db.system") or "SELECT" in s.name]
    assert sql and all(server in ancestors(s) for s in sql), "no database span under the request"
    # The tag names a span of this request (the one current at the launch).
    assert _span_id(traceparent) in by_id

    # The run, executed as its run worker would (the webserver only queued it).
    monkeypatch.setenv("SONICFORGE_GENERATOR_SOURCE", "settings")
    get_settings.cache_clear()
    # The code location as a fresh run worker loads it, with this test's settings.
    importlib.reload(importlib.import_module("orchestration.definitions"))
    ReconstructableJob.get_definition.cache_clear()  # Dagster keeps the last one loaded
    ReconstructableJob.get_repository_definition.cache_clear()
    memory_exporter.clear()
    # Dequeued as the daemon does (the fixture runs none), then executed.
    instance.report_dagster_event(
        DagsterEvent(
            event_type_value=DagsterEventType.PIPELINE_STARTING.value, job_name=run.job_name
        ),
        run_id=run.run_id,
    )
    run = instance.get_run_by_id(run.run_id)
    result = execute_run(recon_job_from_origin(run.job_code_origin), run, instance)
    assert result.success
    steps = [s for s in memory_exporter.get_finished_spans() if s.name.startswith("asset ")]
    names = {s.name for s in steps}
    assert {"asset generated_tracks", "asset track_scores", "asset mastered_tracks"} <= names
    for span in steps:
        assert span.context.trace_id == trace_id
        assert span.parent is not None and span.parent.span_id == _span_id(traceparent)
        assert span.attributes["sonicforge.batch_id"] == run.tags["dagster/partition"]
        assert span.attributes["dagster.run_id"] == run.run_id
        assert span.end_time > span.start_time

    # Over OTLP/HTTP: the request's server span and the run's asset spans.
    arrived = _decoded(bodies)
    assert {svc for svc, _ in arrived} == {"sonicforge-api"}
    names = {s.name for _, s in arrived if s.trace_id == trace_id.to_bytes(16, "big")}
    assert server.name in names and "asset generated_tracks" in names


class _Receiver(BaseHTTPRequestHandler):
    bodies: ClassVar[list[bytes]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        encoding = self.headers.get("Content-Encoding", "")
        if encoding == "gzip":
            body = gzip.decompress(body)
        elif encoding == "deflate":
            body = zlib.decompress(body)
        if self.path == "/v1/traces":
            type(self).bodies.append(body)
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def otlp_receiver() -> Iterator[tuple[str, list[bytes]]]:
    _Receiver.bodies = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}", _Receiver.bodies
    server.shutdown()
    thread.join()


def _decoded(bodies: list[bytes]) -> list[tuple[str, Any]]:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    out = []
    for body in bodies:
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        for rs in request.resource_spans:
            service = next(
                a.value.string_value for a in rs.resource.attributes if a.key == "service.name"
            )
            for scope in rs.scope_spans:
                out += [(service, span) for span in scope.spans]
    return out


_CHILD = """
from sonicforge import telemetry
from sonicforge.settings import get_settings
from sonicforge.settings import get_settings
import os

tp = telemetry.setup_tracing(get_settings(), component="pipeline")
assert tp is not None, "tracing is on by settings"
parent = telemetry.context_from(os.environ["TRACEPARENT"])
span = tp.get_tracer("test").start_span("asset generated_tracks", context=parent,
                                        attributes={"sonicforge.batch_id": "b-child"})
span.end()
telemetry.flush()
"""


def test_a_child_process_joins_the_trace_and_exports_over_otlp(
    tmp_path: Path, otlp_receiver: tuple[str, list[bytes]]
) -> None:
    """What the embedded launcher's ``sonicforge generate`` does: tracing on
    by settings (the OTLP/HTTP exporter, batching), the request's trace in
    TRACEPARENT; its spans arrive at the receiver in that trace."""
    endpoint, bodies = otlp_receiver
    trace_hex, parent_hex = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("SONICFORGE_")},
        "SONICFORGE_VAR_DIR": str(tmp_path / "var"),
        "SONICFORGE_OTEL_ENABLED": "true",
        "SONICFORGE_OTEL_ENDPOINT": endpoint,
        "SONICFORGE_OTEL_SERVICE_NAME": "sf-test",
        "TRACEPARENT": f"00-{trace_hex}-{parent_hex}-01",
    }
    done = subprocess.run(
        [sys.executable, "-c", _CHILD],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    spans = _decoded(bodies)
    assert [(svc, s.name) for svc, s in spans] == [("sf-test-pipeline", "asset generated_tracks")]
    (_, span) = spans[0]
    assert span.trace_id.hex() == trace_hex and span.parent_span_id.hex() == parent_hex


def test_tracing_is_off_by_default(tmp_path: Path) -> None:
    from sonicforge.settings import Settings

    telemetry.reset_for_tests()
    assert telemetry.setup_tracing(Settings(var_dir=tmp_path)) is None
    assert telemetry.trace_tags() == {} or "TRACEPARENT" in os.environ
    with telemetry.span("nothing") as s:
        assert s is None


def test_the_streamer_traces_its_track_changes(tmp_path: Path, memory_exporter: Any) -> None:
    from sonicforge.lakehouse import Lakehouse
    from sonicforge.settings import Settings
    from sonicforge.station import InMemoryStationState
    from streaming.clock import VirtualClock
    from streaming.service import build_streamer
    from streaming.streamer import OutputSpec
    from tests.streaming.conftest import FREQS, SynthTrack, Tap, add_tracks

    settings = Settings(
        var_dir=tmp_path / "var",
        stream_dir=tmp_path / "stream",
        stream_crossfade_s=0.5,
        stream_no_repeat_count=0,
        stream_no_repeat_s=0.0,
    )
    telemetry.setup_tracing(settings, component="streamer", exporter=memory_exporter, batch=False)
    lake = Lakehouse(str(tmp_path / "lake"))
    lake.ensure_all()
    tracks = [SynthTrack(f"t{i}", f, duration_s=4.0) for i, f in enumerate(FREQS[:3])]
    add_tracks(lake, tracks)
    blocks: list[Any] = []
    streamer = build_streamer(
        settings,
        lakehouse=lake,
        station=InMemoryStationState(),
        clock=VirtualClock(),
        outputs=[OutputSpec("tap", lambda: Tap(blocks))],
    )
    streamer.run(max_air_s=10.0)
    changes = [s for s in memory_exporter.get_finished_spans() if s.name == "streamer.track_change"]
    aired = [
        s.attributes["sonicforge.track_id"]
        for s in changes
        if "sonicforge.track_id" in s.attributes
    ]
    assert len(aired) >= 2 and set(aired) <= {t.track_id for t in tracks}
    assert all(
        s.attributes["sonicforge.play_id"] for s in changes if "sonicforge.track_id" in s.attributes
    )
