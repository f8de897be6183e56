"""The real stack on loopback, for the browser tests and bench/web.py: the
API (``sonicforge serve``) with the streamer inside it, as ``make run``
starts it without Redis, on a lakehouse of synthetic tracks (a pulsing
chord each, FLAC masters) with short HLS segments.
"""

from __future__ import annotations

import io
import os
import secrets
import socket
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("SONICFORGE_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--autoplay-policy=no-user-gesture-required",
    "--bypass-app-banner-engagement-checks",
]
PASSWORD = "Tempo-Rubato-42"
JWT_SECRET = "web-test-secret-" + "w" * 40
TRACK_S = 24.0
SAMPLE_RATE = 48000
# (genre, bpm, key, chord root): a chord each, so every track sounds different.
TRACKS = [
    ("house", 124.0, "A minor", 220.0),
    ("techno", 130.0, "C major", 261.63),
    ("ambient", 80.0, "E minor", 329.63),
    ("lofi", 90.0, "G major", 392.0),
    ("synthwave", 110.0, "D minor", 293.66),
]


STACK_ENV = {
    "SONICFORGE_ENVIRONMENT": "test",
    "SONICFORGE_JWT_SECRET": JWT_SECRET,
    "SONICFORGE_BCRYPT_ROUNDS": "4",
    "SONICFORGE_ACCESS_LOG": "false",
    "SONICFORGE_LOG_LEVEL": "WARNING",
    "SONICFORGE_RATE_LIMIT_IP": "100000/minute",
    "SONICFORGE_RATE_LIMIT_PRINCIPAL": "100000/minute",
    "SONICFORGE_LOGIN_RATE_LIMIT_IP": "1000/minute",
    "SONICFORGE_STREAM_EMBEDDED": "true",
    "SONICFORGE_STREAM_HLS_SEGMENT_S": "1",
    "SONICFORGE_STREAM_HLS_WINDOW": "8",
    "SONICFORGE_STREAM_HLS_BITRATES_KBPS": "64,128",
    "SONICFORGE_STREAM_CROSSFADE_S": "1",
    "SONICFORGE_STREAM_NO_REPEAT_COUNT": "1",
    "SONICFORGE_STREAM_NO_REPEAT_S": "0",
    "SONICFORGE_LAKEHOUSE_CACHE_CHECK_S": "0",
    # No Dagster here: a run the pages launch fails fast (502) instead of
    # generating tracks on the test machine's CPUs.
    "SONICFORGE_DAGSTER_GRAPHQL_URL": "http://127.0.0.1:9/graphql",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def track_id(i: int) -> str:
    return f"trk_web{i:02d}" + "0" * 13


def chord(freq: float, seconds: float) -> np.ndarray:
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    # A pulse at 2 Hz makes the spectrum move frame to frame.
    env = 0.55 + 0.45 * np.abs(np.sin(2 * np.pi * 1.0 * t))
    tone = sum(
        a * np.sin(2 * np.pi * freq * r * t)
        for r, a in ((1, 1.0), (1.25, 0.6), (1.5, 0.4), (2, 0.3))
    )
    mono = (0.18 * env * tone / 2.3).astype(np.float32)
    return np.stack([mono, mono], axis=1)


def seed_lake(lake_uri: str) -> list[str]:
    """Rows in tracks, track_scores, mastered_tracks and rotation, with real FLAC masters."""
    from sonicforge.lakehouse import Lakehouse

    lh = Lakehouse(lake_uri)
    lh.ensure_all()
    now = datetime.now(UTC) - timedelta(hours=1)
    tracks, scores, masters, rotation, ids = [], [], [], [], []
    for i, (genre, bpm, key, freq) in enumerate(TRACKS):
        tid = track_id(i)
        ids.append(tid)
        buf = io.BytesIO()
        sf.write(buf, chord(freq, TRACK_S), SAMPLE_RATE, format="FLAC")
        uri, sha = lh.audio.put(f"masters/b-web/{tid}.flac", buf.getvalue())
        tracks.append({
            "track_id": tid, "batch_id": "b-web", "genre": genre, "prompt": f"{genre} test {i}",
            "prompt_version": "v1", "bpm": bpm, "musical_key": key, "duration_s": TRACK_S,
            "requested_duration_s": TRACK_S, "sample_rate": SAMPLE_RATE, "channels": 2,
            "backend": "procedural", "model_name": "procedural", "model_version": "1",
            "seed": i, "raw_uri": f"raw/b-web/{tid}.flac", "sha256": sha,
            "generation_s": 0.1, "created_at": now, "request_id": None,
            "dagster_run_id": None, "mlflow_run_id": None,
        })  # fmt: skip
        scores.append({
            "track_id": tid, "batch_id": "b-web", "integrated_lufs": -14.0, "true_peak_dbtp": -1.5,
            "loudness_range_lu": 3.0, "clipping_ratio": 0.0, "silence_ratio": 0.0,
            "dc_offset": 0.0, "nonfinite_ratio": 0.0, "tempo_bpm_est": bpm, "tempo_error": 0.0,
            "spectral_centroid_hz": 1200.0, "spectral_flatness": 0.1, "stereo_correlation": 1.0,
            "duration_s": TRACK_S, "quality_score": 85.0, "passed": True, "reasons": [],
            "scorer_version": "test", "scored_at": now,
        })  # fmt: skip
        masters.append({
            "track_id": tid, "batch_id": "b-web", "master_uri": uri, "master_sha256": sha,
            "renditions": [], "duration_s": TRACK_S, "sample_rate": SAMPLE_RATE,
            "lufs_before": -14.0, "lufs_after": -14.0, "true_peak_after": -1.5,
            "chain_version": "test", "mastered_at": now,
        })  # fmt: skip
        rotation.append({
            "track_id": tid, "batch_id": "b-web", "genre": genre, "weight": 1.0,
            "duration_s": TRACK_S, "quality_score": 85.0, "eligible_from": now, "retired_at": None,
        })  # fmt: skip
    lh.insert_new("tracks", tracks)
    lh.insert_new("track_scores", scores)
    lh.insert_new("mastered_tracks", masters)
    lh.insert_new("rotation", rotation)
    return ids


@dataclass
class Account:
    email: str
    access: str
    refresh: str
    role: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access}"}


