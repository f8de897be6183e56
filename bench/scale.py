"""Scale-out figures, each against a baseline measured in the same run:

1. API read throughput with 1 and 2 worker processes (``sonicforge serve
   --workers N``) on the production stores: the app database on PostgreSQL
   (a schema of its own), rate limits and station state on Redis. Reads:
   GET /api/v1/stream/status and GET /api/v1/top-tracks from 4,000 client
   addresses (wrk when installed, else a Python load generator). The ratio
   2 workers / 1 worker is the figure; on a 2-core machine the load
   generator shares the cores, so 2x is out of reach.
2. Streamer failover: two ``sonicforge stream`` processes on one Redis lease
   (a private redis-server on loopback), the active one killed with
   SIGKILL, ``--failovers`` times: seconds until the standby's first segment
   is in the HLS playlist, and the seconds of audio missing from it.
3. A 16-track batch (``sonicforge generate``, procedural backend) with 1 and
   2 generation worker processes (SONICFORGE_GENERATION_WORKERS): the ratio.

    .venv/bin/python bench/scale.py [--duration 4] [--rounds 2] [--failovers 3]
                                    [--batch 16] [--track-seconds 20]
                                    [--database URL] [--redis URL] [--only api,failover,batch]

Defaults take about 3 minutes here. Wrap in ``flock /tmp/sonicforge-bench.lock``
on a shared machine.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import api as bench_api  # noqa: E402 - bench/api.py: seeding, wrk, readiness

READS = ("/api/v1/stream/status", "/api/v1/top-tracks")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _spawn(argv: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with open(log, "ab") as out:
        return subprocess.Popen(
            argv, env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )


def _base_env(root: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SONICFORGE_")}
    env.update(
        SONICFORGE_VAR_DIR=str(root / "var"),
        SONICFORGE_LAKEHOUSE_URI=str(root / "lake"),
        SONICFORGE_JWT_SECRET=secrets.token_hex(32),
        SONICFORGE_ACCESS_LOG="false",
        SONICFORGE_LOG_LEVEL="WARNING",
        DAGSTER_HOME=str(root / "dagster"),
    )
    (root / "dagster").mkdir(exist_ok=True)
    return env


# -- 1. API reads, 1 vs 2 workers -----------------------------------------


def api_figures(
    root: Path, database: str, redis_url: str, *, seconds: float, rounds: int, connections: int
) -> dict[int, dict[str, dict[str, float]]]:
    schema = f"sf_bench_scale_{secrets.token_hex(3)}"
    db_url = bench_api.pg_schema_url(database, schema)
    try:
        bench_api.seed(root, db_url, tracks=300, users=20)
        # Both servers up at once, measured in turns (1, 2, 1, 2, ...): an idle
        # server costs nothing, and load from elsewhere on a shared machine
        # falls on both alike.
        procs: dict[int, subprocess.Popen[bytes]] = {}
        urls: dict[int, str] = {}
        try:
            for workers in (1, 2):
                port = _free_port()
                env = _base_env(root)
                env.update(
                    SONICFORGE_APP_DATABASE_URL=db_url,
                    SONICFORGE_REDIS_URL=redis_url,
                    SONICFORGE_RATE_LIMIT_KEY_PREFIX=f"sf-bench-scale-{secrets.token_hex(3)}",
                )
                procs[workers] = _spawn(
                    [sys.executable, "-m", "cli.main", "serve", "--port", str(port),
                     "--workers", str(workers), "--no-migrate"],
                    env, root / f"api-{workers}.log",
                )  # fmt: skip
                urls[workers] = f"http://127.0.0.1:{port}"
            for url in urls.values():
                bench_api.wait_ready(f"{url}/ready")
            runs: dict[tuple[int, str], list[dict[str, float]]] = {}
            for path in READS:
                for url in urls.values():
                    bench_api.measure(url + path, 1.0, connections, 4000)  # warm-up
                for _ in range(rounds):
                    for workers, url in urls.items():
                        runs.setdefault((workers, path), []).append(
                            bench_api.measure(url + path, seconds, connections, 4000)
                        )
        finally:
            for proc in procs.values():
                _stop(proc)
        out: dict[int, dict[str, dict[str, float]]] = {1: {}, 2: {}}
        for (workers, path), rs in runs.items():
            out[workers][path] = {
                "rps": statistics.median(r["rps"] for r in rs),
                "p99_ms": statistics.median(r["p99_ms"] for r in rs),
                "errors": sum(r["errors"] for r in rs),
            }
        return out
    finally:
        bench_api.drop_pg_schema(database, schema)


# -- 2. streamer failover -------------------------------------------------


def _redis_server(root: Path) -> tuple[subprocess.Popen[bytes], int]:
    if shutil.which("redis-server") is None:
        raise SystemExit("redis-server is not installed (apt-get install redis-server)")
    port = _free_port()
    proc = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--dir", str(root)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    import redis

    deadline = time.monotonic() + 10
    while True:
        try:
            redis.Redis(port=port).ping()
            return proc, port
        except redis.ConnectionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def failover_figures(root: Path, *, failovers: int) -> list[dict[str, float]]:
    import redis

    from streaming.outputs.hls_playlist import read_media

    if not (root / "lake").exists():
        bench_api.seed(root, f"sqlite:///{root / 'seed.db'}", tracks=8, users=1)
    server, port = _redis_server(root)
    env = _base_env(root)
    key = "sonicforge:bench:stream:lease"
    env.update(
        SONICFORGE_REDIS_URL=f"redis://127.0.0.1:{port}/0",
        SONICFORGE_STREAM_DIR=str(root / "stream"),
        SONICFORGE_STREAM_STANDBY="true",
        SONICFORGE_STREAM_LEASE_KEY=key,
        SONICFORGE_STREAM_NO_REPEAT_COUNT="0",
        SONICFORGE_STREAM_NO_REPEAT_S="0",
    )
    client = redis.Redis(port=port)
    playlist = root / "stream" / "hls" / "aac_64k" / "index.m3u8"
    argv = [sys.executable, "-m", "cli.main", "stream"]
    procs: dict[int, subprocess.Popen[bytes]] = {}

    def spawn() -> None:
        p = _spawn(argv, env, root / "stream.log")
        procs[p.pid] = p

    def holder() -> int | None:
        raw = client.get(key)
        text = raw.decode() if isinstance(raw, bytes) else raw
        return int(text.rsplit(":", 1)[1]) if text else None

    def wait(pred: Any, timeout: float, what: str) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = pred()
            if value:
                return value
            time.sleep(0.02)
        raise SystemExit(f"FAIL: {what} not within {timeout:g} s; see {root / 'stream.log'}")

    out = []
    try:
        spawn()
        wait(lambda: holder() in procs, 60, "a streamer on air")
        wait(
            lambda: (s := read_media(playlist)) is not None and len(s.entries) >= 3,
            60,
            "3 segments",
        )
        for _ in range(failovers):
            spawn()
            time.sleep(4.0)  # the new standby is up and polling
            active = holder()
            assert active is not None
            before = read_media(playlist)
            assert before is not None
            last = before.entries[-1]
            os.killpg(active, signal.SIGKILL)
            procs.pop(active).wait()
            killed = time.monotonic()

            def resumed(last: Any = last) -> Any:
                s = read_media(playlist)
                if s is None:
                    return None
                new = [e for e in s.entries if e.seq > last.seq and e.discontinuity]
                return new[0] if new else None

            first = wait(resumed, 30, "the standby's first segment")
            took = time.monotonic() - killed
            s = read_media(playlist)
            assert s is not None
            by_seq = {e.seq: e for e in (*before.entries, *s.entries)}
            prev = by_seq.get(first.seq - 1, last)
            end = prev.program_date_time + timedelta(seconds=prev.duration_s)
            out.append(
                {
                    "failover_s": took,
                    "missing_audio_s": (first.program_date_time - end).total_seconds(),
                    "sequence_gap": first.seq - prev.seq - 1,
                }
            )
            time.sleep(1.0)
    finally:
        for p in procs.values():
            _stop(p)
        server.terminate()
        server.wait()
    return out


# -- 3. a 16-track batch, 1 vs 2 generation workers -------------------------


def batch_figures(root: Path, *, batch: int, seconds: float, rounds: int) -> dict[int, float]:
    """Median wall time per worker count; rounds alternate the order (1, 2), (2, 1)."""
    times: dict[int, list[float]] = {1: [], 2: []}
    for r in range(rounds):
        for workers in (1, 2) if r % 2 == 0 else (2, 1):
            run_root = root / f"batch-{r}-{workers}"
            run_root.mkdir()
            env = _base_env(run_root)
            env.update(
                SONICFORGE_GENERATION_WORKERS=str(workers),
                SONICFORGE_GENERATOR_SOURCE="settings",
            )
            argv = [sys.executable, "-m", "cli.main", "generate", "--count", str(batch),
                    "--duration", str(seconds), "--genre", "house", "--genre", "techno",
                    "--seed", "7"]  # fmt: skip
            t0 = time.perf_counter()
            done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True)
            times[workers].append(time.perf_counter() - t0)
            if done.returncode not in (0, 1):  # 1: a gate failed a track; the run still counts
                raise SystemExit(f"FAIL: generate exited {done.returncode}: {done.stderr[-2000:]}")
    return {w: statistics.median(t) for w, t in times.items()}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--duration", type=float, default=4.0, help="seconds per API round (max 30)")
    p.add_argument("--rounds", type=int, default=2, help="API rounds per endpoint (max 5)")
    p.add_argument("--connections", type=int, default=32)
    p.add_argument(
        "--failovers", type=int, default=3, help="SIGKILLs of the active streamer (max 10)"
    )
    p.add_argument("--batch", type=int, default=16, help="tracks in the batch (max 64)")
    p.add_argument("--track-seconds", type=float, default=20.0, help="seconds per track (10-600)")
    p.add_argument(
        "--batch-rounds", type=int, default=1, help="batch runs per worker count (max 5)"
    )
    p.add_argument(
        "--database",
        default=os.environ.get(
            "SONICFORGE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
        ),
        help="PostgreSQL URL (a schema of its own is made and dropped)",
    )
    p.add_argument(
        "--redis", default=os.environ.get("SONICFORGE_TEST_REDIS_URL", "redis://127.0.0.1:6379/14")
    )
    p.add_argument("--only", default="api,failover,batch")
    a = p.parse_args()
    if not (0 < a.duration <= 30 and 1 <= a.rounds <= 5 and 1 <= a.failovers <= 10):
        p.error("--duration 0-30, --rounds 1-5, --failovers 1-10")
    if not (1 <= a.batch <= 64 and 10 <= a.track_seconds <= 600 and 1 <= a.batch_rounds <= 5):
        p.error("--batch 1-64, --track-seconds 10-600, --batch-rounds 1-5")
    parts = set(a.only.split(","))
    unknown = parts - {"api", "failover", "batch"}
    if unknown:
        p.error(f"--only takes api, failover, batch; not {sorted(unknown)}")

    root = Path(tempfile.mkdtemp(prefix="sonicforge-bench-scale-"))
    ok = True
    try:
        if "api" in parts:
            api = api_figures(
                root,
                a.database,
                a.redis,
                seconds=a.duration,
                rounds=a.rounds,
                connections=a.connections,
            )
            print(
                f"\nAPI reads on PostgreSQL + Redis ({a.connections} connections, median of {a.rounds} alternating rounds)"
            )
            print(
                f"{'endpoint':<26}{'1 worker rps':>14}{'2 workers rps':>15}{'ratio':>8}{'p99 ms (1/2)':>16}"
            )
            for path in READS:
                one, two = api[1][path], api[2][path]
                ok &= one["errors"] == 0 and two["errors"] == 0
                print(
                    f"{path:<26}{one['rps']:>14,.0f}{two['rps']:>15,.0f}{two['rps'] / one['rps']:>7.2f}x"
                    f"{one['p99_ms']:>9.1f}/{two['p99_ms']:.1f}"
                )
        if "failover" in parts:
            fo = failover_figures(root, failovers=a.failovers)
            print(
                f"\nStreamer failover (SIGKILL of the active one, lease TTL 3 s, {len(fo)} times)"
            )
            print(
                f"{'#':<4}{'first new segment after':>26}{'missing audio':>16}{'sequence gap':>14}"
            )
            for i, f in enumerate(fo, 1):
                print(
                    f"{i:<4}{f['failover_s']:>24.1f} s{f['missing_audio_s']:>14.2f} s{f['sequence_gap']:>14}"
                )
                ok &= f["missing_audio_s"] <= 5.0 and f["sequence_gap"] == 0
            print(
                f"median: {statistics.median(f['failover_s'] for f in fo):.1f} s to the first new "
                f"segment, {max(f['missing_audio_s'] for f in fo):.2f} s of audio missing at most"
            )
        if "batch" in parts:
            b = batch_figures(root, batch=a.batch, seconds=a.track_seconds, rounds=a.batch_rounds)
            print(
                f"\n{a.batch}-track batch, {a.track_seconds:g} s tracks (procedural, sonicforge generate)"
            )
            print(f"{'workers':<10}{'wall s':>10}")
            for w, s in b.items():
                print(f"{w:<10}{s:>10.1f}")
            print(f"speed-up with 2 workers: {b[1] / b[2]:.2f}x (1 worker's time / 2 workers')")
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print("\nOK" if ok else "\nFAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
