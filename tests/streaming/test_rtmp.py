"""RTMP pushes received by a local nginx-rtmp on loopback: H.264 + AAC,
a keyframe every 2 s, an unreachable target beside a working one, a
reconnect after the server drops, and stream keys kept out of the logs."""

from __future__ import annotations

import itertools
import logging
import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import av
import pytest

from sonicforge.lakehouse import Lakehouse
from sonicforge.settings import Settings
from sonicforge.station import InMemoryStationState
from streaming.clock import VirtualClock
from streaming.errors import StreamConfigError
from streaming.outputs.base import OutputSpec
from streaming.outputs.rtmp import RtmpOutput
from streaming.outputs.rtmp_targets import target, targets_from_settings

from .conftest import PacedClock, free_port, make_streamer

MODULE = Path("/usr/lib/nginx/modules/ngx_rtmp_module.so")
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
needs_nginx = pytest.mark.skipif(
    not (os.path.exists(NGINX) and MODULE.exists()),
    reason="needs Debian's nginx with libnginx-mod-rtmp "
    "(apt-get install -y nginx libnginx-mod-rtmp)",
)


@dataclass
class RtmpServer:
    port: int
    root: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def recordings(self) -> Path:
        return self.root / "rec"

    def url(self, key: str) -> str:
        return f"rtmp://127.0.0.1:{self.port}/live/{key}"

    def start(self) -> None:
        conf = self.root / "nginx.conf"
        conf.write_text(
            f"""load_module {MODULE};
daemon off;
master_process off;
pid {self.root}/nginx.pid;
error_log {self.root}/error.log info;
events {{ worker_connections 64; }}
rtmp {{
    server {{
        listen 127.0.0.1:{self.port};
        application live {{
            live on;
            record all;
            record_path {self.recordings};
            record_unique on;
        }}
    }}
}}
"""
        )
        self.recordings.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [NGINX, "-c", str(conf), "-p", str(self.root), "-e", str(self.root / "error.log")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.05)
        raise RuntimeError("nginx-rtmp did not start; see " + str(self.root / "error.log"))

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
            self.proc = None


@pytest.fixture
def rtmp_server(tmp_path: Path) -> Iterator[RtmpServer]:
    server = RtmpServer(free_port(), tmp_path / "nginx")
    server.root.mkdir()
    server.start()
    yield server
    server.stop()


def probe(path: Path) -> tuple[set[str], list[float], float]:
    """Codecs, keyframe times (s) and duration (s) of a recording."""
    with av.open(str(path)) as c:
        codecs = {s.codec_context.name for s in c.streams}
        video = c.streams.video[0]
        keys, last = [], 0.0
        for packet in c.demux(video):
            if packet.pts is None:
                continue
            t = float(packet.pts * packet.time_base)
            last = max(last, t)
            if packet.is_keyframe:
                keys.append(t)
    return codecs, keys, last


def rtmp_spec(targets: list, station: InMemoryStationState) -> OutputSpec:  # type: ignore[type-arg]
    return OutputSpec(
        "rtmp",
        lambda: RtmpOutput(targets, size=(640, 360), fps=25, video_kbps=800, station=station),
        threaded=True,
    )


@needs_nginx
def test_push_h264_aac_with_two_second_keyframes_beside_a_dead_target(
    rtmp_server: RtmpServer,
    stream_settings: Settings,
    station_lake: Lakehouse,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    good = target(url=rtmp_server.url("goodkey42"), name="lab")
    dead = target(url=f"rtmp://127.0.0.1:{free_port()}/live/SECRETKEY123", name="dead")
    clock = VirtualClock()
    station = InMemoryStationState(clock=clock.now)
    streamer = make_streamer(
        stream_settings, station_lake, station, clock, [rtmp_spec([good, dead], station)]
    )
    streamer.run(max_air_s=9)
    recordings = list(rtmp_server.recordings.glob("goodkey42*.flv"))
    assert len(recordings) == 1
    codecs, keys, duration = probe(recordings[0])
    assert codecs == {"h264", "aac"}
    assert duration >= 8.5
    steps = {round(b - a, 2) for a, b in itertools.pairwise(keys)}
    assert len(keys) >= 4 and steps == {2.0}
    status = {o.name: o for o in station.outputs()}
    assert status["rtmp:dead"].state in ("restarting", "stopped")
    assert "SECRETKEY123" not in caplog.text and "goodkey42" not in caplog.text
    assert "rtmp://127.0.0.1" in caplog.text and "****" in caplog.text


@needs_nginx
def test_target_reconnects_after_the_server_drops(
    rtmp_server: RtmpServer, stream_settings: Settings, station_lake: Lakehouse
) -> None:
    clock = PacedClock(speed=3)
    station = InMemoryStationState(clock=clock.now)
    good = target(url=rtmp_server.url("again"), name="lab")
    output: list[RtmpOutput] = []

    def build() -> RtmpOutput:
        out = RtmpOutput([good], size=(320, 180), fps=25, video_kbps=300, station=station)
        output.append(out)
        return out

    streamer = make_streamer(
        stream_settings, station_lake, station, clock, [OutputSpec("rtmp", build, threaded=True)]
    )
    thread = threading.Thread(target=streamer.run, kwargs={"max_air_s": 16})
    thread.start()
    deadline = time.monotonic() + 20
    while not list(rtmp_server.recordings.glob("again*.flv")) and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(1.0)
    rtmp_server.stop()  # the platform drops us
    time.sleep(0.5)
    rtmp_server.start()
    thread.join(timeout=60)
    sender = output[0].senders[0]
    assert sender.connects >= 2
    recordings = sorted(rtmp_server.recordings.glob("again*.flv"))
    assert len(recordings) >= 2
    codecs, keys, duration = probe(recordings[-1])
    assert codecs == {"h264", "aac"} and keys and keys[0] == pytest.approx(0.0, abs=0.05)
    assert duration > 2.0


def test_targets_from_settings_presets_and_errors() -> None:
    s = Settings(
        stream_youtube_key="yt-key",  # type: ignore[arg-type]
        stream_rtmp_targets='[{"preset": "kick", "key": "k1"}, {"name": "lab", "url": "rtmp://h/app/k2"}]',  # type: ignore[arg-type]
    )
    targets = targets_from_settings(s)
    assert [t.name for t in targets] == ["youtube", "kick", "lab"]
    assert targets[0].url == "rtmp://a.rtmp.youtube.com/live2/yt-key"
    assert targets[1].url.startswith("rtmps://") and targets[1].safe_url.endswith("/app/****")
    assert "yt-key" not in repr(targets) and "yt-key" not in repr(s)
    with pytest.raises(StreamConfigError, match="allowed presets: youtube, twitch, kick"):
        target(preset="vimeo", key="x")
    with pytest.raises(StreamConfigError, match="not valid JSON") as err:
        targets_from_settings(Settings(stream_rtmp_targets="[{'key': 'leak'}"))  # type: ignore[arg-type]
    assert "leak" not in str(err.value)
