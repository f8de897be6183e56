"""Load-test the API: two uvicorn workers on loopback against a bare
Starlette app returning a constant (the baseline), measured in the same run.

    .venv/bin/python bench/api.py [--duration 5] [--connections 32]
                                  [--redis redis://127.0.0.1:6379/13] [--database URL]

Endpoints: GET /health, GET /api/v1/stream/status, GET /api/v1/top-tracks and
an authenticated POST /api/v1/vote (a different track on each request). The
load generator is wrk when it is on PATH (apt-get install wrk), else a
Python one (httpx, asyncio), which saturates before the server does and so
understates throughput. Targets: reads at least half the baseline's
requests/s with p99 under 20 ms; votes at least 1,000/s.

Everything runs in a temporary directory: a lakehouse with real rows of the
table contracts, a migrated app database with votes, the API's own access
log in a file. Rate limits stay on (counted per request) but are set high
enough not to refuse the load.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

ROOT = Path(__file__).resolve().parents[1]
GENRES = ["house", "techno", "trance", "drum_and_bass", "lofi_hip_hop", "ambient"]
PASSWORD = "Tempo-Rubato-42"


async def _constant(_request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


baseline_app = Starlette(routes=[Route("/", _constant)])

WRK_REPORT = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '\\nJSON {"requests":%d,"duration_us":%d,"p50_us":%d,"p99_us":%d,"errors":%d,"non2xx":%d}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write + e.timeout, e.status))
end
"""

