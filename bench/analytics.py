"""Benchmark the listener-data path: events accepted by the API, the
outbox drained into Delta, compaction, an analyst's group-by, the
analytics transforms in polars against DuckDB, and the dashboard's p99.

    .venv/bin/python bench/analytics.py [--duration 4] [--connections 32]
        [--drain-events 1000000] [--groupby-events 10000000] [--database URL]

- **Accept**: ``POST /api/v1/analytics/track`` against two API workers
  (uvicorn ``--workers 2``, as ``sonicforge serve`` runs them) on loopback,
  with wrk (the load generator, its own process) sending one event per
  request, then batches of 500. A bare Starlette app that reads the body
  and answers 202 with the same two workers is the baseline of the same
  run. Targets: 5,000 single events/s, 50,000 events/s in batches.
  Accepted means committed to the outbox (SQLite WAL by default).
- **Drain**: ``--drain-events`` rows written to the outbox, then drained
  by a process of its own (``analytics.drain``); rows/s and that process's
  peak RSS. Targets: 100,000 events/s, under 1 GB for 10 million
  (``--drain-events 10000000``; the default million keeps the run short).
- **Compaction**: data files per daily partition before and after.
- **Group-by**: ``--groupby-events`` synthetic events (10 million by
  default) written straight to a Delta table, then an analyst's group-by
  through ``sonicforge sql`` (the CLI, wall time) and through the same
  DuckDB engine in process. Target: under 1 s.
- **Transforms**: per asset, polars against DuckDB on the same day's data
  (the synthetic events plus that day's plays, votes and sessions), and
  the engine the asset runs (``analytics.transforms.ENGINES``).
  daily_track_metrics and kpis_daily run their whole transform in each
  engine (``*_polars`` / ``*_duckdb``), checked to give the same table;
  listener_sessions' DuckDB side is its windowing as SQL.
- **Dashboard**: p99 of ``GET /api/v1/analytics/dashboard`` (cached).

Run under ``flock /tmp/sonicforge-bench.lock`` on a shared machine.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from api import run_wrk  # noqa: E402 - bench/api.py: wrk with its JSON report

PASSWORD = "Tempo-Rubato-42"
TARGETS = {"single": 5_000, "batch": 50_000, "drain": 100_000, "groupby_s": 1.0, "rss_mb": 1024}


BASELINE = """
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route

async def accept(request):
    await request.body()
    return Response(b'{"accepted":1}', status_code=202, media_type="application/json")

app = Starlette(routes=[Route("/api/v1/analytics/track", accept, methods=["POST"])])
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(url: str, timeout_s: float = 90.0) -> None:
    import httpx

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=1.0)
            return
        except httpx.HTTPError:
            time.sleep(0.3)
    raise SystemExit(f"no answer from {url} within {timeout_s:g} s")


def post_script(body: str) -> str:
    return (
        'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
        f"wrk.body = {json.dumps(body)}\n"
    )


def get_script(token: str) -> str:
    return f'wrk.headers["Authorization"] = "Bearer {token}"\n'


def single_body() -> str:
    return json.dumps({"event": "heartbeat", "anonymous_id": "anon-bench", "track_id": "t-1",
                       "properties": {"seconds": 10, "output": "hls"},
                       "context": {"locale": "en-GB", "page": {"path": "/"}}})  # fmt: skip


def batch_body(n: int = 500) -> str:
    events = [{"event": "heartbeat", "anonymous_id": f"anon-{i % 97}", "track_id": f"t-{i % 30}",
               "properties": {"seconds": 10, "output": "hls"}} for i in range(n)]  # fmt: skip
    return json.dumps({"batch": events})


# -- the API ----------------------------------------------------------------------


