"""The listener endpoints on a real server on loopback: the MP3 mount
decoded and its ICY metadata parsed, HLS files served, the visualizer feed
over SSE and WebSocket, listener counts reported."""

from __future__ import annotations

import asyncio
import io
import itertools
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import av
import httpx
import pytest
import uvicorn
from websockets.sync.client import connect

from sonicforge.lakehouse import Lakehouse
from sonicforge.settings import Settings
from sonicforge.station import InMemoryStationState
from streaming.http import ICY_METAINT, create_stream_app
from streaming.hub import ChunkTail, IcyInterleaver
from streaming.outputs.chunks import ChunkWriter
from streaming.service import output_specs

from .conftest import PacedClock, free_port, make_streamer


@pytest.fixture
def server(stream_settings: Settings) -> Iterator[tuple[str, InMemoryStationState]]:
    station = InMemoryStationState()
    app = create_stream_app(settings=stream_settings, station=station, report_s=0.2)
    port = free_port()
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    while not srv.started:
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}", station
    srv.should_exit = True
    thread.join(timeout=10)


@pytest.fixture
def on_air(
    stream_settings: Settings, station_lake: Lakehouse, server: tuple[str, InMemoryStationState]
) -> Iterator[str]:
    """A streamer feeding MP3, HLS and viz at 8× real time for 60 s of air."""
    clock = PacedClock(speed=8)
    station = InMemoryStationState(clock=clock.now)
    specs = output_specs(stream_settings, outputs=("hls", "mp3", "viz"))
    streamer = make_streamer(stream_settings, station_lake, station, clock, specs)
    stop = threading.Event()
    thread = threading.Thread(target=streamer.run, kwargs={"max_air_s": 60, "stop": stop})
    thread.start()
    root: Path = stream_settings.stream_dir  # type: ignore[assignment]
    while not ((root / "mp3" / "latest.json").exists() and (root / "viz" / "latest.json").exists()):
        time.sleep(0.02)
    yield server[0]
    stop.set()
    thread.join(timeout=30)


def split_icy(body: bytes, metaint: int) -> tuple[bytes, list[str]]:
    """Audio and StreamTitle values from an ICY-interleaved body."""
    audio, titles, pos = bytearray(), [], 0
    while pos + metaint < len(body):
        audio += body[pos : pos + metaint]
        pos += metaint
        size = body[pos] * 16
        meta = body[pos + 1 : pos + 1 + size].rstrip(b"\0").decode()
        pos += 1 + size
        if meta:
            assert meta.startswith("StreamTitle='") and meta.endswith("';")
            titles.append(meta[len("StreamTitle='") : -2])
    return bytes(audio), titles


def read_body(base: str, headers: dict[str, str], size: int) -> tuple[httpx.Headers, bytes]:
    body = bytearray()
    with httpx.stream("GET", f"{base}/stream.mp3", headers=headers, timeout=10) as r:
        assert r.status_code == 200
        for piece in r.iter_bytes():
            body += piece
            if len(body) >= size:
                break
        return r.headers, bytes(body)


def decoded_seconds(mp3: bytes) -> float:
    with av.open(io.BytesIO(mp3), format="mp3") as c:
        return sum(f.samples for f in c.decode(audio=0)) / 48000


def test_mp3_mount_with_icy_metadata(on_air: str) -> None:
    headers, body = read_body(on_air, {"Icy-MetaData": "1"}, 16000 * 12)
    assert headers["content-type"] == "audio/mpeg"
    assert int(headers["icy-metaint"]) == ICY_METAINT
    audio, titles = split_icy(body, ICY_METAINT)
    assert titles and all(t.startswith("SonicForge · procedural - Ambient #t") for t in titles)
    assert decoded_seconds(audio) == pytest.approx(len(audio) * 8 / 128000, rel=0.05)