WRK_VOTE = """
local i = 0
local tracks = {%s}
request = function()
  i = i + 1
  local body = string.format('{"track_id":"%%s","stars":%%d}', tracks[(i %% #tracks) + 1], (i %% 5) + 1)
  return wrk.format("POST", "/api/v1/vote", {["Content-Type"] = "application/json",
                    ["Authorization"] = "Bearer %s"}, body)
end
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def seed(root: Path, database: str, tracks: int, users: int) -> list[str]:
    """Tracks in the lakehouse, users and their votes in the app database."""
    import random
    from datetime import UTC, datetime, timedelta

    from serving.db.models import User, Vote
    from serving.db.session import Database
    from serving.security.passwords import hash_password
    from sonicforge.lakehouse import Lakehouse

    lake = Lakehouse(str(root / "lake"))
    lake.ensure_all()
    now = datetime.now(UTC)
    rows = [
        {
            "track_id": f"trk_bench{i:06d}", "batch_id": "b-bench", "genre": GENRES[i % 6],
            "prompt": "bench", "prompt_version": "v1", "bpm": 120.0, "musical_key": "A minor",
            "duration_s": 180.0, "requested_duration_s": 180.0, "sample_rate": 44100,
            "channels": 2, "backend": "procedural", "model_name": "procedural",
            "model_version": "1", "seed": i, "raw_uri": f"raw/{i}.flac", "sha256": "0" * 64,
            "generation_s": 1.0, "created_at": now - timedelta(minutes=i), "request_id": None,
            "dagster_run_id": None, "mlflow_run_id": None,
        }
        for i in range(tracks)
    ]  # fmt: skip
    lake.insert_new("tracks", rows)
    ids = [r["track_id"] for r in rows]
    db = Database(database)
    db.migrate()
    hashed = hash_password("not-used-" + PASSWORD, rounds=12)
    rng = random.Random(7)
    with db.session() as s:
        people = [
            User(email=f"fan{u}@example.com", display_name="fan", password_hash=hashed)
            for u in range(users)
        ]
        s.add_all(people)
        s.flush()
        for person in people:
            for tid in rng.sample(ids, min(40, len(ids))):
                s.add(Vote(user_id=person.id, track_id=tid, genre=GENRES[int(tid[-6:]) % 6],
                           stars=rng.randint(1, 5), created_at=now, updated_at=now))  # fmt: skip
        s.commit()
    db.dispose()
    return ids


def pg_schema_url(url: str, schema: str) -> str:
    """A fresh schema of its own, so the run leaves the database as it was."""
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    engine.dispose()
    return f"{url}{'&' if '?' in url else '?'}options=-csearch_path%3D{schema}"


def drop_pg_schema(url: str, schema: str) -> None:
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    engine.dispose()


def start(argv: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with open(log, "wb") as out:
        return subprocess.Popen(argv, env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)


def wait_ready(url: str, timeout_s: float = 90.0) -> None:
    import httpx

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise SystemExit(f"no answer from {url} within {timeout_s:g} s")


def run_wrk(url: str, seconds: float, connections: int, script: str) -> dict[str, float]:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(script + WRK_REPORT)
    try:
        out = subprocess.run(
            ["wrk", "-t1", f"-c{connections}", f"-d{seconds:g}s", "--timeout", "5s", "-s", f.name, url],
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
    finally:
        os.unlink(f.name)
    data = json.loads(out.split("JSON ", 1)[1])
    return {
        "rps": data["requests"] / (data["duration_us"] / 1e6),
        "p50_ms": data["p50_us"] / 1000,
        "p99_ms": data["p99_us"] / 1000,
        "errors": data["errors"] + data["non2xx"],
    }


async def _python_load(
    url: str,
    seconds: float,
    connections: int,
    method: str,
    bodies: list[str],
    headers: dict[str, str],
) -> dict[str, float]:
    import httpx

    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    async with httpx.AsyncClient(limits=limits, timeout=5.0) as client:

        async def worker(k: int) -> None:
            nonlocal errors
            i = k
            while time.perf_counter() < deadline:
                body = bodies[i % len(bodies)] if bodies else None
                t0 = time.perf_counter()
                r = await client.request(method, url, content=body, headers=headers)
                latencies.append(time.perf_counter() - t0)
                errors += r.status_code >= 300
                i += connections

        start_t = time.perf_counter()
        await asyncio.gather(*(worker(k) for k in range(connections)))
        elapsed = time.perf_counter() - start_t
    latencies.sort()
    n = len(latencies)
    return {
        "rps": n / elapsed,
        "p50_ms": latencies[n // 2] * 1000 if n else float("nan"),
        "p99_ms": latencies[min(n - 1, int(n * 0.99))] * 1000 if n else float("nan"),
        "errors": errors,
    }


def measure(
    url: str, seconds: float, connections: int, *, vote: tuple[list[str], str] | None = None
) -> dict[str, float]:
    if shutil.which("wrk"):
        script = ""
        if vote is not None:
            ids, token = vote
            script = WRK_VOTE % (",".join(f'"{t}"' for t in ids), token)
        return run_wrk(url, seconds, connections, script)
    method, bodies, headers = "GET", [], {}
    if vote is not None:
        ids, token = vote
        method = "POST"
        bodies = [json.dumps({"track_id": t, "stars": i % 5 + 1}) for i, t in enumerate(ids)]
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    return asyncio.run(_python_load(url, seconds, connections, method, bodies, headers))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--duration", type=float, default=4.0, help="seconds per run (max 30)")
    p.add_argument("--connections", type=int, default=32, help="concurrent connections (max 256)")
    p.add_argument("--redis", default=None, help="Redis URL for rate limits and station state")
    p.add_argument("--database", default=None, help="app database URL (default: SQLite in tmp)")
    p.add_argument("--tracks", type=int, default=300)
    p.add_argument("--rounds", type=int, default=3, help="measured rounds (max 5)")
    p.add_argument("--per-round", action="store_true", help="print every round as it ends")
    p.add_argument("--no-access-log", action="store_true", help="turn the API's access log off")
    args = p.parse_args()
    seconds, connections = min(args.duration, 30.0), min(args.connections, 256)
    args.rounds = max(1, min(args.rounds, 5))
    pairs: dict[str, list[tuple[dict[str, float], dict[str, float]]]] = {}

    tmp = Path(tempfile.mkdtemp(prefix="sonicforge-bench-api-"))
    schema = f"sonicforge_bench_{os.getpid()}"
    procs: list[subprocess.Popen[bytes]] = []
    try:
        database = args.database or f"sqlite:///{tmp / 'app.db'}"
        if database.startswith("postgresql"):
            database = pg_schema_url(database, schema)
        ids = seed(tmp, database, args.tracks, users=50)
        api_port, base_port = free_port(), free_port()
        env = {
            **os.environ,
            "SONICFORGE_ENVIRONMENT": "development",
            "SONICFORGE_VAR_DIR": str(tmp / "var"),
            "SONICFORGE_LAKEHOUSE_URI": str(tmp / "lake"),
            "SONICFORGE_APP_DATABASE_URL": database,
            "SONICFORGE_RATE_LIMIT_IP": "100000000/minute",
            "SONICFORGE_RATE_LIMIT_PRINCIPAL": "100000000/minute",
            "SONICFORGE_RATE_LIMIT_KEY_PREFIX": f"sonicforge-bench:{os.getpid()}",
            "SONICFORGE_ACCESS_LOG": "false" if args.no_access_log else "true",
            "DAGSTER_HOME": str(tmp / "dagster"),
        }
        if args.redis:
            env["SONICFORGE_REDIS_URL"] = args.redis
        else:
            env.pop("SONICFORGE_REDIS_URL", None)
        py = sys.executable
        procs.append(start([py, "-m", "cli.main", "serve", "--port", str(api_port), "--workers", "2",
                            "--no-migrate"], env, tmp / "api.log"))  # fmt: skip
        procs.append(start([py, "-m", "uvicorn", "--app-dir", str(ROOT / "bench"), "api:baseline_app",
                            "--port", str(base_port), "--workers", "2", "--no-access-log",
                            "--no-server-header", "--log-level", "warning"], env, tmp / "baseline.log"))  # fmt: skip
        api, base = f"http://127.0.0.1:{api_port}", f"http://127.0.0.1:{base_port}"
        wait_ready(f"{api}/live")
        wait_ready(f"{base}/")
        import httpx

        account = {"email": "bench@example.com", "password": PASSWORD}
        r = httpx.post(f"{api}/api/v1/auth/register", json=account | {"display_name": "bench"})
        r = httpx.post(f"{api}/api/v1/auth/login", json=account) if r.status_code == 201 else r
        if r.status_code != 200:
            raise SystemExit(f"could not log in the bench user: {r.status_code} {r.text}")
        token = r.json()["access_token"]
        # Access tokens live 15 minutes: one login covers the whole run.
        targets: list[tuple[str, str, tuple[list[str], str] | None]] = [
            ("GET /health", f"{api}/health", None),
            ("GET /api/v1/stream/status", f"{api}/api/v1/stream/status", None),
            ("GET /api/v1/top-tracks", f"{api}/api/v1/top-tracks", None),
            ("POST /api/v1/vote (JWT)", f"{api}/api/v1/vote", (ids, token)),
        ]
        # Warm-up (imports, first lakehouse reads, caches), discarded.
        measure(f"{base}/", 2.0, connections)
        for _, url, vote in targets:
            measure(url, 2.0, connections, vote=vote)
        # Each endpoint right after its own baseline run, so that a neighbour
        # loading the machine weighs on both sides of each ratio alike.
        for _ in range(args.rounds):
            for name, url, vote in targets:
                pair = (measure(f"{base}/", seconds, connections),
                        measure(url, seconds, connections, vote=vote))  # fmt: skip
                pairs.setdefault(name, []).append(pair)
                if args.per_round:
                    b, r = pair
                    print(f"  {name:<26} {r['rps']:>8.0f} req/s  p99 {r['p99_ms']:>7.2f} ms  "
                          f"base {b['rps']:>8.0f} req/s  x{r['rps'] / b['rps']:.2f}", flush=True)  # fmt: skip
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
        shutil.rmtree(tmp, ignore_errors=True)
        if args.database and args.database.startswith("postgresql"):
            drop_pg_schema(args.database, schema)

    generator = "wrk" if shutil.which("wrk") else "python/httpx (generator-bound)"
    print(f"\nAPI benchmark: 2 uvicorn workers on loopback, {connections} connections, "
          f"{seconds:g} s per run, {args.rounds} round(s), load from {generator}, "
          f"store {'redis' if args.redis else 'in-process'}, database "
          f"{(args.database or 'sqlite').split(':')[0]}, {os.cpu_count()} CPUs shared with the "
          f"load generator; medians over rounds, each ratio against the baseline run just before\n")  # fmt: skip
    print(f"{'endpoint':<26} {'req/s':>8} {'p50 ms':>7} {'p99 ms':>7} {'base req/s':>10} "
          f"{'x base':>6} {'errors':>6}  target")  # fmt: skip
    for name, runs in pairs.items():
        rps = statistics.median(r["rps"] for _, r in runs)
        p50 = statistics.median(r["p50_ms"] for _, r in runs)
        p99 = statistics.median(r["p99_ms"] for _, r in runs)
        base_rps = statistics.median(b["rps"] for b, _ in runs)
        ratio = statistics.median(r["rps"] / b["rps"] for b, r in runs)
        errors = sum(int(r["errors"]) for _, r in runs)
        if name.startswith("POST"):
            target = "ok" if rps >= 1000 else "MISSED (>= 1000/s)"
        else:
            ok = ratio >= 0.5 and p99 < 20
            target = "ok" if ok else "MISSED (>= 0.5x base, p99 < 20 ms)"
        print(f"{name:<26} {rps:>8.0f} {p50:>7.2f} {p99:>7.2f} {base_rps:>10.0f} "
              f"{ratio:>6.2f} {errors:>6}  {target}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    raise SystemExit(main())
