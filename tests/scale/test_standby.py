"""The streamer's hot standby for real: two ``sonicforge stream`` processes
on one Redis (a private redis-server on loopback), the active one killed
with SIGKILL. The HLS playlist goes on with a discontinuity, its media
sequence never goes back, and at most 5 s of audio is missing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest

from sonicforge.lakehouse import Lakehouse
from streaming.outputs.hls_playlist import PlaylistState, read_media
from tests.scale.redis_servers import RedisSet, need_binaries, wait_until
from tests.streaming.conftest import FREQS, SynthTrack, add_tracks

REPO = Path(__file__).resolve().parents[2]
LEASE_KEY = "sonicforge:test:stream:lease"
MAX_MISSING_AUDIO_S = 5.0


@dataclass
class Pair:
    env: dict[str, str]
    playlist: Path
    logs: Path
    redis: RedisSet
    port: int


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[Pair]:
    need_binaries("redis-server")
    lake = Lakehouse(str(tmp_path / "lake"))
    lake.ensure_all()
    add_tracks(lake, [SynthTrack(f"t{i}", f, duration_s=6.0) for i, f in enumerate(FREQS[:4])])
    rs = RedisSet(tmp_path)
    port = rs.server()
    env = {
        **os.environ,
        "SONICFORGE_VAR_DIR": str(tmp_path / "var"),
        "SONICFORGE_LAKEHOUSE_URI": lake.root_uri,
        "SONICFORGE_STREAM_DIR": str(tmp_path / "stream"),
        "SONICFORGE_REDIS_URL": f"redis://127.0.0.1:{port}/0",
        "SONICFORGE_STREAM_STANDBY": "true",
        "SONICFORGE_STREAM_LEASE_KEY": LEASE_KEY,
        "SONICFORGE_STREAM_LEASE_TTL_S": "3",
        "SONICFORGE_STREAM_LEASE_RENEW_S": "1",
        "SONICFORGE_STREAM_HLS_SEGMENT_S": "1",
        "SONICFORGE_STREAM_HLS_BITRATES_KBPS": "64",
        "SONICFORGE_STREAM_NO_REPEAT_COUNT": "0",
        "SONICFORGE_STREAM_NO_REPEAT_S": "0",
    }
    logs = tmp_path / "logs"
    logs.mkdir()
    yield Pair(env, tmp_path / "stream" / "hls" / "aac_64k" / "index.m3u8", logs, rs, port)
    rs.stop()


def _start(p: Pair, name: str) -> subprocess.Popen[bytes]:
    log = open(p.logs / f"{name}.log", "wb")  # noqa: SIM115 - closed with the process
    return subprocess.Popen(
        [sys.executable, "-m", "cli.main", "stream"],
        cwd=REPO,
        env=p.env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def _holder(p: Pair) -> str | None:
    raw = p.redis.client(p.port).get(LEASE_KEY)
    return raw.decode() if raw else None


def _log(p: Pair, name: str) -> str:
    return (p.logs / f"{name}.log").read_text(errors="replace")


@pytest.mark.slow
def test_standby_takes_over_after_sigkill(pair: Pair) -> None:
    a = _start(pair, "a")
    b: subprocess.Popen[bytes] | None = None
    try:
        wait_until(lambda: (_holder(pair) or "").endswith(f":{a.pid}"), 30, "A holding the lease")
        wait_until(
            lambda: (s := read_media(pair.playlist)) is not None and len(s.entries) >= 3,
            30,
            "A's first three segments",
        )
        b = _start(pair, "b")
        wait_until(lambda: "standing by for lease" in _log(pair, "b"), 30, "B standing by")
        assert (_holder(pair) or "").endswith(f":{a.pid}"), "the standby took an active lease"

        observed: list[PlaylistState] = []
        before = read_media(pair.playlist)
        assert before is not None
        os.killpg(a.pid, signal.SIGKILL)
        a.wait(timeout=10)
        killed = time.monotonic()
        resumed_at = None
        deadline = killed + 30
        while time.monotonic() < deadline:
            state = read_media(pair.playlist)
            if state is not None and state.entries:
                observed.append(state)
                newer = [e for e in state.entries if e.discontinuity]
                if newer and resumed_at is None:
                    resumed_at = time.monotonic()
                if newer and state.entries[-1].seq >= newer[0].seq + 2:
                    break
            time.sleep(0.05)
        assert resumed_at is not None, (
            "no discontinuity after the kill:\n" + _log(pair, "b")[-3000:]
        )
        assert (_holder(pair) or "").endswith(f":{b.pid}")

        final = observed[-1]
        by_seq = {e.seq: e for s in observed for e in s.entries}
        first_new = next(e for e in final.entries if e.discontinuity)
        old_last = by_seq[first_new.seq - 1]
        # The media sequence never goes back, and the numbering has no gap.
        firsts = [s.entries[0].seq for s in observed]
        assert firsts == sorted(firsts), "EXT-X-MEDIA-SEQUENCE went back"
        assert first_new.seq == before.entries[-1].seq + 1 or first_new.seq > before.entries[-1].seq
        assert [e.seq for e in final.entries] == list(
            range(final.entries[0].seq, final.entries[-1].seq + 1)
        )
        assert final.discontinuity_seq >= 0
        # Missing audio: from where the killed streamer's last segment ends to
        # where the standby's first begins, on the program clock.
        old_end = old_last.program_date_time + timedelta(seconds=old_last.duration_s)
        missing_s = (first_new.program_date_time - old_end).total_seconds()
        assert -0.05 <= missing_s <= MAX_MISSING_AUDIO_S, missing_s
        # The new segments are real audio files the API can serve.
        assert (pair.playlist.parent / first_new.uri).stat().st_size > 1000
        print(
            f"\nstandby: first new segment {resumed_at - killed:.1f} s after SIGKILL, "
            f"{missing_s:.2f} s of audio missing, media sequence {first_new.seq - 1} -> {first_new.seq}"
        )
    finally:
        for proc in (a, b):
            if proc is not None and proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