def api_env(tmp: Path, database: str) -> dict[str, str]:
    return {
        **os.environ,
        "SONICFORGE_ENVIRONMENT": "test", "SONICFORGE_JWT_SECRET": "bench-" + "k" * 40,
        "SONICFORGE_BCRYPT_ROUNDS": "4", "SONICFORGE_VAR_DIR": str(tmp / "var"),
        "SONICFORGE_APP_DATABASE_URL": database, "SONICFORGE_LAKEHOUSE_URI": str(tmp / "lake"),
        "SONICFORGE_API_WORKERS": "2", "SONICFORGE_ACCESS_LOG": "false",
        "SONICFORGE_LOG_LEVEL": "WARNING",
        # One load generator is one address: the per-address budget would refuse it.
        "SONICFORGE_RATE_LIMIT_IP": "100000000/minute",
        "SONICFORGE_RATE_LIMIT_PRINCIPAL": "100000000/minute",
    }  # fmt: skip


def start_uvicorn(
    target: list[str], env: dict[str, str], port: int, log: Path
) -> subprocess.Popen[bytes]:
    argv = [sys.executable, "-m", "uvicorn", *target, "--host", "127.0.0.1", "--port", str(port),
            "--workers", "2", "--log-level", "warning", "--no-access-log"]  # fmt: skip
    with open(log, "wb") as out:
        return subprocess.Popen(argv, env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()


def operator_token(api: str, database: str) -> str:
    import httpx
    from sqlalchemy import create_engine, text

    email = "operator@bench.example"
    httpx.post(f"{api}/api/v1/auth/register",
               json={"email": email, "display_name": "Op", "password": PASSWORD})  # fmt: skip
    engine = create_engine(database)
    with engine.begin() as conn:
        conn.execute(text("UPDATE users SET role = 'operator' WHERE email = :e"), {"e": email})
    engine.dispose()
    r = httpx.post(f"{api}/api/v1/auth/login", json={"email": email, "password": PASSWORD})
    return str(r.json()["access_token"])


def outbox_count(database: str) -> int:
    from sqlalchemy import create_engine, text

    engine = create_engine(database)
    with engine.connect() as conn:
        n = int(conn.execute(text("SELECT count(*) FROM event_outbox")).scalar() or 0)
    engine.dispose()
    return n


def bench_accept(args: argparse.Namespace, tmp: Path, database: str) -> dict[str, Any]:
    from serving.db.session import migrate

    migrate(database)
    env = api_env(tmp, database)
    results: dict[str, Any] = {}
    base_file = tmp / "baseline_app.py"
    base_file.write_text(BASELINE)
    port = free_port()
    base = start_uvicorn(
        ["--app-dir", str(tmp), "baseline_app:app"], {**os.environ}, port, tmp / "base.log"
    )
    try:
        wait_ready(f"http://127.0.0.1:{port}/")
        url = f"http://127.0.0.1:{port}/api/v1/analytics/track"
        results["baseline_single"] = run_wrk(
            url, args.duration, args.connections, post_script(single_body())
        )
        results["baseline_batch"] = run_wrk(url, args.duration, 8, post_script(batch_body()))
    finally:
        stop(base)
    port = free_port()
    api = start_uvicorn(["--factory", "serving.app:create_app"], env, port, tmp / "api.log")
    try:
        root = f"http://127.0.0.1:{port}"
        wait_ready(f"{root}/live")
        url = f"{root}/api/v1/analytics/track"
        before = outbox_count(database)
        results["single"] = run_wrk(
            url, args.duration, args.connections, post_script(single_body())
        )
        mid = outbox_count(database)
        results["batch"] = run_wrk(url, args.duration, 8, post_script(batch_body()))
        after = outbox_count(database)
        results["single"]["rows"] = mid - before
        results["batch"]["rows"] = after - mid
        token = operator_token(root, database)
        import httpx

        for _ in range(20):  # each worker's first read fills its cache (served stale after)
            httpx.get(f"{root}/api/v1/analytics/dashboard", timeout=30,
                      headers={"Authorization": f"Bearer {token}"})  # fmt: skip
        results["dashboard"] = run_wrk(f"{root}/api/v1/analytics/dashboard", args.duration, 8,
                                       get_script(token))  # fmt: skip
    finally:
        stop(api)
    return results


# -- the drain -----------------------------------------------------------------------

DRAIN_CHILD = """
import json, resource, sys, time
from serving.db.session import Database
from analytics.drain import OutboxDrain
from sonicforge.lakehouse import Lakehouse
db = Database(sys.argv[1])
t = time.perf_counter()
report = OutboxDrain(db.engine, Lakehouse(sys.argv[2]), batch_size=int(sys.argv[3])).run()
seconds = time.perf_counter() - t
print(json.dumps({"rows": report.rows, "batches": report.batches, "seconds": seconds,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def fill_outbox(database: str, n: int, day: date) -> float:
    from serving.db.session import Database
    from serving.services.outbox import db_time, dumps, insert_sql
    from sonicforge import ids

    db = Database(database)
    db.migrate()
    dialect = db.backend
    sql = insert_sql(dialect)
    start = datetime.combine(day, datetime.min.time(), UTC)
    step = 86_000.0 / max(1, n)
    props = dumps({"seconds": 10, "output": "hls"})
    t0 = time.perf_counter()
    chunk: list[tuple[Any, ...]] = []
    for i in range(n):
        ts = start + timedelta(seconds=i * step)
        stamp = db_time(ts, dialect)
        chunk.append((ids.uuid7(ts), "track", "heartbeat", None, f"anon-{i % 20_000}", f"t-{i % 500}",
                      props, None, None, None, stamp, stamp, stamp, 0.0, None, None))  # fmt: skip
        if len(chunk) == 50_000:
            with db.engine.begin() as conn:
                conn.exec_driver_sql(sql, chunk)  # type: ignore[arg-type]
            chunk = []
    if chunk:
        with db.engine.begin() as conn:
            conn.exec_driver_sql(sql, chunk)  # type: ignore[arg-type]
    if dialect == "sqlite":  # as the API's checkpointer would have
        with db.engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    db.dispose()
    return time.perf_counter() - t0


def bench_drain(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    from analytics import writes
    from sonicforge.lakehouse import Lakehouse

    database = args.database or f"sqlite:///{tmp / 'drain.db'}"
    lake = tmp / "drain-lake"
    day = date(2026, 11, 20)
    fill_s = fill_outbox(database, args.drain_events, day)
    out = subprocess.run(
        [sys.executable, "-c", DRAIN_CHILD, database, str(lake), str(args.drain_batch)],
        capture_output=True, text=True, cwd=ROOT, check=True,
    )  # fmt: skip
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result["fill_s"] = fill_s
    result["rows_per_s"] = result["rows"] / result["seconds"]
    lh = Lakehouse(str(lake))
    result["files_before"] = writes.files_per_day(lh, "events")
    t0 = time.perf_counter()
    writes.compact_days(lh, "events")
    result["compact_s"] = time.perf_counter() - t0
    result["files_after"] = writes.files_per_day(lh, "events")
    return result


# -- the group-by and the transforms -----------------------------------------------------


def synthetic_events(lh: Any, n: int, days: int = 7) -> None:
    """``n`` events over ``days`` days straight into Delta (1M rows a commit)."""
    import numpy as np
    import pyarrow as pa
    from deltalake import write_deltalake

    from sonicforge.tables import EVENTS

    lh.ensure("events")
    rng = np.random.default_rng(0)
    start = datetime(2026, 11, 14, tzinfo=UTC)
    types = np.array(
        ["track", "track", "track", "track", "page", "vote", "share_created", "exposure"]
    )
    names = np.array(
        ["heartbeat", "heartbeat", "heartbeat", "skip", None, None, None, None], dtype=object
    )
    done = 0
    while done < n:
        m = min(1_000_000, n - done)
        pick = rng.integers(0, len(types), m)
        offs = np.sort(rng.integers(0, days * 86_400_000_000, m))
        ts = pa.array(offs + int(start.timestamp() * 1e6), pa.timestamp("us", tz="UTC"))
        anon = pa.array([f"anon-{x}" for x in rng.integers(0, 50_000, m)])
        track = pa.array([f"t-{x}" for x in rng.integers(0, 2_000, m)])
        table = pa.table(
            {
                "event_id": pa.array([f"e{done + i:010d}" for i in range(m)]),
                "type": pa.array(types[pick]), "event": pa.array(names[pick], pa.string()),
                "user_id": pa.nulls(m, pa.string()), "anonymous_id": anon, "track_id": track,
                "properties": pa.array(['{"seconds":10,"output":"hls"}'] * m),
                "context": pa.nulls(m, pa.string()), "experiment_id": pa.nulls(m, pa.string()),
                "variant": pa.nulls(m, pa.string()), "sent_at": ts, "received_at": ts, "ts": ts,
                "clock_skew_s": pa.array(np.zeros(m)), "flags": pa.array([[]] * m, pa.list_(pa.string())),
                "request_id": pa.nulls(m, pa.string()),
                "day": pa.compute.cast(ts, pa.date32()),
            },
            schema=EVENTS.schema,
        )  # fmt: skip
        write_deltalake(lh.table_uri("events"), table, mode="append")
        done += m


def synthetic_day_tables(lh: Any, day: date) -> None:
    """The day's plays (3-minute tracks), votes, and sessions (from the
    events, as the asset writes them), so the KPIs and track metrics join
    every source they read."""
    import numpy as np
    import pyarrow as pa
    from deltalake import write_deltalake

    from analytics import transforms
    from sonicforge.tables import PLAYS, VOTES

    rng = np.random.default_rng(1)
    start = int(datetime.combine(day, datetime.min.time(), UTC).timestamp() * 1e6)
    n = 480
    began = start + np.arange(n, dtype=np.int64) * 180_000_000
    ts = pa.timestamp("us", tz="UTC")
    plays = pa.table(
        {"play_id": pa.array([f"p{i}" for i in range(n)]),
         "track_id": pa.array([f"t-{x}" for x in rng.integers(0, 2_000, n)]),
         "started_at": pa.array(began, ts), "ended_at": pa.array(began + 170_000_000, ts),
         "listeners": pa.array(rng.integers(1, 500, n)), "skipped": pa.array(rng.random(n) < 0.1),
         "channel": pa.array(["main"] * n)},
    )  # fmt: skip
    lh.ensure("plays")
    write_deltalake(lh.table_uri("plays"), plays.cast(PLAYS.schema), mode="append")
    m = 20_000
    at = pa.array(start + np.sort(rng.integers(0, 86_400_000_000, m)), ts)
    votes = pa.table(
        {"vote_id": pa.array([f"v{i}" for i in range(m)]),
         "user_id": pa.array([f"u{x}" for x in rng.integers(0, 5_000, m)]),
         "track_id": pa.array([f"t-{x}" for x in rng.integers(0, 2_000, m)]),
         "stars": pa.array(rng.integers(1, 6, m)), "direction": pa.nulls(m, pa.int64()),
         "action": pa.array(np.where(rng.random(m) < 0.05, "withdraw", "cast")),
         "ts": at, "day": pa.array([day] * m, pa.date32())},
    )  # fmt: skip
    lh.ensure("votes")
    write_deltalake(lh.table_uri("votes"), votes.cast(VOTES.schema), mode="append")
    sessions = transforms.listener_sessions(transforms.scan(lh, "events"), day, segment_s=6.0)
    lh.ensure("listener_sessions")
    write_deltalake(lh.table_uri("listener_sessions"), sessions, mode="append")


def timed(fn: Any, repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


# An analyst's everyday question, and a heavier one with a distinct count.
GROUPBY_SQL = "select day, type, count(*) as n from events group by 1, 2 order by 1, 2"
DISTINCT_SQL = (
    "select day, type, count(*) as n, count(distinct anonymous_id) as units "
    "from events group by 1, 2 order by 1, 2"
)

SESSIONS_SQL = """
with beats as (
  select coalesce('u:' || user_id, 'a:' || anonymous_id) as unit,
         coalesce(json_extract_string(properties, '$.output'), 'web') as output, ts
  from delta_scan(?) where day = ? and event = 'heartbeat'
), marked as (
  select *, case when ts - lag(ts) over (partition by unit, output order by ts) <= interval 12 seconds
                 then 0 else 1 end as new from beats
), numbered as (
  select *, sum(new) over (partition by unit, output order by ts rows unbounded preceding) as n from marked
)
select unit, output, n, min(ts) as started_at, max(ts) + interval 6 seconds as ended_at, count(*) as beats
from numbered group by 1, 2, 3
"""


def bench_queries(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    from analytics import transforms
    from analytics.sql import SqlEngine
    from sonicforge.lakehouse import Lakehouse

    lake = tmp / "groupby-lake"
    lh = Lakehouse(str(lake))
    t0 = time.perf_counter()
    synthetic_events(lh, args.groupby_events)
    out: dict[str, Any] = {"write_s": time.perf_counter() - t0, "rows": lh.count("events")}
    engine = SqlEngine(lh)
    out["groupby_inprocess_s"] = timed(lambda: engine.query(GROUPBY_SQL))
    out["distinct_inprocess_s"] = timed(lambda: engine.query(DISTINCT_SQL))
    env = {
        **os.environ,
        "SONICFORGE_LAKEHOUSE_URI": str(lake),
        "SONICFORGE_VAR_DIR": str(tmp / "var"),
    }
    cli = shutil.which("sonicforge", path=str(ROOT / ".venv" / "bin")) or "sonicforge"

    def run_cli() -> None:
        subprocess.run(
            [cli, "sql", GROUPBY_SQL], env=env, cwd=ROOT, check=True, capture_output=True
        )

    out["groupby_cli_s"] = timed(run_cli, repeat=2)
    day = date(2026, 11, 20)
    uri = lh.table_uri("events")
    con = engine.con
    t0 = time.perf_counter()
    synthetic_day_tables(lh, day)
    out["day_tables_s"] = time.perf_counter() - t0
    now = datetime(2026, 11, 21, tzinfo=UTC)

    def polars_sessions() -> Any:
        return transforms.listener_sessions(transforms.scan(lh, "events"), day, segment_s=6.0)

    def duck_sessions() -> Any:
        return con.execute(SESSIONS_SQL, [uri, day]).fetch_arrow_table()

    def polars_metrics() -> Any:
        return transforms.daily_track_metrics_polars(
            events=transforms.scan(lh, "events"), plays=transforms.scan(lh, "plays"),
            votes=transforms.scan(lh, "votes"), day=day, now=now,
        )  # fmt: skip

    def duck_metrics() -> Any:
        return transforms.daily_track_metrics_duckdb(lh=lh, day=day, now=now)

    def polars_kpis() -> Any:
        return transforms.kpis_daily_polars(lh=lh, day=day, now=now)

    def duck_kpis() -> Any:
        return transforms.kpis_daily_duckdb(lh=lh, day=day, now=now)

    def same(a: Any, b: Any) -> str:
        import numpy as np
        import pyarrow as pa

        if a.equals(b):
            return "same table"
        if a.schema != b.schema or a.num_rows != b.num_rows:
            return "TABLES DIFFER (shape)"
        for name in a.column_names:  # sums in another order may differ in the last bits
            x, y = a.column(name), b.column(name)
            if pa.types.is_floating(x.type):
                xs, ys = x.to_numpy(zero_copy_only=False), y.to_numpy(zero_copy_only=False)
                if not np.allclose(xs, ys, rtol=1e-9, atol=0, equal_nan=True):
                    return f"TABLES DIFFER ({name})"
            elif not x.equals(y):
                return f"TABLES DIFFER ({name})"
        return "same table (floats within 1e-9)"

    # The sessions' DuckDB side is the same windowing as SQL (its own columns);
    # the other two run the asset's whole transform in each engine.
    out["transforms"] = {
        "listener_sessions": (timed(polars_sessions), timed(duck_sessions), "SQL window sketch"),
        "daily_track_metrics": (timed(polars_metrics), timed(duck_metrics),
                                same(polars_metrics(), duck_metrics())),
        "kpis_daily": (timed(polars_kpis), timed(duck_kpis), same(polars_kpis(), duck_kpis())),
    }  # fmt: skip
    engine.close()
    return out


# -- report ------------------------------------------------------------------------------


def verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--duration", type=float, default=4.0, help="seconds per wrk run")
    p.add_argument("--connections", type=int, default=32)
    p.add_argument("--drain-events", type=int, default=1_000_000)
    p.add_argument("--drain-batch", type=int, default=50_000)
    p.add_argument("--groupby-events", type=int, default=10_000_000)
    p.add_argument("--database", default=None, help="app database URL (default: SQLite in tmp)")
    p.add_argument("--skip", action="append", default=[], choices=["accept", "drain", "queries"])
    args = p.parse_args()
    if not shutil.which("wrk") and "accept" not in args.skip:
        raise SystemExit(
            "wrk is needed for the accept figures (apt-get install wrk), or --skip accept"
        )
    with tempfile.TemporaryDirectory(prefix="sf-bench-analytics-") as d:
        tmp = Path(d)
        rows: list[tuple[str, str, str, str]] = []
        if "accept" not in args.skip:
            database = args.database or f"sqlite:///{tmp / 'api.db'}"
            a = bench_accept(args, tmp, database)
            single = a["single"]["rps"]
            batch = a["batch"]["rps"] * 500
            rows += [
                ("accept, 1 event a request", f"{single:,.0f} events/s (p99 {a['single']['p99_ms']:.1f} ms)",
                 f"baseline {a['baseline_single']['rps']:,.0f} req/s", f">= 5,000: {verdict(single >= TARGETS['single'])}"),
                ("accept, 500 a request", f"{batch:,.0f} events/s (p99 {a['batch']['p99_ms']:.1f} ms)",
                 f"baseline {a['baseline_batch']['rps'] * 500:,.0f} events/s", f">= 50,000: {verdict(batch >= TARGETS['batch'])}"),
                ("  rows in the outbox", f"{a['single']['rows']:,} + {a['batch']['rows']:,}",
                 f"errors {a['single']['errors'] + a['batch']['errors']:.0f}", "every 202 committed"),
                ("dashboard", f"p99 {a['dashboard']['p99_ms']:.1f} ms, {a['dashboard']['rps']:,.0f} req/s",
                 f"p50 {a['dashboard']['p50_ms']:.1f} ms", ""),
            ]  # fmt: skip
        if "drain" not in args.skip:
            dr = bench_drain(args, tmp)
            rows += [
                (f"drain {dr['rows']:,} events", f"{dr['rows_per_s']:,.0f} events/s ({dr['seconds']:.1f} s)",
                 f"{dr['batches']} commits", f">= 100,000: {verdict(dr['rows_per_s'] >= TARGETS['drain'])}"),
                ("  drain peak RSS", f"{dr['peak_rss_mb']:,.0f} MB", f"batch {args.drain_batch:,}",
                 f"<= 1 GB: {verdict(dr['peak_rss_mb'] <= TARGETS['rss_mb'])}"),
                ("files per day partition", f"{dr['files_before']} -> {dr['files_after']}",
                 f"compact {dr['compact_s']:.1f} s", ""),
            ]  # fmt: skip
        if "queries" not in args.skip:
            q = bench_queries(args, tmp)
            rows += [
                (f"group-by over {q['rows']:,} events", f"{q['groupby_inprocess_s']:.2f} s (DuckDB engine)",
                 f"CLI wall {q['groupby_cli_s']:.2f} s", f"< 1 s: {verdict(q['groupby_inprocess_s'] < TARGETS['groupby_s'])}"),
                ("  with count(distinct)", f"{q['distinct_inprocess_s']:.2f} s", "", ""),
            ]  # fmt: skip
            from analytics.transforms import ENGINES

            rows.append(("asset (one day)", "polars", "DuckDB", "faster / the asset runs / check"))
            for name, (pol, duck, note) in q["transforms"].items():
                faster = "polars" if pol <= duck else "DuckDB"
                used = {"polars": "polars", "duckdb": "DuckDB"}[ENGINES[name]]
                rows.append((f"  {name}", f"{pol:.3f} s", f"{duck:.3f} s",
                             f"{faster} / {used}{'' if used == faster else ' (NOT the faster)'} / {note}"))  # fmt: skip
        widths = [max(len(r[i]) for r in rows) for i in range(4)]
        print()
        for r in rows:
            print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
