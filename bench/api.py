"""Load-test the API as production is loaded: many clients, each under the
default rate limits, against a station with a streamer on air; a bare
Starlette app returning a constant (the baseline) is measured in the same
run, with the same number of workers.

    .venv/bin/python bench/api.py [--duration 4] [--connections 32] [--clients 4000]
                                  [--users 600] [--redis redis://127.0.0.1:6379/13]
                                  [--database URL]

Endpoints: GET /health, GET /api/v1/stream/status and GET /api/v1/top-tracks
(answered by the hot path, ``serving.hot``, after the request-id and
rate-limit middleware) and an authenticated POST /api/v1/vote (the hot
path too for a JWT vote: the cached principal, checked against its session,
and the vote writer; a different track each time).

Every request comes from one of ``--clients`` addresses (X-Forwarded-For
from loopback, which ``sonicforge serve`` trusts), and every vote from one
of ``--users`` logged-in accounts, so each address and account stays under
the default limits (600 a minute per address, 300 per account) and is
counted in the rate-limit store as production would count it; the bench
prints the highest per-client rate it produced. With ``--redis`` the API
runs two workers sharing Redis and the streamer runs as its own process
(``sonicforge stream``); without, one worker with the streamer embedded
(the no-Redis default: station state is shared only inside one process).
The streamer airs a small rotation of real FLAC masters, so
/stream/status reports a track on air, its position and the outputs.

A run with any error (a refused, failed or non-2xx request) is FAIL, and
the bench exits 1. Targets: reads at least half the baseline's requests/s
with p99 under 20 ms; votes at least 1,000/s. The load generator is wrk
(apt-get install wrk) when on PATH, else a Python one (httpx, asyncio),
which saturates before the server does and so understates throughput.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

ROOT = Path(__file__).resolve().parents[1]
GENRES = ["house", "techno", "trance", "drum_and_bass", "lofi_hip_hop", "ambient"]
PASSWORD = "Tempo-Rubato-42"
# The defaults every client stays under (sonicforge.settings).
DEFAULT_IP_LIMIT_PER_MIN = 600
DEFAULT_PRINCIPAL_LIMIT_PER_MIN = 300
ON_AIR_TRACKS = 4
MASTER_SECONDS = 40.0


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

# Each request from the next of CLIENTS addresses (10.x.y.z), as a proxy
# in front of the API would forward them.
WRK_CLIENTS = """
local i = 0
local clients = %d
local function address()
  i = i + 1
  local c = i %% clients
  return string.format("10.%%d.%%d.%%d", math.floor(c / 65536) %% 256, math.floor(c / 256) %% 256, c %% 256)
end
"""

WRK_GET = """
request = function()
  return wrk.format("GET", nil, {["X-Forwarded-For"] = address()})
