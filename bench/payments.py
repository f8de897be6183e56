"""Payments benchmark: webhook events applied per second with dedupe, and
request-to-air time for a procedural track request.

    .venv/bin/python bench/payments.py [--events 2000] [--postgres-url URL]
        [--requests 3] [--duration 60] [--rotation-track-s 180] [--skip-air]

Webhooks (target: >= 500 events/s on SQLite and on PostgreSQL): signed
``checkout.session.completed`` events for credit packs (each adds a credit
entry, moves the balance, completes the stored session and writes a
conversion event to the outbox), one in five delivered twice, so the
dedupe path is part of the mix. Measured three ways: ``apply_event`` one
event per transaction; the endpoint's group-commit writer with
``--concurrency`` deliveries in flight; and through the whole API
(``POST /api/v1/webhooks/stripe`` on a uvicorn process: HTTP, signature
verification, the middleware, the hot path that receives Stripe's JSON
deliveries), posted over ``--concurrency``
connections at once as Stripe's deliveries overlap, beside ``GET /live``
on the same process and connections (the HTTP floor). The baseline, timed
in the same run on the same database, is one bare ``INSERT`` of an event id
and a commit per event: what recording an id alone costs there. The
group-commit and HTTP figures are both held to the target.

Request-to-air (target: p50 <= 60 s): the API with the real embedded
launcher (each request is a ``sonicforge generate`` subprocess for its own
partition: generate, score, master, gate, rotation) and a real-time
streamer playing a rotation of ``--rotation-track-s`` tracks. From
``POST /requests`` to the wall time of the request's first sample on air,
split into "ready" (to ``queued_on_air``) and the wait for the track on air
to end. After each measurement the streamer skips back to the rotation and
the next request starts at a random point of a rotation track.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

TARGET_EVENTS_PER_S = 500.0
TARGET_AIR_P50_S = 60.0
SECRET = "whsec_bench_" + "b" * 32


def _sign(payload: bytes) -> str:
    import hashlib
    import hmac

    t = int(time.time())
    mac = hmac.new(SECRET.encode(), f"{t}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


# -- webhooks -------------------------------------------------------------------------


def _prepare(db: Any, n: int, tag: str) -> tuple[str, list[dict[str, Any]]]:
    """A user, ``n`` open checkout sessions of theirs and their completion events."""
    from serving.db.models import CheckoutSession, User

    user_id = f"bench-{tag}"
    with db.session() as s:
        s.add(User(id=user_id, email=f"{user_id}@bench.test", password_hash="x", display_name="B"))
        s.flush()
        s.add_all(
            CheckoutSession(id=f"cs_{tag}_{i}", user_id=user_id, mode="payment", item="credits_10")
            for i in range(n)
        )
        s.commit()
    now = int(time.time())
    events = [
        {
            "id": f"evt_{tag}_{i}",
            "object": "event",
            "type": "checkout.session.completed",
            "created": now,
            "data": {
                "object": {
                    "id": f"cs_{tag}_{i}",
                    "object": "checkout.session",
                    "mode": "payment",
                    "payment_status": "paid",
                    "client_reference_id": user_id,
                    "customer": f"cus_{tag}",
                    "payment_intent": f"pi_{tag}_{i}",
                    "amount_total": 499,
                    "metadata": {"item": "credits_10", "user_id": user_id},
                }
            },
        }
        for i in range(n)
    ]
    # One in five delivered twice (Stripe's at-least-once delivery).
    deliveries = [e for i, e in enumerate(events) for _ in range(2 if i % 5 == 0 else 1)]
    return user_id, deliveries


def _check(db: Any, user_id: str, n: int) -> None:
    from sqlalchemy import func, select

    from serving.db.models import BillingAccount, CreditEntry

    with db.session() as s:
        balance = s.get(BillingAccount, user_id).credit_balance
        entries = s.scalar(
            select(func.count()).select_from(CreditEntry).where(CreditEntry.user_id == user_id)
        )
    if balance != 10 * n or entries != n:
        raise SystemExit(f"dedupe failed: balance {balance}, entries {entries} for {n} events")


def _baseline(db: Any, n: int, tag: str) -> float:
    from sqlalchemy import text

    with db.engine.connect() as conn:
        conn.execute(text("CREATE TABLE IF NOT EXISTS bench_ids (id VARCHAR(64) PRIMARY KEY)"))
        conn.commit()
        start = time.perf_counter()
        for i in range(n):
            conn.execute(text("INSERT INTO bench_ids (id) VALUES (:i)"), {"i": f"{tag}-{i}"})
            conn.commit()
        elapsed = time.perf_counter() - start
        conn.execute(text("DROP TABLE bench_ids"))
        conn.commit()
    return n / elapsed


def webhook_figures(db: Any, n: int, label: str, concurrency: int) -> dict[str, float]:
    from serving.billing.webhooks import WebhookContext, apply_event

    out: dict[str, float] = {"baseline_inserts_per_s": _baseline(db, n, f"{label}-base")}
    hook = WebhookContext(price_plans={})
    user_id, deliveries = _prepare(db, n, f"{label}-direct")
    start = time.perf_counter()
    outcomes = []
    for event in deliveries:
        with db.session() as s:
            outcomes.append(apply_event(s, event, hook))
    elapsed = time.perf_counter() - start
    _check(db, user_id, n)
    assert outcomes.count("duplicate") == len(deliveries) - n
    out["direct_events_per_s"] = len(deliveries) / elapsed

    out["group_commit_events_per_s"] = writer_figures(db, n, label, concurrency)
    out["http_events_per_s"], out["http_floor_get_live_per_s"] = http_figures(
        db, n, label, concurrency
    )
    return out


def writer_figures(db: Any, n: int, label: str, concurrency: int) -> float:
    """Events/s through the endpoint's group-commit writer (no HTTP), with
    ``concurrency`` deliveries in flight as the API worker sees them."""
    import asyncio

    from serving.billing.webhooks import WebhookContext, WebhookWriter

    user_id, deliveries = _prepare(db, n, f"{label}-writer")
    writer = WebhookWriter(db)
    writer.start()
    hook = WebhookContext(price_plans={})

    async def run() -> None:
        queue = iter(deliveries)

        async def worker() -> None:
            for event in queue:
                await writer.apply(event, hook)

        await asyncio.gather(*(worker() for _ in range(concurrency)))

    start = time.perf_counter()
    try:
        asyncio.run(run())
    finally:
        writer.stop()
    elapsed = time.perf_counter() - start
    _check(db, user_id, n)
    print(f"  {label}: group commit took {writer.events / max(writer.takes, 1):.1f} events a batch")
    return len(deliveries) / elapsed


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def http_figures(db: Any, n: int, label: str, concurrency: int) -> tuple[float, float]:
    """Events/s through a real API process (uvicorn, one worker), posted by
    ``concurrency`` connections at once as Stripe's deliveries overlap."""
    import asyncio
    import subprocess

    import httpx

    url = db.url
    if db.schema:  # PostgreSQL: the bench's own schema
        url += ("&" if "?" in url else "?") + f"options=-csearch_path%3D{db.schema}"
    tmp = Path(tempfile.mkdtemp(prefix="sf-bench-pay-"))
    port = _free_port()
    env = {
        **os.environ,
        "SONICFORGE_ENVIRONMENT": "test",
        "SONICFORGE_JWT_SECRET": "bench-" + "k" * 40,
        "SONICFORGE_BCRYPT_ROUNDS": "4",
        "SONICFORGE_VAR_DIR": str(tmp / "var"),
        "SONICFORGE_LAKEHOUSE_URI": str(tmp / "lake"),
        "SONICFORGE_APP_DATABASE_URL": url,
        "SONICFORGE_STRIPE_API_KEY": "sk_test_bench",
        "SONICFORGE_STRIPE_WEBHOOK_SECRET": SECRET,
        "SONICFORGE_ACCESS_LOG": "false",
        "SONICFORGE_LOG_LEVEL": "WARNING",
    }
    argv = [sys.executable, "-m", "uvicorn", "--factory", "serving.app:create_app",
            "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning",
            "--no-access-log"]  # fmt: skip
    root = Path(__file__).resolve().parents[1]
    proc = subprocess.Popen(argv, env=env, cwd=root)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/live", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                raise SystemExit("the API process did not start")
            time.sleep(0.2)
        user_id, deliveries = _prepare(db, n, f"{label}-http")
        bodies = [json.dumps(e).encode() for e in deliveries]

        async def post_all() -> None:
            queue = iter(bodies)
            limits = httpx.Limits(max_connections=concurrency)
            async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as client:

                async def worker() -> None:
                    for body in queue:
                        r = await client.post(
                            "/api/v1/webhooks/stripe",
                            content=body,
                            headers={
                                "Stripe-Signature": _sign(body),
                                "Content-Type": "application/json",
                            },
                        )
                        if r.status_code != 200:
                            raise SystemExit(f"webhook answered {r.status_code}: {r.text}")

                await asyncio.gather(*(worker() for _ in range(concurrency)))

        async def floor() -> None:
            limits = httpx.Limits(max_connections=concurrency)
            async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as client:

                async def worker() -> None:
                    for _ in range(len(bodies) // concurrency):
                        (await client.get("/live")).raise_for_status()

                await asyncio.gather(*(worker() for _ in range(concurrency)))

        start = time.perf_counter()
        asyncio.run(floor())
        floor_rate = (len(bodies) // concurrency) * concurrency / (time.perf_counter() - start)
        start = time.perf_counter()
        asyncio.run(post_all())
        elapsed = time.perf_counter() - start
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    _check(db, user_id, n)
    return len(bodies) / elapsed, floor_rate


def sqlite_db() -> Any:
    from serving.db.session import Database

    path = Path(tempfile.mkdtemp(prefix="sf-bench-db-")) / "app.db"
    db = Database(f"sqlite:///{path}")
    db.migrate()
    return db


def postgres_db(url: str) -> tuple[Any, Any]:
    from sqlalchemy import create_engine, text

    from serving.db.session import Database

    schema = f"sf_bench_pay_{os.getpid()}"
    admin = create_engine(url)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    db = Database(url, schema=schema)
    db.migrate()

    def drop() -> None:
        db.dispose()
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()

    return db, drop


# -- request to air -------------------------------------------------------------------


def _rotation(lakehouse: Any, count: int, seconds: float) -> None:
    import numpy as np
    import soundfile as sf

    now = datetime.now(UTC)
    sr = 44100
    masters, scores, rotation = [], [], []
    for i in range(count):
        t = np.arange(int(seconds * sr)) / sr
        tone = (0.2 * np.sin(2 * np.pi * (220.0 + 55 * i) * t)).astype(np.float32)
        buf = io.BytesIO()
        sf.write(buf, np.stack([tone, tone], axis=1), sr, format="FLAC")
        tid = f"rot-{i}"
        uri, sha = lakehouse.audio.put(f"masters/rot/{tid}.flac", buf.getvalue())
        masters.append({
            "track_id": tid, "batch_id": "rot", "master_uri": uri, "master_sha256": sha,
            "renditions": [], "duration_s": seconds, "sample_rate": sr, "lufs_before": -17.0,
            "lufs_after": -17.0, "true_peak_after": -11.0, "chain_version": "bench",
            "mastered_at": now,
        })  # fmt: skip
        rotation.append({
            "track_id": tid, "batch_id": "rot", "genre": "ambient", "weight": 1.0,
            "duration_s": seconds, "quality_score": 70.0, "eligible_from": now, "retired_at": None,
        })  # fmt: skip
        scores.append(tid)
    lakehouse.insert_new("mastered_tracks", masters)
    lakehouse.insert_new("rotation", rotation)


def air_figures(n: int, duration: float, rotation_s: float) -> list[dict[str, float]]:
    from fastapi.testclient import TestClient

    from orchestration.launch import ensure_dagster_home
    from serving.app import create_app
    from serving.context import build_context
    from serving.db.session import Database
    from serving.services.dagster_embedded import EmbeddedLauncher
    from sonicforge.lakehouse import Lakehouse
    from sonicforge.settings import Settings
    from sonicforge.station import InMemoryStationState
    from streaming.clock import RealClock
    from streaming.outputs.base import Output
    from streaming.service import build_streamer
    from streaming.streamer import OutputSpec

    tmp = Path(tempfile.mkdtemp(prefix="sf-bench-air-"))
    os.environ["DAGSTER_HOME"] = str(tmp / "dagster")
    settings = Settings(
        var_dir=tmp / "var",
        environment="test",
        jwt_secret="bench-" + "k" * 40,
        bcrypt_rounds=4,
        access_log=False,
        log_level="WARNING",
        lakehouse_uri=str(tmp / "lake"),
        app_database_url=f"sqlite:///{tmp / 'app.db'}",
        rate_limit_ip="1000000/minute",
        rate_limit_principal="1000000/minute",
        request_poll_s=0.25,
        stream_no_repeat_count=1,
        stream_no_repeat_s=0.0,
    )
    ensure_dagster_home(settings)
    lh = Lakehouse(settings.resolved_lakehouse_uri)
    lh.ensure_all()
    _rotation(lh, 4, rotation_s)
    db = Database(settings.resolved_app_database_url)
    db.migrate()
    station = InMemoryStationState()

    class Null(Output):
        name = "null"

        def write(self, block: Any) -> None:
            pass

    streamer = build_streamer(
        settings,
        lakehouse=lh,
        station=station,
        clock=RealClock(),
        outputs=[OutputSpec("null", Null)],
    )
    stop = threading.Event()
    air = threading.Thread(target=streamer.run, kwargs={"stop": stop}, daemon=True)
    air.start()
    ctx = build_context(
        settings, db=db, lakehouse=lh, station=station, pipeline=EmbeddedLauncher(settings)
    )
    rng = random.Random(11)
    results = []
    changes = station.subscribe()
    try:
        with TestClient(create_app(context=ctx)) as client:
            for i in range(n):
                time.sleep(rng.uniform(0.0, rotation_s))  # somewhere into a rotation track
                email = f"bench{i}-{time.time_ns()}@example.com"
                client.post(
                    "/api/v1/auth/register",
                    json={"email": email, "display_name": "B", "password": "Tempo-Rubato-42"},
                )
                token = client.post(
                    "/api/v1/auth/login", json={"email": email, "password": "Tempo-Rubato-42"}
                ).json()["access_token"]
                headers = {"Authorization": f"Bearer {token}"}
                posted = datetime.now(UTC)
                r = client.post(
                    "/api/v1/requests",
                    json={"prompt": "bench request", "genre": "house", "duration_s": duration},
                    headers=headers,
                )
                if r.status_code != 201:
                    raise SystemExit(f"request refused: {r.text}")
                rid = r.json()["request_id"]
                ready_at = None
                deadline = time.monotonic() + 600
                while time.monotonic() < deadline:
                    change = changes.get(timeout_s=0.2)
                    np = change.now_playing if change is not None else None
                    if np is not None and np.request_id == rid:
                        started = np.started_at
                        break
                    if ready_at is None:
                        body = client.get(f"/api/v1/requests/{rid}", headers=headers).json()
                        if body["status"] == "queued_on_air":
                            ready_at = datetime.now(UTC)
                        elif body["status"] == "failed":
                            raise SystemExit(f"request failed: {body['reason']}")
                else:
                    raise SystemExit("the request did not air within 10 minutes")
                ready_at = ready_at or started
                results.append(
                    {
                        "ready_s": (ready_at - posted).total_seconds(),
                        "wait_s": max(0.0, (started - ready_at).total_seconds()),
                        "to_air_s": (started - posted).total_seconds(),
                    }
                )
                print(
                    f"  request {i + 1}/{n}: ready {results[-1]['ready_s']:.1f} s, "
                    f"on air {results[-1]['to_air_s']:.1f} s after POST",
                    flush=True,
                )
                station.send_command("skip", issued_by="bench")  # back to the rotation
    finally:
        changes.close()
        stop.set()
        air.join(timeout=30)
        db.dispose()
    return results


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--events", type=int, default=2000, help="distinct webhook events per store")
    p.add_argument(
        "--postgres-url",
        default=os.environ.get("SONICFORGE_TEST_POSTGRES_URL"),
        help="PostgreSQL for the webhook figures (default: SONICFORGE_TEST_POSTGRES_URL)",
    )
    p.add_argument("--concurrency", type=int, default=8, help="webhook deliveries in flight")
    p.add_argument("--requests", type=int, default=3, help="track requests timed to air")
    p.add_argument("--duration", type=float, default=60.0, help="seconds per requested track")
    p.add_argument(
        "--rotation-track-s",
        type=float,
        default=180.0,
        help="rotation track length (the station airs 180 s tracks)",
    )
    p.add_argument("--skip-air", action="store_true", help="webhook figures only")
    p.add_argument("--output", type=Path, default=None, help="write the figures as JSON here")
    args = p.parse_args()
    import logging

    logging.disable(logging.WARNING)

    figures: dict[str, Any] = {"measured_at": datetime.now(UTC).isoformat()}
    print(f"webhooks: {args.events} events per store, one in five delivered twice")
    stores: list[tuple[str, Any, Any]] = [("sqlite", sqlite_db(), None)]
    if args.postgres_url:
        db, drop = postgres_db(args.postgres_url)
        stores.append(("postgresql", db, drop))
    else:
        print("  (no PostgreSQL URL: --postgres-url or SONICFORGE_TEST_POSTGRES_URL)")
    rows = []
    for name, db, drop in stores:
        try:
            f = webhook_figures(db, args.events, name, args.concurrency)
        finally:
            if drop is not None:
                drop()
            else:
                db.dispose()
        figures[f"webhooks_{name}"] = f
        rows.append((name, f))
    print(
        f"\n{'store':<11} {'baseline ins/s':>15} {'apply_event/s':>14} {'group commit/s':>15} "
        f"{'HTTP events/s':>14} {'GET /live/s':>12}  target"
    )
    for name, f in rows:
        ok = f["group_commit_events_per_s"] >= TARGET_EVENTS_PER_S
        http_ok = f["http_events_per_s"] >= TARGET_EVENTS_PER_S
        print(
            f"{name:<11} {f['baseline_inserts_per_s']:>15.0f} {f['direct_events_per_s']:>14.0f} "
            f"{f['group_commit_events_per_s']:>15.0f} "
            f"{f['http_events_per_s']:>14.0f} {f['http_floor_get_live_per_s']:>12.0f}  "
            f">= {TARGET_EVENTS_PER_S:.0f}/s: group commit {'met' if ok else 'MISSED'}, "
            f"HTTP {'met' if http_ok else 'MISSED'}"
        )
    if not args.skip_air:
        print(
            f"\nrequest to air: {args.requests} requests of {args.duration:g} s (procedural), "
            f"rotation tracks of {args.rotation_track_s:g} s, real-time streamer"
        )
        air = air_figures(args.requests, args.duration, args.rotation_track_s)
        p50 = statistics.median(r["to_air_s"] for r in air)
        figures["request_to_air"] = {
            "runs": air,
            "p50_s": p50,
            "ready_p50_s": statistics.median(r["ready_s"] for r in air),
            "wait_p50_s": statistics.median(r["wait_s"] for r in air),
            "duration_s": args.duration,
            "rotation_track_s": args.rotation_track_s,
        }
        print(f"\n{'':<22} {'p50 s':>7} {'max s':>7}")
        for key, label in (("ready_s", "POST -> queued_on_air"), ("wait_s", "wait for track on air"),
                           ("to_air_s", "POST -> first audio")):  # fmt: skip
            values = [r[key] for r in air]
            print(f"{label:<22} {statistics.median(values):>7.1f} {max(values):>7.1f}")
        print(
            f"request-to-air p50 {p50:.1f} s: target <= {TARGET_AIR_P50_S:.0f} s "
            f"{'met' if p50 <= TARGET_AIR_P50_S else 'MISSED'}"
        )
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
