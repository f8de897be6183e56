"""Reliability with real processes: API workers killed with SIGKILL in the
middle of a load lose no acknowledged event and duplicate none; and the
Prometheus exposition of one worker counts the requests of all of them."""

from __future__ import annotations

import os
import re
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from analytics.drain import OutboxDrain
from serving.db.session import Database
from sonicforge.lakehouse import Lakehouse
from tests.serving.conftest import JWT_SECRET, _free_port

REPO = Path(__file__).resolve().parents[2]


class Api:
    """API worker processes on one SQLite app database, restartable."""

    def __init__(self, tmp: Path) -> None:
        self.db_url = f"sqlite:///{tmp / 'app.db'}"
        Database(self.db_url).migrate()
        self.lake = tmp / "lake"
        self.env = {
            **os.environ,
            "SONICFORGE_ENVIRONMENT": "test", "SONICFORGE_JWT_SECRET": JWT_SECRET,
            "SONICFORGE_BCRYPT_ROUNDS": "4", "SONICFORGE_VAR_DIR": str(tmp / "var"),
            "SONICFORGE_APP_DATABASE_URL": self.db_url,
            "SONICFORGE_LAKEHOUSE_URI": str(self.lake),
            "SONICFORGE_RATE_LIMIT_IP": "1000000/minute", "SONICFORGE_ACCESS_LOG": "false",
            "SONICFORGE_LOG_LEVEL": "WARNING",
            "SONICFORGE_METRICS_MULTIPROC_DIR": str(tmp / "prometheus"),
        }  # fmt: skip
        self.procs: dict[int, subprocess.Popen[bytes]] = {}

    def start(self, port: int) -> str:
        argv = [sys.executable, "-m", "uvicorn", "--factory", "serving.app:create_app",
                "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]  # fmt: skip
        self.procs[port] = subprocess.Popen(argv, env=self.env, cwd=REPO)
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/live", timeout=1).status_code == 200:
                    return url
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "the API did not start"
            time.sleep(0.1)

    def kill(self, port: int) -> None:
        proc = self.procs.pop(port)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)

    def stop(self) -> None:
        for proc in self.procs.values():
            proc.terminate()
        for proc in self.procs.values():
            proc.wait(timeout=15)
        self.procs.clear()


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    a = Api(tmp_path)
    try:
        yield a
    finally:
        a.stop()


class Load:
    """Clients posting batches of events with their own ids, noting which
    were acknowledged (202) and which were sent without an answer."""

    def __init__(self, urls: list[str], *, clients: int = 4, batch: int = 20) -> None:
        self.urls, self.clients, self.batch = urls, clients, batch
        self.acked: list[str] = []
        self.unanswered: list[str] = []
        self.stopping = threading.Event()
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._run, args=(i,)) for i in range(clients)]

    def _run(self, k: int) -> None:
        with httpx.Client(timeout=5) as http:
            n = 0
            while not self.stopping.is_set():
                ids = [f"c{k}-{n}-{j}-{secrets.token_hex(2)}" for j in range(self.batch)]
                n += 1
                body = {"batch": [{"event_id": i, "event": "heartbeat", "anonymous_id": f"anon-{k}",
                                   "properties": {"seconds": 5}} for i in ids]}  # fmt: skip
                url = self.urls[n % len(self.urls)]
                try:
                    r = http.post(f"{url}/api/v1/analytics/track", json=body)
                except httpx.HTTPError:
                    with self.lock:
                        self.unanswered += ids
                    time.sleep(0.02)
                    continue
                with self.lock:
                    (self.acked if r.status_code == 202 else self.unanswered).extend(ids)

    def __enter__(self) -> Load:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        for t in self.threads:
            t.join(timeout=30)


@pytest.mark.slow
def test_sigkill_mid_load_loses_no_acknowledged_event(api: Api) -> None:
    ports = [_free_port(), _free_port()]
    urls = [api.start(p) for p in ports]
    with Load(urls) as load:
        time.sleep(1.5)
        for port in ports:  # the whole API, both workers, killed mid-request
            api.kill(port)
        time.sleep(0.3)
        api.start(ports[0])
        time.sleep(1.0)
    acked_before = len(load.acked)
    assert acked_before > 0 and load.unanswered, "the load did not span the kill"
    db = Database(api.db_url)
    report = OutboxDrain(db.engine, Lakehouse(str(api.lake))).run()
    db.dispose()
    in_delta = Counter(
        Lakehouse(str(api.lake)).read("events", columns=["event_id"])["event_id"].to_pylist()
    )
    assert set(in_delta.values()) == {1}, "an event is in Delta twice"
    missing = set(load.acked) - set(in_delta)
    assert missing == set(), f"{len(missing)} acknowledged events lost"
    found_unacked = len(set(load.unanswered) & set(in_delta))
    print(
        f"\nacknowledged {len(load.acked)}, unanswered {len(load.unanswered)} "
        f"(of which {found_unacked} were committed before the kill and are in Delta); "
        f"drained {report.rows}"
    )
    assert report.rows == len(in_delta) == len(load.acked) + found_unacked


@pytest.mark.slow
def test_one_workers_metrics_count_every_workers_requests(api: Api) -> None:
    a, b = api.start(_free_port()), api.start(_free_port())
    with httpx.Client() as http:
        for i in range(7):
            assert http.post(f"{a}/api/v1/analytics/track",
                             json={"event": "x", "anonymous_id": f"a{i}"}).status_code == 202  # fmt: skip
        for i in range(5):
            assert http.post(f"{b}/api/v1/analytics/track",
                             json={"event": "x", "anonymous_id": f"b{i}"}).status_code == 202  # fmt: skip
        body = http.get(f"{a}/metrics").text
    line = re.search(
        r'^sonicforge_http_requests_total\{method="POST",route="/api/v1/analytics/track",'
        r'status="202"\} (\S+)$', body, re.M,
    )  # fmt: skip
    assert line is not None and float(line.group(1)) == 12.0
    accepted = re.search(r"^sonicforge_events_accepted_total (\S+)$", body, re.M)
    assert accepted is not None and float(accepted.group(1)) == 12.0
