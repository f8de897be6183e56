"""``/hls/…`` as a player meets it: the master is published only when every
variant it names has a live window of three segments (503 and Retry-After
before that), names the streamer did not write are 404 in the API's error
body, listeners are counted by the session key a player keeps, and the
schema documents all of it. Playlists are read back with the ``m3u8``
library, not with our own parser."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import m3u8
import numpy as np
import pytest
from fastapi.testclient import TestClient

from sonicforge.settings import Settings
from sonicforge.station import InMemoryStationState
from streaming.http import create_stream_app
from streaming.hub import HlsListeners
from streaming.outputs.base import AudioBlock
from streaming.outputs.hls import HlsOutput
from streaming.outputs.hls_playlist import (
    SegmentEntry,
    Variant,
    atomic_write,
    render_master,
    render_media,
)

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
SEGMENT = b"\x47" + b"\x00" * 187


def write_variant(hls: Path, name: str, count: int) -> None:
    folder = hls / name
    folder.mkdir(parents=True, exist_ok=True)
    entries = []
    for n in range(count):
        uri = f"seg_{n:08d}.ts"
        atomic_write(folder / uri, SEGMENT * (n + 1))
        entries.append(SegmentEntry(n, uri, 2.0, T0 + timedelta(seconds=2 * n)))
    atomic_write(
        folder / "index.m3u8", render_media(entries, target_s=2, discontinuity_seq=0).encode()
    )


def write_master(hls: Path, names: list[str]) -> None:
    variants = [Variant(f"{n}/index.m3u8", 100_000, 90_000) for n in names]
    atomic_write(hls / "master.m3u8", render_master(variants).encode())


@pytest.fixture
def hls_dir(stream_settings: Settings) -> Path:
    path: Path = stream_settings.stream_dir / "hls"  # type: ignore[operator]
    path.mkdir(parents=True)
    return path


@pytest.fixture
def station() -> InMemoryStationState:
    return InMemoryStationState()


@pytest.fixture
def client(stream_settings: Settings, station: InMemoryStationState) -> Iterator[TestClient]:
    app = create_stream_app(settings=stream_settings, station=station, report_s=0.05)
    with TestClient(app, client=("203.0.113.7", 50000)) as c:
        yield c


def fresh(client: TestClient, url: str, **kwargs: object):  # type: ignore[no-untyped-def]
    # The index looks at the folder at most every 0.25 s.
    time.sleep(0.3)
    return client.get(url, **kwargs)  # type: ignore[arg-type]


def test_master_is_503_with_retry_after_until_every_variant_has_three_segments(
    client: TestClient, hls_dir: Path
) -> None:
    r = client.get("/hls/master.m3u8")
    assert r.status_code == 503 and r.headers["retry-after"] == "2"
    assert r.json()["error"]["code"] == "unavailable"
    assert "three segments" in r.json()["error"]["message"]

    write_master(hls_dir, ["aac_64k", "aac_128k"])  # as a streamer used to, at once
    write_variant(hls_dir, "aac_64k", 3)
    write_variant(hls_dir, "aac_128k", 2)
    r = fresh(client, "/hls/master.m3u8")
    assert r.status_code == 503 and int(r.headers["retry-after"]) == 2

    write_variant(hls_dir, "aac_128k", 3)
    r = fresh(client, "/hls/master.m3u8")
    assert r.status_code == 200
    master = m3u8.loads(r.text, uri="http://testserver/hls/master.m3u8")
    assert master.is_variant and len(master.playlists) == 2
    for playlist in master.playlists:
        media_r = client.get(f"/hls/{playlist.uri}")
        assert media_r.status_code == 200
        media = m3u8.loads(media_r.text)
        assert len(media.segments) >= 3 and media.target_duration == 2
        for seg in media.segments:
            got = client.get(f"/hls/{Path(playlist.uri).parent}/{seg.uri}")
            assert got.status_code == 200 and got.content[0] == 0x47


def test_streamer_writes_the_master_only_once_every_variant_has_three_segments(
    tmp_path: Path,
) -> None:
    hls = tmp_path / "hls"
    (hls).mkdir()
    (hls / "master.m3u8").write_text("#EXTM3U\nstale/index.m3u8\n")  # an earlier session's
    out = HlsOutput(hls, bitrates_kbps=[64, 128], sample_rate=48000, segment_s=1.0, window=4)
    assert not (hls / "master.m3u8").exists(), "a stale master is taken down at start"
    rng = np.random.default_rng(0)
    sr, block = 48000, 4800
    seen_master_at = None
    for i in range(60):  # 6 s of audio in 0.1 s blocks
        pcm = (0.1 * rng.standard_normal((block, 2))).astype(np.float32)
        out.write(AudioBlock(pcm, i * block, sr, T0 + timedelta(seconds=i / 10), "t", "a"))
        if (hls / "master.m3u8").exists():
            master = m3u8.load(str(hls / "master.m3u8"))
            for playlist in master.playlists:
                media = m3u8.load(str(hls / playlist.uri))
                assert len(media.segments) >= 3, f"{playlist.uri} listed before it had 3 segments"
            seen_master_at = seen_master_at if seen_master_at is not None else i
    out.close()
    assert seen_master_at is not None and 30 <= seen_master_at <= 45


@pytest.mark.parametrize(
    "name",
    [
        "master.m3u8%00",
        "aac_64k/index.m3u8%00.ts",
        "a" * 5000,
        "aac_64k/" + "b" * 5000 + ".ts",
        "../mp3/latest.json",
        "..%2F..%2Fetc%2Fpasswd",
        "aac_64k/notes.ts",  # on disk, but no playlist lists it
        "aac_64k/.index.m3u8.tmp-0000",
        "aac_64k",
        "",
    ],
)
def test_names_the_streamer_did_not_write_are_404(
    client: TestClient, hls_dir: Path, name: str
) -> None:
    write_variant(hls_dir, "aac_64k", 3)
    (hls_dir / "aac_64k" / "notes.ts").write_bytes(SEGMENT)
    (hls_dir / "aac_64k" / ".index.m3u8.tmp-0000").write_bytes(b"#EXTM3U\n")
    r = fresh(client, f"/hls/{name}")
    assert r.status_code == 404
    body = r.json()
    assert body["error"]["code"] == "not_found"
    if r.request.url.path.startswith("/hls/"):  # a client may fold "../" away first
        assert "no such HLS file" in body["error"]["message"]
    assert "b" * 100 not in body["error"]["message"], "the name is not echoed back"
    assert client.head(f"/hls/{name}").status_code == 404


def test_a_bad_session_key_is_a_clear_422(client: TestClient, hls_dir: Path) -> None:
    write_variant(hls_dir, "aac_64k", 3)
    r = fresh(client, "/hls/aac_64k/index.m3u8", params={"sid": "x"})
    assert r.status_code == 422
    assert r.json()["error"]["message"].startswith("query.sid:")


def wait_for_count(station: InMemoryStationState, want: int) -> int:
    deadline = time.monotonic() + 5
    got = -1
    while time.monotonic() < deadline:
        got = station.listener_counts().get("hls", -1)
        if got == want:
            return got
        time.sleep(0.02)
    return got


def test_hls_listeners_are_counted_by_session_key_not_user_agent(
    client: TestClient, hls_dir: Path, station: InMemoryStationState
) -> None:
    write_variant(hls_dir, "aac_64k", 3)
    time.sleep(0.3)
    for n in range(100):  # one address, a hundred User-Agents: one listener
        seg = client.get("/hls/aac_64k/seg_00000000.ts", headers={"User-Agent": f"player/{n}"})
        assert seg.status_code == 200
    assert wait_for_count(station, 1) == 1

    for n in range(100):  # a hundred players behind that address, each with its key
        client.get("/hls/aac_64k/seg_00000001.ts", params={"sid": f"session-{n:04d}"})
    assert wait_for_count(station, 101) == 101


def test_a_player_keeps_the_cookie_it_is_given(client: TestClient, hls_dir: Path) -> None:
    write_variant(hls_dir, "aac_64k", 3)
    first = fresh(client, "/hls/aac_64k/index.m3u8")
    cookie = first.headers["set-cookie"]
    assert cookie.startswith("sf_listener=") and "HttpOnly" in cookie and "Path=/hls" in cookie
    # The test client keeps it, as a browser does: no new key is handed out.
    again = client.get("/hls/aac_64k/index.m3u8")
    assert "set-cookie" not in again.headers
    assert "set-cookie" not in client.get("/hls/aac_64k/seg_00000000.ts").headers


def test_a_listener_counts_for_twice_the_segment_duration() -> None:
    now = [0.0]
    listeners = HlsListeners(window_s=4.0, clock=lambda: now[0])
    listeners.touch("sid:a")
    now[0] = 2.0
    listeners.touch("sid:b")
    assert listeners.count() == 2
    now[0] = 4.5
    assert listeners.count() == 1
    now[0] = 6.5
    assert listeners.count() == 0


def test_schema_documents_the_404_and_503_answers(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    hls = paths["/hls/{path}"]["get"]["responses"]
    assert {"200", "404", "503", "422"} <= set(hls)
    assert "Retry-After" in hls["503"]["headers"]
    assert "application/json" in hls["404"]["content"]
    assert set(hls["200"]["content"]) == {"application/vnd.apple.mpegurl", "video/mp2t"}
    mp3 = paths["/stream.mp3"]["get"]["responses"]
    assert "503" in mp3 and "audio/mpeg" in mp3["200"]["content"]
    viz = paths["/viz/events"]["get"]["responses"]
    assert "503" in viz and "text/event-stream" in viz["200"]["content"]


def test_a_schema_driven_fuzzer_finds_every_hls_answer_documented(
    stream_settings: Settings, hls_dir: Path
) -> None:
    import schemathesis
    from hypothesis import HealthCheck, given, settings

    write_master(hls_dir, ["aac_64k"])
    write_variant(hls_dir, "aac_64k", 3)
    app = create_stream_app(settings=stream_settings, station=InMemoryStationState())
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    operation = schema["/hls/{path}"]["GET"]
    statuses: set[int] = set()

    @given(case=operation.as_strategy())
    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
    def check(case: schemathesis.Case) -> None:
        response = case.call_and_validate()
        statuses.add(response.status_code)

    check()
    assert 404 in statuses