def test_plain_mp3_listeners_share_one_stream(on_air: str) -> None:
    results: list[bytes] = []

    def listen() -> None:
        results.append(read_body(on_air, {}, 16000 * 4)[1])

    threads = [threading.Thread(target=listen) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 4
    for body in results:
        assert b"StreamTitle" not in body
        assert decoded_seconds(body) > 3.0


def test_listener_counts_reach_the_station(
    on_air: str, server: tuple[str, InMemoryStationState]
) -> None:
    station = server[1]
    seen = 0
    with httpx.stream("GET", f"{on_air}/stream.mp3", timeout=10) as r:
        for _ in r.iter_bytes():
            seen = max(seen, station.listener_counts().get("mp3", 0))
            if seen:
                break
    assert seen == 1
    # Gone: the count falls back (a listener that left is not sent to forever).
    deadline = time.monotonic() + 10
    while station.listener_counts().get("mp3", 0) != 0:
        assert time.monotonic() < deadline, "a closed MP3 connection is still counted"
        time.sleep(0.05)


def test_hls_files_are_served_with_their_types(on_air: str, stream_settings: Settings) -> None:
    deadline = time.monotonic() + 20
    while (r := httpx.get(f"{on_air}/hls/master.m3u8")).status_code == 503:
        assert int(r.headers["retry-after"]) >= 1
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert r.status_code == 200 and r.headers["content-type"] == "application/vnd.apple.mpegurl"
    assert httpx.head(f"{on_air}/hls/master.m3u8").status_code == 200
    media = httpx.get(f"{on_air}/hls/aac_64k/index.m3u8").text
    segment = [line for line in media.splitlines() if line.endswith(".ts")][-1]
    seg = httpx.get(f"{on_air}/hls/aac_64k/{segment}")
    assert seg.status_code == 200 and seg.headers["content-type"] == "video/mp2t"
    assert seg.content[0] == 0x47 and "immutable" in seg.headers["cache-control"]
    for bad in ("../mp3/latest.json", "aac_64k/nope.ts", "..%2F..%2Fetc%2Fpasswd"):
        r = httpx.get(f"{on_air}/hls/{bad}")
        assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"


def test_playlists_are_never_torn_while_rewritten(on_air: str) -> None:
    # Served while the streamer replaces them: each response is one whole
    # version (a FileResponse could pair an old length with new bytes).
    with httpx.Client(base_url=on_air, timeout=10) as client:
        deadline = time.monotonic() + 20
        while client.get("/hls/aac_64k/index.m3u8").status_code != 200:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        seen: set[str] = set()
        deadline = time.monotonic() + 15
        while len(seen) < 4 and time.monotonic() < deadline:
            r = client.get("/hls/aac_64k/index.m3u8")
            assert r.status_code == 200
            assert r.text.endswith(".ts\n") or r.text.endswith("#EXT-X-ENDLIST\n")
            assert int(r.headers["content-length"]) == len(r.content)
            seen.add(r.text)
    assert len(seen) >= 4, "the playlist changed during the test"


def test_visualizer_feed_over_sse_and_websocket(on_air: str) -> None:
    frames = []
    with httpx.stream("GET", f"{on_air}/viz/events", timeout=10) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        for line in r.iter_lines():
            if line.startswith("data: "):
                frames.append(json.loads(line[6:]))
            if len(frames) >= 30:
                break
    assert all(len(f["b"]) == 32 and all(0 <= v <= 255 for v in f["b"]) for f in frames)
    steps = {round(b["t"] - a["t"], 3) for a, b in itertools.pairwise(frames)}
    assert steps == {0.04}, "25 frames a second, none missing"
    assert all(b["at"] > a["at"] for a, b in itertools.pairwise(frames))
    # max_queue=None: the test clock puts every frame in the past, so they
    # arrive in a burst, and a bounded client queue would stall the close.
    with connect(on_air.replace("http", "ws") + "/viz/ws", max_queue=None) as ws:
        got = [json.loads(ws.recv(timeout=10)) for _ in range(5)]
    assert [len(f["b"]) for f in got] == [32] * 5 and "title" in got[0]


def test_off_air_answers_503(server: tuple[str, InMemoryStationState]) -> None:
    r = httpx.get(f"{server[0]}/stream.mp3")
    assert r.status_code == 503
    assert r.json()["error"]["code"] == "unavailable" and "off air" in r.json()["error"]["message"]


def test_tail_reads_each_chunk_once_for_all_listeners(tmp_path: Path) -> None:
    writer = ChunkWriter(tmp_path, ext="bin")
    tail = ChunkTail(tmp_path, poll_s=0.01, backlog=1)

    async def scenario() -> list[list[int]]:
        writer.write(b"x0", {})
        got: list[list[int]] = [[], [], []]
        async with tail.subscribe() as a, tail.subscribe() as b, tail.subscribe() as c:
            assert tail.listeners == 3
            for n in range(1, 6):
                await asyncio.sleep(0.03)
                writer.write(f"x{n}".encode(), {})
            await asyncio.sleep(0.1)
            for reader, out in zip((a, b, c), got, strict=True):
                chunks = reader.available()
                assert chunks is not None
                out.extend(chunk.seq for chunk in chunks)
        assert tail.listeners == 0
        return got

    got = asyncio.run(scenario())
    assert got[0] == [0, 1, 2, 3, 4, 5] and got[0] == got[1] == got[2]
    assert tail.reads == 6, "each chunk file is read once, not once per listener"


def test_a_listener_that_falls_behind_the_buffer_is_dropped(tmp_path: Path) -> None:
    writer = ChunkWriter(tmp_path, ext="bin")
    tail = ChunkTail(tmp_path, poll_s=0.01, backlog=1, keep=4)

    async def scenario() -> tuple[list[int] | None, list[int] | None]:
        writer.write(b"x0", {})
        async with tail.subscribe() as slow, tail.subscribe() as live:
            for n in range(1, 4):
                writer.write(f"x{n}".encode(), {})
                await asyncio.sleep(0.03)
                live_chunks = live.available()
                assert live_chunks
            for n in range(4, 8):  # the slow reader is now 8 chunks back; 4 are kept
                writer.write(f"x{n}".encode(), {})
                await asyncio.sleep(0.03)
            got_slow, got_live = slow.available(), live.available()
            return (
                None if got_slow is None else [c.seq for c in got_slow],
                None if got_live is None else [c.seq for c in got_live],
            )

    slow, live = asyncio.run(scenario())
    assert slow is None
    assert live == [4, 5, 6, 7]


def test_mp3_listeners_end_when_the_station_goes_off_air(tmp_path: Path) -> None:
    writer = ChunkWriter(tmp_path, ext="bin")
    tail = ChunkTail(tmp_path, poll_s=0.01, backlog=1, stale_s=0.2)

    async def scenario() -> list[int]:
        writer.write(b"x0", {})
        seen = []
        async with tail.subscribe() as reader:
            while (chunks := await asyncio.wait_for(reader.batch(), 5)) is not None:
                seen.extend(c.seq for c in chunks)
        return seen

    assert asyncio.run(scenario()) == [0]
    assert tail.off_air


def test_icy_blocks_follow_the_protocol() -> None:
    icy = IcyInterleaver(metaint=10)
    out = icy.feed(b"a" * 25, "It's on")
    assert out[:10] == b"a" * 10
    size = out[10] * 16
    assert out[11 : 11 + size].rstrip(b"\0") == "StreamTitle='It’s on';".encode()
    rest = out[11 + size :]
    assert rest[:10] == b"a" * 10 and rest[10] == 0 and rest[11:] == b"a" * 5
