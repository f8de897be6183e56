"""Real Redis servers for the scale tests: Debian's ``redis-server`` and
``redis-sentinel`` on loopback ports, started and killed by the tests.

Ports come from 16400-16499 (servers) and 26400-26499 (sentinels); each is
probed free before use. Nothing is kept on disk beyond the test's folder.
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis

SERVICE = "sonicforge"


def need_binaries(*names: str) -> None:
    missing = [n for n in names if shutil.which(n) is None]
    if missing:
        pytest.skip(
            f"{', '.join(missing)} not installed; .ci/run installs Debian's redis-server "
            "and redis-sentinel packages"
        )


def free_port(low: int, high: int, taken: set[int]) -> int:
    for port in range(low, high + 1):
        if port in taken:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        taken.add(port)
        return port
    raise RuntimeError(f"no free port in {low}-{high}")


def wait_until(predicate, timeout_s: float, what: str, step_s: float = 0.05):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    last: BaseException | None = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except Exception as exc:
            last = exc
        time.sleep(step_s)
    raise AssertionError(f"{what} not within {timeout_s:g} s (last error: {last!r})")


@dataclass
class RedisSet:
    """A master, optional replicas and sentinels, all started here."""

    root: Path
    ports: set[int] = field(default_factory=set)
    procs: dict[int, subprocess.Popen[bytes]] = field(default_factory=dict)

    def _start(self, port: int, argv: list[str]) -> None:
        log = open(self.root / f"{port}.log", "wb")  # noqa: SIM115 - closed with the process
        self.procs[port] = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)

    def server(self, *, replica_of: int | None = None) -> int:
        port = free_port(16400, 16499, self.ports)
        folder = self.root / f"server-{port}"
        folder.mkdir()
        argv = ["redis-server", "--port", str(port), "--bind", "127.0.0.1"]
        argv += ["--save", "", "--appendonly", "no", "--dir", str(folder)]
        if replica_of is not None:
            argv += ["--replicaof", "127.0.0.1", str(replica_of)]
        self._start(port, argv)
        wait_until(lambda: self.client(port).ping(), 10, f"redis-server on {port}")
        return port

    def sentinel(self, master: int, *, quorum: int = 2, down_after_ms: int = 1000) -> int:
        port = free_port(26400, 26499, self.ports)
        conf = self.root / f"sentinel-{port}.conf"
        conf.write_text(
            f"port {port}\nbind 127.0.0.1\ndir {self.root}\n"
            f"sentinel monitor {SERVICE} 127.0.0.1 {master} {quorum}\n"
            f"sentinel down-after-milliseconds {SERVICE} {down_after_ms}\n"
            f"sentinel failover-timeout {SERVICE} 3000\n"
            f"sentinel parallel-syncs {SERVICE} 1\n"
        )
        self._start(port, ["redis-sentinel", str(conf)])
        wait_until(lambda: self.client(port).ping(), 10, f"redis-sentinel on {port}")
        return port

    def client(self, port: int) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=port, socket_timeout=1)

    def kill(self, port: int) -> None:
        self.procs[port].send_signal(signal.SIGKILL)
        self.procs[port].wait(timeout=10)

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs.values():
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
