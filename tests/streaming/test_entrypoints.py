"""The ways the streamer starts: `sonicforge stream`, embedded in the API
process (the no-Redis default), and one streamer per stream folder."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from sonicforge.lakehouse import Lakehouse
from sonicforge.settings import Settings
from sonicforge.station import InMemoryStationState
from streaming.errors import StreamingError
from streaming.http import create_stream_app
from streaming.run import StreamLock

ROOT = Path(__file__).resolve().parents[2]


def test_stream_command_plays_and_exits(tmp_path: Path, station_lake: Lakehouse) -> None:
    env = {
        **os.environ,
        "SONICFORGE_VAR_DIR": str(tmp_path / "var"),
        "SONICFORGE_LAKEHOUSE_URI": station_lake.root_uri,
        "SONICFORGE_STREAM_DIR": str(tmp_path / "stream"),
        "SONICFORGE_STREAM_HLS_SEGMENT_S": "1",
    }
    env.pop("SONICFORGE_REDIS_URL", None)
    done = subprocess.run(
        [sys.executable, "-m", "cli.main", "stream", "--duration", "2.5"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "no SONICFORGE_REDIS_URL" in done.stderr
    playlist = (tmp_path / "stream" / "hls" / "aac_128k" / "index.m3u8").read_text()
    assert "#EXT-X-ENDLIST" in playlist and playlist.count("#EXTINF") >= 2
    assert (tmp_path / "stream" / "mp3" / "latest.json").exists()
    assert len(station_lake.read("plays")) >= 1


def test_embedded_streamer_runs_inside_the_app(
    stream_settings: Settings, station_lake: Lakehouse
) -> None:
    settings = stream_settings.model_copy(
        update={"stream_embedded": True, "lakehouse_uri": station_lake.root_uri}
    )
    station = InMemoryStationState()
    app = create_stream_app(settings=settings, station=station)
    with TestClient(app) as client:
        deadline = time.monotonic() + 20
        while station.now_playing() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        now = station.now_playing()
        assert now is not None and now.track_id.startswith("t")
        station.send_command("skip", issued_by="op")
        deadline = time.monotonic() + 5
        while station.now_playing() == now and time.monotonic() < deadline:
            time.sleep(0.05)
        assert station.now_playing() != now, "the embedded streamer obeyed the skip"
        assert client.get("/hls/nope.m3u8").status_code == 404
    heartbeat = station.heartbeat()
    assert heartbeat is not None and heartbeat.info["state"] == "on_air"
    assert station.now_playing() is None  # stopped with the app


def test_one_streamer_per_stream_folder(tmp_path: Path) -> None:
    first, second = StreamLock(tmp_path), StreamLock(tmp_path)
    first.acquire()
    with pytest.raises(StreamingError, match="another streamer already writes"):
        second.acquire()
    first.release()
    second.acquire()
    second.release()