@dataclass
class Stack:
    url: str
    db_path: Path
    track_ids: list[str]
    proc: subprocess.Popen[bytes]
    log: Path
    accounts: dict[str, Account] = field(default_factory=dict)

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return httpx.get(self.url + path, timeout=10, **kwargs)

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return httpx.post(self.url + path, timeout=10, **kwargs)

    def account(self, role: str) -> Account:
        """A fresh account of ``role`` (registered through the API)."""
        email = f"{role}-{secrets.token_hex(4)}@example.com"
        r = self.post(
            "/api/v1/auth/register",
            json={"email": email, "display_name": role.title(), "password": PASSWORD},
        )
        assert r.status_code == 202, r.text
        if role != "listener":
            with sqlite3.connect(self.db_path) as conn:
                conn.execute("UPDATE users SET role = ? WHERE email = ?", (role, email))
        r = self.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
        assert r.status_code == 200, r.text
        body = r.json()
        return Account(email, body["access_token"], body["refresh_token"], role)

    def status(self) -> dict[str, Any]:
        return dict(self.get("/api/v1/stream/status").json())

    def wait_for(self, what: str, check: Any, timeout_s: float = 30.0) -> Any:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            value = check()
            if value:
                return value
            time.sleep(0.2)
        raise AssertionError(f"timed out waiting for {what}; server log:\n{self.tail()}")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def tail(self, n: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""


def start_stack(work: Path, *, extra_env: dict[str, str] | None = None) -> Stack:
    """Seed a lakehouse under ``work`` and start the API with the streamer
    inside; returns once the HLS master is published and a track is on air."""
    lake = str(work / "lake")
    ids = seed_lake(lake)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    db_path = work / "app.db"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("SONICFORGE_")},
        **STACK_ENV,
        "SONICFORGE_VAR_DIR": str(work / "var"),
        "SONICFORGE_LAKEHOUSE_URI": lake,
        "SONICFORGE_APP_DATABASE_URL": f"sqlite:///{db_path}",
        "SONICFORGE_WEB_BASE_URL": url,
        "DAGSTER_HOME": str(work / "dagster"),
        **(extra_env or {}),
    }
    (work / "dagster").mkdir(exist_ok=True)
    log = work / "api.log"
    with log.open("wb") as out:
        argv = [
            sys.executable,
            "-m",
            "cli.main",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ]
        proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    s = Stack(url, db_path, ids, proc, log)

    def on_air() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"the API exited with {proc.returncode}:\n{s.tail()}")
        try:
            ok = s.get("/hls/master.m3u8").status_code == 200
            return ok and s.status().get("now_playing") is not None
        except httpx.HTTPError:
            return False

    try:
        s.wait_for("the station on air (HLS master and now playing)", on_air, timeout_s=90)
    except BaseException:
        s.stop()
        raise
    return s