end
"""

WRK_VOTE = """
local tracks = {%s}
local tokens = {%s}
request = function()
  local ip = address()
  local body = string.format('{"track_id":"%%s","stars":%%d}', tracks[(i %% #tracks) + 1], (i %% 5) + 1)
  return wrk.format("POST", "/api/v1/vote", {["Content-Type"] = "application/json",
                    ["Authorization"] = "Bearer " .. tokens[(i %% #tokens) + 1],
                    ["X-Forwarded-For"] = ip}, body)
end
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def client_address(i: int) -> str:
    return f"10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}"


def _master_audio(index: int, sample_rate: int = 44100) -> Any:
    """A chord with a beat, about -14 LUFS: what the streamer decodes and airs."""
    import numpy as np

    t = np.arange(int(MASTER_SECONDS * sample_rate)) / sample_rate
    root = 110.0 * 2 ** (index / 12)
    tone = sum(np.sin(2 * np.pi * root * r * t) for r in (1.0, 1.25, 1.5)) / 3
    beat = 0.5 + 0.5 * (np.sin(2 * np.pi * 2.0 * t) > 0)
    mono = (0.25 * tone * beat).astype(np.float32)
    return np.stack([mono, mono])


def seed(
    root: Path, database: str, tracks: int, users: int
) -> tuple[list[str], list[tuple[str, str, str]]]:
    """Tracks in the lakehouse (a few mastered, with real FLAC masters, and
    on the rotation), users with a login session each and their votes in
    the app database. Returns the track ids and ``(user, session, role)``."""
    import random
    from datetime import UTC, datetime, timedelta

    from models.audio_io import encode_flac, encode_mp3, sha256_hex
    from serving.db.models import RefreshFamily, User, Vote
    from serving.db.session import Database
    from serving.security.passwords import hash_password
    from sonicforge.lakehouse import Lakehouse

    lake = Lakehouse(str(root / "lake"))
    lake.ensure_all()
    now = datetime.now(UTC)
    rows: list[dict[str, Any]] = [
        {
            "track_id": f"trk_bench{i:06d}", "batch_id": "b-bench", "genre": GENRES[i % 6],
            "prompt": "bench", "prompt_version": "v1", "bpm": 120.0, "musical_key": "A minor",
            "duration_s": MASTER_SECONDS if i < ON_AIR_TRACKS else 180.0,
            "requested_duration_s": 180.0, "sample_rate": 44100,
            "channels": 2, "backend": "procedural", "model_name": "procedural",
            "model_version": "1", "seed": i, "raw_uri": f"raw/{i}.flac", "sha256": "0" * 64,
            "generation_s": 1.0, "created_at": now - timedelta(minutes=i), "request_id": None,
            "dagster_run_id": None, "mlflow_run_id": None,
        }
        for i in range(tracks)
    ]  # fmt: skip
    lake.insert_new("tracks", rows)
    masters, rotation = [], []
    for i in range(ON_AIR_TRACKS):
        tid, audio = rows[i]["track_id"], _master_audio(i)
        flac = encode_flac(audio, 44100)
        mp3 = encode_mp3(audio, 44100, bitrate_kbps=128)
        master_uri, _ = lake.audio.put(f"masters/b-bench/{tid}.flac", flac)
        mp3_uri, mp3_sha = lake.audio.put(f"masters/b-bench/{tid}.mp3", mp3)
        masters.append({
            "track_id": tid, "batch_id": "b-bench", "master_uri": master_uri,
            "master_sha256": sha256_hex(flac),
            "renditions": [{"codec": "mp3", "bitrate_kbps": 128, "uri": mp3_uri, "sha256": mp3_sha}],
            "duration_s": MASTER_SECONDS, "sample_rate": 44100, "lufs_before": -15.0,
            "lufs_after": -14.0, "true_peak_after": -1.0, "chain_version": "1", "mastered_at": now,
        })  # fmt: skip
        rotation.append({
            "track_id": tid, "batch_id": "b-bench", "genre": rows[i]["genre"], "weight": 1.0,
            "duration_s": MASTER_SECONDS, "quality_score": 90.0, "eligible_from": now - timedelta(hours=1),
            "retired_at": None,
        })  # fmt: skip
    lake.insert_new("mastered_tracks", masters)
    lake.insert_new("rotation", rotation)
    ids = [str(r["track_id"]) for r in rows]
    db = Database(database)
    db.migrate()
    hashed = hash_password("not-used-" + PASSWORD, rounds=12)
    rng = random.Random(7)
    sessions: list[tuple[str, str, str]] = []
    with db.session() as s:
        people = [
            User(email=f"fan{u}@example.com", display_name="fan", password_hash=hashed)
            for u in range(users)
        ]
        s.add_all(people)
        s.flush()
        for u, person in enumerate(people):
            family = RefreshFamily(user_id=person.id, current_jti=secrets.token_hex(16),
                                   ip=client_address(u), user_agent="bench")  # fmt: skip
            s.add(family)
            s.flush()
            sessions.append((person.id, family.id, person.role or "listener"))
            for tid in rng.sample(ids, min(40, len(ids))):
                s.add(Vote(user_id=person.id, track_id=tid, genre=GENRES[int(tid[-6:]) % 6],
                           stars=rng.randint(1, 5), created_at=now, updated_at=now))  # fmt: skip
        s.commit()
    db.dispose()
    return ids, sessions


def access_tokens(secret: str, sessions: list[tuple[str, str, str]]) -> list[str]:
    """Access tokens for the seeded sessions, signed as the API signs them
    (as if each user had logged in: a login is a bcrypt check, and 600 of
    them would take minutes)."""
    from pydantic import SecretStr

    from serving.security.tokens import TokenService
    from sonicforge.settings import Settings

    settings = Settings(jwt_secret=SecretStr(secret))
    tokens = TokenService(
        secret,
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
        access_ttl_s=settings.access_token_ttl_s,
        refresh_ttl_s=settings.refresh_token_ttl_s,
    )
    return [tokens.issue("access", sub=u, sid=sid, role=role).token for u, sid, role in sessions]


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


def wait_on_air(api: str, timeout_s: float = 90.0) -> dict[str, Any]:
    """The station's status once a track of the rotation is on air."""
    import httpx

    deadline = time.monotonic() + timeout_s
    status: dict[str, Any] = {}
    while time.monotonic() < deadline:
        status = httpx.get(f"{api}/api/v1/stream/status", timeout=2.0).json()
        if status.get("state") == "on_air" and status.get("now_playing"):
            return status
        time.sleep(0.5)
    raise SystemExit(f"FAIL: the streamer put nothing on air within {timeout_s:g} s: {status}")


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
    clients: int,
    vote: tuple[list[str], list[str]] | None,
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
                headers = {"X-Forwarded-For": client_address(i % clients)}
                t0 = time.perf_counter()
                if vote is None:
                    r = await client.get(url, headers=headers)
                else:
                    ids, tokens = vote
                    headers["Authorization"] = f"Bearer {tokens[i % len(tokens)]}"
                    body = {"track_id": ids[i % len(ids)], "stars": i % 5 + 1}
                    r = await client.post(url, json=body, headers=headers)
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
    url: str,
    seconds: float,
    connections: int,
    clients: int,
    *,
    vote: tuple[list[str], list[str]] | None = None,
) -> dict[str, float]:
    if shutil.which("wrk"):
        script = WRK_CLIENTS % clients
        if vote is None:
            script += WRK_GET
        else:
            ids, tokens = vote
            script += WRK_VOTE % (
                ",".join(f'"{t}"' for t in ids),
                ",".join(f'"{t}"' for t in tokens),
            )
        return run_wrk(url, seconds, connections, script)
    return asyncio.run(_python_load(url, seconds, connections, clients, vote))


def redis_commands(url: str | None) -> int | None:
    """Commands the Redis server has processed (all its clients)."""
    if not url:
        return None
    import redis

    client = redis.Redis.from_url(url)
    try:
        return int(client.info("stats")["total_commands_processed"])
    finally:
        client.close()


def check_answers(api: str, ids: list[str], token: str) -> None:
    """One request of each kind, read back: the load measures real answers."""
    import httpx

    headers = {"X-Forwarded-For": "10.255.255.1"}
    status = httpx.get(f"{api}/api/v1/stream/status", headers=headers).json()
    assert status["state"] == "on_air" and status["now_playing"]["track_id"] in ids, status
    chart = httpx.get(f"{api}/api/v1/top-tracks", headers=headers).json()
    assert chart["items"], chart
    r = httpx.post(f"{api}/api/v1/vote", json={"track_id": ids[0], "stars": 5},
                   headers=headers | {"Authorization": f"Bearer {token}"})  # fmt: skip
    assert r.status_code == 200, r.text


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--duration", type=float, default=4.0, help="seconds per run (max 30)")
    p.add_argument("--connections", type=int, default=32, help="concurrent connections (max 256)")
    p.add_argument("--clients", type=int, default=4000, help="client addresses the load comes from")
    p.add_argument("--users", type=int, default=600, help="logged-in accounts that vote")
    p.add_argument("--redis", default=None, help="Redis URL for rate limits and station state")
    p.add_argument("--database", default=None, help="app database URL (default: SQLite in tmp)")
    p.add_argument("--tracks", type=int, default=300)
    p.add_argument("--rounds", type=int, default=3, help="measured rounds (max 5)")
    p.add_argument("--per-round", action="store_true", help="print every round as it ends")
    p.add_argument("--no-access-log", action="store_true", help="turn the API's access log off")
    args = p.parse_args()
    seconds, connections = min(args.duration, 30.0), min(args.connections, 256)
    clients, users = max(1, min(args.clients, 2**24)), max(1, args.users)
    args.rounds = max(1, min(args.rounds, 5))
    workers = 2 if args.redis else 1
    pairs: dict[str, list[tuple[dict[str, float], dict[str, float]]]] = {}

    tmp = Path(tempfile.mkdtemp(prefix="sonicforge-bench-api-"))
    schema = f"sonicforge_bench_{os.getpid()}"
    procs: list[subprocess.Popen[bytes]] = []
    secret = secrets.token_hex(32)
    on_air: dict[str, Any] = {}
    commands: int | None = None
    api_requests = 0.0
    try:
        database = args.database or f"sqlite:///{tmp / 'app.db'}"
        if database.startswith("postgresql"):
            database = pg_schema_url(database, schema)
        ids, sessions = seed(tmp, database, args.tracks, users=users)
        tokens = access_tokens(secret, sessions)
        api_port, base_port = free_port(), free_port()
        env = {
            **os.environ,
            "SONICFORGE_ENVIRONMENT": "development",
            "SONICFORGE_JWT_SECRET": secret,
            "SONICFORGE_VAR_DIR": str(tmp / "var"),
            "SONICFORGE_LAKEHOUSE_URI": str(tmp / "lake"),
            "SONICFORGE_APP_DATABASE_URL": database,
            "SONICFORGE_RATE_LIMIT_KEY_PREFIX": f"sonicforge-bench:{os.getpid()}",
            "SONICFORGE_ACCESS_LOG": "false" if args.no_access_log else "true",
            "SONICFORGE_TRUSTED_PROXIES": "127.0.0.1",
            "SONICFORGE_STREAM_EMBEDDED": "false" if args.redis else "true",
            "DAGSTER_HOME": str(tmp / "dagster"),
        }
        # The default limits, whatever this shell sets.
        for name in ("RATE_LIMIT_IP", "RATE_LIMIT_PRINCIPAL", "LOGIN_RATE_LIMIT_IP"):
            env.pop(f"SONICFORGE_{name}", None)
        if args.redis:
            env["SONICFORGE_REDIS_URL"] = args.redis
        else:
            env.pop("SONICFORGE_REDIS_URL", None)
        py = sys.executable
        procs.append(start([py, "-m", "cli.main", "serve", "--port", str(api_port), "--workers",
                            str(workers), "--no-migrate"], env, tmp / "api.log"))  # fmt: skip
        if args.redis:
            procs.append(start([py, "-m", "cli.main", "stream"], env, tmp / "streamer.log"))
        procs.append(start([py, "-m", "uvicorn", "--app-dir", str(ROOT / "bench"), "api:baseline_app",
                            "--port", str(base_port), "--workers", str(workers), "--no-access-log",
                            "--no-server-header", "--log-level", "warning"], env, tmp / "baseline.log"))  # fmt: skip
        api, base = f"http://127.0.0.1:{api_port}", f"http://127.0.0.1:{base_port}"
        wait_ready(f"{api}/live")
        wait_ready(f"{base}/")
        on_air = wait_on_air(api)
        import httpx

        account = {"email": "bench@example.com", "password": PASSWORD}
        r = httpx.post(f"{api}/api/v1/auth/register", json=account | {"display_name": "bench"})
        r = httpx.post(f"{api}/api/v1/auth/login", json=account) if r.status_code == 202 else r
        if r.status_code != 200:
            raise SystemExit(f"FAIL: could not log in the bench user: {r.status_code} {r.text}")
        check_answers(api, ids, r.json()["access_token"])
        # Access tokens live 15 minutes: they cover the whole run.
        targets: list[tuple[str, str, tuple[list[str], list[str]] | None]] = [
            ("GET /health", f"{api}/health", None),
            ("GET /api/v1/stream/status", f"{api}/api/v1/stream/status", None),
            ("GET /api/v1/top-tracks", f"{api}/api/v1/top-tracks", None),
            ("POST /api/v1/vote (JWT)", f"{api}/api/v1/vote", (ids, tokens)),
        ]
        # Warm-up (imports, first lakehouse reads, caches), discarded.
        measure(f"{base}/", 2.0, connections, clients)
        for _, url, vote in targets:
            measure(url, 2.0, connections, clients, vote=vote)
        before = redis_commands(args.redis)
        # Each endpoint right after its own baseline run, so that a neighbour
        # loading the machine weighs on both sides of each ratio alike.
        for _ in range(args.rounds):
            for name, url, vote in targets:
                pair = (measure(f"{base}/", seconds, connections, clients),
                        measure(url, seconds, connections, clients, vote=vote))  # fmt: skip
                pairs.setdefault(name, []).append(pair)
                api_requests += pair[1]["rps"] * seconds
                if args.per_round:
                    b, r2 = pair
                    print(f"  {name:<26} {r2['rps']:>8.0f} req/s  p99 {r2['p99_ms']:>7.2f} ms  "
                          f"base {b['rps']:>8.0f} req/s  x{r2['rps'] / b['rps']:.2f}  "
                          f"errors {int(r2['errors'])}", flush=True)  # fmt: skip
        after = redis_commands(args.redis)
        if before is not None and after is not None:
            commands = after - before
        final = httpx.get(f"{api}/api/v1/stream/status").json()
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
    store = "redis" if args.redis else "in-process"
    streamer = "its own process" if args.redis else "embedded in the API worker"
    print(f"\nAPI benchmark: {workers} uvicorn worker(s) on loopback, {connections} connections, "
          f"{seconds:g} s per run, {args.rounds} round(s), load from {generator}, store {store}, "
          f"database {(args.database or 'sqlite').split(':')[0]}, streamer {streamer}, "
          f"{os.cpu_count()} CPUs shared with the load generator and the streamer; medians over "
          f"rounds, each ratio against the baseline run just before\n")  # fmt: skip
    print(f"load: {clients} client addresses (X-Forwarded-For through the trusted proxy), "
          f"{users} voting accounts, default limits ({DEFAULT_IP_LIMIT_PER_MIN}/min per address, "
          f"{DEFAULT_PRINCIPAL_LIMIT_PER_MIN}/min per account), counted in the limiter's store (in leases)")  # fmt: skip
    playing = on_air.get("now_playing") or {}
    print(f"station: {on_air.get('state')}, playing {playing.get('track_id')} "
          f"({len(on_air.get('outputs', []))} outputs); at the end: {final.get('state')}, "
          f"playing {(final.get('now_playing') or {}).get('track_id')}\n")  # fmt: skip
    print(f"{'endpoint':<26} {'served by':<9} {'req/s':>8} {'p50 ms':>7} {'p99 ms':>7} "
          f"{'base req/s':>10} {'x base':>6} {'errors':>6}  target")  # fmt: skip
    failed = False
    busiest_client = busiest_user = 0.0
    for name, runs in pairs.items():
        rps = statistics.median(r["rps"] for _, r in runs)
        p50 = statistics.median(r["p50_ms"] for _, r in runs)
        p99 = statistics.median(r["p99_ms"] for _, r in runs)
        base_rps = statistics.median(b["rps"] for b, _ in runs)
        ratio = statistics.median(r["rps"] / b["rps"] for b, r in runs)
        errors = sum(int(r["errors"]) for _, r in runs)
        peak = max(r["rps"] for _, r in runs)
        busiest_client = max(busiest_client, peak * 60 / clients)
        if name.startswith("POST"):
            busiest_user = max(busiest_user, peak * 60 / users)
            served, ok, want = "hot path", rps >= 1000, "MISSED (>= 1000/s)"
        else:
            served, ok, want = (
                "hot path",
                ratio >= 0.5 and p99 < 20,
                "MISSED (>= 0.5x base, p99 < 20 ms)",
            )
        if errors:
            failed = True
            target = f"FAIL ({errors} errors)"
        else:
            target = "ok" if ok else want
        print(f"{name:<26} {served:<9} {rps:>8.0f} {p50:>7.2f} {p99:>7.2f} {base_rps:>10.0f} "
              f"{ratio:>6.2f} {errors:>6}  {target}")  # fmt: skip
    print(f"\nbusiest client: {busiest_client:.0f} requests/min (limit {DEFAULT_IP_LIMIT_PER_MIN}); "
          f"busiest voter: {busiest_user:.0f} votes/min (limit {DEFAULT_PRINCIPAL_LIMIT_PER_MIN})")  # fmt: skip
    if commands is not None and api_requests:
        print(f"Redis: {commands / api_requests:.2f} commands per API request (the server's own "
              f"count over the measured runs; the streamer and any other Redis client add to it)")  # fmt: skip
    if failed:
        print("FAIL: requests failed or were refused; these figures are not a valid run")
        return 1
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    raise SystemExit(main())
