"""Listening on the stream becomes sessions: the API (with the embedded
stream routes) serves /stream.mp3 and /hls to real HTTP clients on
loopback, its recorder flushes heartbeats to the outbox in batches, the
drain takes them to Delta ``events``, and ``listener_sessions`` builds mp3
and hls sessions from them."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import polars as pl
import pytest
import uvicorn
from pydantic import SecretStr
from sqlalchemy import text

from analytics import transforms
from analytics.drain import OutboxDrain, to_tables
from serving.app import create_app
from serving.context import build_context
from serving.db.session import Database
from serving.services.listening import to_rows
from sonicforge.lakehouse import Lakehouse
from sonicforge.settings import Settings
from sonicforge.station import InMemoryStationState
from streaming.listening import ListeningRecorder
from streaming.outputs.chunks import ChunkWriter
from streaming.outputs.hls_playlist import (
    SegmentEntry,
    Variant,
    atomic_write,
    render_master,
    render_media,
)

SEGMENT = b"\x47" + b"\x00" * 187


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_hls(hls: Path) -> None:
    folder = hls / "low"
    folder.mkdir(parents=True, exist_ok=True)
    now = datetime.now(UTC)
    entries = []
    for n in range(4):
        uri = f"seg_{n:08d}.ts"
        atomic_write(folder / uri, SEGMENT * (n + 1))
        entries.append(SegmentEntry(n, uri, 2.0, now + timedelta(seconds=2 * n)))
    atomic_write(
        folder / "index.m3u8", render_media(entries, target_s=2, discontinuity_seq=0).encode()
    )
    atomic_write(hls / "master.m3u8", render_master([Variant("low/index.m3u8", 1, 1)]).encode())


@pytest.fixture
def stack(tmp_path: Path, app_db: Database, lakehouse: Lakehouse) -> Iterator[dict[str, Any]]:
    """The API on loopback, its stream routes fed by a writer thread."""
    settings = Settings(
        var_dir=tmp_path / "var", environment="test", jwt_secret=SecretStr("k" * 40), bcrypt_rounds=4,
        access_log=False, lakehouse_uri=lakehouse.root_uri, stream_dir=tmp_path / "stream",
        stream_hls_segment_s=2.0, rate_limit_ip="100000/minute",
        rate_limit_principal="100000/minute",
    )  # fmt: skip
    stream_dir: Path = settings.stream_dir  # type: ignore[assignment]
    write_hls(stream_dir / "hls")
    mp3 = ChunkWriter(stream_dir / "mp3", ext="mp3")
    stop = threading.Event()

    def feed() -> None:
        while not stop.is_set():
            mp3.write(b"\xff\xfb" + b"\x00" * 4000, {"bitrate_kbps": 128, "sample_rate": 44100})
            time.sleep(0.05)

    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()
    ctx = build_context(settings, db=app_db, lakehouse=lakehouse, station=InMemoryStationState())
    app = create_app(context=ctx)
    flusher = app.state.listening
    assert flusher is not None, "the API records listening"
    flusher.interval_s = 0.2  # flushes (batches) every 0.2 s here, 5 s by default
    flusher.recorder.heartbeat_s = 0.3
    port = free_port()
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    while not srv.started:
        time.sleep(0.02)
    try:
        yield {"base": f"http://127.0.0.1:{port}", "db": app_db, "flusher": flusher}
    finally:
        srv.should_exit = True
        thread.join(timeout=15)
        stop.set()
        feeder.join(timeout=5)


def outbox(db: Database, output: str | None = None) -> list[dict[str, Any]]:
    with db.engine.connect() as conn:
        rows = conn.execute(
            text("SELECT anonymous_id, properties, context, ts FROM event_outbox "
                 "WHERE event = 'heartbeat' ORDER BY ts")
        ).all()  # fmt: skip
    out = []
    for aid, props, context, ts in rows:
        p = json.loads(props) if isinstance(props, str) else props
        if output is None or p.get("output") == output:
            out.append({"anonymous_id": aid, "properties": p, "context": context, "ts": ts})
    return out


def wait_for(predicate: Any, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for the outbox")
        time.sleep(0.05)


def test_mp3_and_hls_listening_becomes_sessions_in_delta(
    stack: dict[str, Any], app_db: Database, lakehouse: Lakehouse
) -> None:
    base, db = stack["base"], stack["db"]
    received = 0
    with httpx.Client(base_url=base, timeout=10) as http:
        with http.stream("GET", "/stream.mp3", headers={"User-Agent": "test-mp3/1"}) as resp:
            assert resp.status_code == 200
            opened = time.monotonic()
            for chunk in resp.iter_bytes():
                received += len(chunk)
                # A long connection is in the outbox before it ends.
                if time.monotonic() - opened > 3.0 or any(
                    e["properties"]["phase"] == "beat" for e in outbox(db, "mp3")
                ):
                    break
            seen_open = [e["properties"]["phase"] for e in outbox(db, "mp3")]
        assert "start" in seen_open and "beat" in seen_open and "end" not in seen_open

        hls_bytes = 0
        for _ in range(3):
            for path in ("master.m3u8", "low/index.m3u8", "low/seg_00000002.ts"):
                r = http.get(f"/hls/{path}", headers={"User-Agent": "test-hls/1"})
                assert r.status_code == 200
                hls_bytes += len(r.content)
            time.sleep(0.25)

    wait_for(lambda: any(e["properties"]["phase"] == "end" for e in outbox(db, "mp3")))
    wait_for(lambda: sum(e["properties"]["bytes"] for e in outbox(db, "hls")) == hls_bytes)
    mp3 = outbox(db, "mp3")
    hls = outbox(db, "hls")
    phases = [e["properties"]["phase"] for e in mp3]
    assert phases[0] == "start" and phases[-1] == "end" and phases.count("end") == 1
    assert sum(e["properties"]["bytes"] for e in mp3) >= received > 0
    # Anonymous: a keyed hash, one per client, never the address.
    assert len({e["anonymous_id"] for e in mp3}) == 1
    assert len({e["anonymous_id"] for e in hls}) == 1
    assert mp3[0]["anonymous_id"] != hls[0]["anonymous_id"]  # another User-Agent
    for e in mp3 + hls:
        assert "127.0.0.1" not in json.dumps(e, default=str)
    # Batched: fewer commits than requests (9 HLS requests, one connection).
    assert len(hls) < 9

    report = OutboxDrain(app_db.engine, lakehouse, batch_size=1000).run()
    assert report.per_table.get("events", 0) >= len(mp3) + len(hls)
    day = datetime.now(UTC).date()
    sessions = transforms.listener_sessions(
        transforms.scan(lakehouse, "events"), day, segment_s=2.0
    ).to_pylist()
    by_output = {s["output"]: s for s in sessions}
    assert set(by_output) == {"mp3", "hls"} and len(sessions) == 2
    assert by_output["mp3"]["heartbeats"] == len(mp3)
    assert by_output["hls"]["heartbeats"] == len(hls)
    # MP3: open to close exactly (the end beat closes it, no segment added).
    first = datetime.fromisoformat(mp3[0]["properties"]["started_at"])
    assert by_output["mp3"]["started_at"] == first
    assert 0 < by_output["mp3"]["listening_s"] <= mp3[-1]["properties"]["seconds"] + 0.01
    # HLS: first to last request plus one segment.
    assert 2.0 < by_output["hls"]["listening_s"] < 2.0 + 5.0


def test_hls_client_away_for_twice_the_segment_starts_a_new_session() -> None:
    now = [1_800_000_000.0]
    rec = ListeningRecorder("secret", segment_s=2.0, clock=lambda: now[0])
    events: list[dict[str, Any]] = []
    for t in (0.0, 2.0, 4.0):  # one player, a segment every 2 s
        now[0] = 1_800_000_000.0 + t
        rec.hls("198.51.100.4", "player/1", 1000)
        events += rec.collect()
    now[0] += 9.0  # away 9 s > 2 × 2 s: forgotten
    events += rec.collect()
    assert rec.open_count()["hls"] == 0
    for t in (13.0, 15.0):
        now[0] = 1_800_000_000.0 + t
        rec.hls("198.51.100.4", "player/1", 1000)
        events += rec.collect()
    tables = to_tables(to_rows(events, "postgresql"), dialect="postgresql")
    day = datetime.fromtimestamp(now[0], UTC).date()
    sessions = transforms.listener_sessions(
        pl.from_arrow(tables["events"]).lazy(),  # type: ignore[union-attr]
        day,
        segment_s=2.0,
    ).to_pylist()
    spans = sorted((s["heartbeats"], s["listening_s"]) for s in sessions)
    assert spans == [(2, 4.0), (3, 6.0)]


def test_an_mp3_connection_reports_start_beats_and_end() -> None:
    now = [1_800_000_000.0]
    rec = ListeningRecorder("secret", segment_s=6.0, heartbeat_s=5.0, clock=lambda: now[0])
    client = rec.mp3_open("198.51.100.4", "vlc/3")
    assert [e["properties"]["phase"] for e in rec.collect()] == ["start"]
    for _ in range(4):
        now[0] += 5.0
        client.add(80_000)
        assert [e["properties"]["phase"] for e in rec.collect()] == ["beat"]
    now[0] += 2.0
    rec.mp3_close(client)
    last = rec.collect()
    assert [e["properties"]["phase"] for e in last] == ["end"]
    assert last[0]["properties"]["seconds"] == 22.0
    assert rec.collect() == []  # forgotten once reported
    # A server stopping reports its open connections as ended.
    rec.mp3_open("198.51.100.5", "vlc/3")
    rec.collect()
    assert [e["properties"]["phase"] for e in rec.collect(final=True)] == ["end"]


def test_anonymous_ids_are_keyed_hashes_of_address_and_user_agent() -> None:
    a = ListeningRecorder("one", segment_s=2.0)
    b = ListeningRecorder("two", segment_s=2.0)
    x = a.anonymous_id("203.0.113.9", "ua/1")
    assert x == a.anonymous_id("203.0.113.9", "ua/1")
    assert x != a.anonymous_id("203.0.113.9", "ua/2")
    assert x != a.anonymous_id("203.0.113.10", "ua/1")
    assert x != b.anonymous_id("203.0.113.9", "ua/1"), "keyed: another secret, another id"
    assert "203.0.113" not in x
