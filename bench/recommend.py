"""Recommender benchmark: training time and memory, offline metrics of the
champion against the baselines in the same run, and serving latency.

    .venv/bin/python bench/recommend.py                 # the default: 30k x 5k x 1.5M
    .venv/bin/python bench/recommend.py --full          # 100k listeners x 10k tracks x 5M plays
    .venv/bin/python bench/recommend.py --skip-serving  # training and metrics only

1. Simulated listeners with known tastes (``models.recommend.simulate``;
   every row is simulated) over ``--days`` days; the catalog grows daily.
2. Every candidate and baseline is trained on the days before the last
   seven and evaluated on those seven (``models.recommend.train``): NDCG,
   precision and recall at 10 and coverage, overall and on the cold-start
   slice (tracks with fewer than 5 training interactions). The champion's
   fit is timed alone and its peak memory read from the kernel
   (VmHWM, reset before the fit). Targets: fit <= 60 s at full size;
   champion NDCG@10 >= 1.2x TopPop overall and >= 1.5x on cold start.
3. Serving: the champion is registered in an MLflow store and the API
   (``uvicorn serving.app:create_app``, one worker, rate limits raised so
   this measures the recommendation path) serves the simulated catalog as
   its on-air tracks; the champion is loaded by the API's own poller. Each
   endpoint is loaded for ``--duration`` seconds from this process (wrk
   when on PATH, else a Python client, which saturates first and so
   understates throughput): requests per second, p50 and p99.
   Target: p99 < 10 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
warnings.filterwarnings("ignore", module="implicit")

SIZES = {
    "small": (5_000, 1_500, 250_000),
    "default": (30_000, 5_000, 1_500_000),
    "full": (100_000, 10_000, 5_000_000),
}
APP_USERS = int(os.environ.get("SF_BENCH_ACCOUNTS", "200"))


def peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def reset_peak_rss() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def train(args: argparse.Namespace) -> tuple[Any, Any, dict[str, float]]:
    from models.recommend.simulate import SimConfig, simulate, to_dataset
    from models.recommend.train import TrainConfig, train_and_evaluate

    listeners, tracks, plays = args.size
    t0 = time.perf_counter()
    world, events = simulate(
        SimConfig(listeners=listeners, tracks=tracks, plays=plays, days=args.days, seed=args.seed)
    )
    ds = to_dataset(world, events)
    sim_s = time.perf_counter() - t0
    print(
        f"simulated {ds.n_users:,} listeners x {ds.n_items:,} tracks, {ds.rows:,} events "
        f"({plays:,} plays with their votes and shares) in {sim_s:.1f} s"
    )
    config = TrainConfig(max_eval_users=args.eval_users, seed=args.seed)
    t0 = time.perf_counter()
    result = train_and_evaluate(ds, config, log=lambda m: print("  " + m, flush=True))
    total_s = time.perf_counter() - t0
    # The champion's fit alone, with its own peak memory.
    reset = reset_peak_rss()
    before = peak_rss_mb()
    model = config.build(result.chosen, content_scale=result.content_scale)
    t0 = time.perf_counter()
    model.fit(result.split.train_pos, ds.item_features)
    fit_s = time.perf_counter() - t0
    figures = {
        "fit_s": fit_s,
        "peak_mb": peak_rss_mb(),
        "rss_before_mb": before,
        "peak_reset": float(reset),
        "pipeline_s": total_s,
        "train_pairs": float(result.split.train_pos.nnz),
    }
    return ds, result, figures


def print_metrics(result: Any, figures: dict[str, float], *, full: bool) -> bool:
    print()
    print(f"{'model':<22}{'NDCG@10':>9}{'P@10':>8}{'R@10':>8}{'cover':>7} | "
          f"{'cold NDCG':>9}{'cold P':>8}{'cold R':>8}{'cover':>7} | {'fit s':>6}")  # fmt: skip
    for name, r in result.reports.items():
        label = name + (" (champion)" if name == result.chosen else "")
        o, c = r.overall, r.cold
        print(f"{label:<22}{o.ndcg:>9.4f}{o.precision:>8.4f}{o.recall:>8.4f}{o.coverage:>7.2f} | "
              f"{c.ndcg:>9.4f}{c.precision:>8.4f}{c.recall:>8.4f}{c.coverage:>7.2f} | "
              f"{result.fit_seconds.get(name, 0):>6.1f}")  # fmt: skip
    for name, why in result.skipped.items():
        print(f"{name:<22}skipped: {why}")
    champ, pop = result.reports[result.chosen], result.reports["toppop"]
    lift = champ.overall.ndcg / pop.overall.ndcg - 1 if pop.overall.ndcg else float("inf")
    cold_lift = champ.cold.ndcg / pop.cold.ndcg - 1 if pop.cold.ndcg else float("inf")
    ok_lift, ok_cold = lift >= 0.2, cold_lift >= 0.5
    ok_fit = figures["fit_s"] <= 60.0
    print()
    print(
        f"champion {result.chosen} (content scale {result.content_scale:g}, tuned on a validation split)"
    )
    print(
        f"  NDCG@10 vs TopPop overall:    {lift:+.0%}  (target >= +20%)  {'met' if ok_lift else 'MISSED'}"
    )
    print(
        f"  NDCG@10 vs TopPop cold start: {cold_lift:+.0%}  (target >= +50%)  {'met' if ok_cold else 'MISSED'}"
    )
    print(
        f"  champion fit: {figures['fit_s']:.1f} s on {figures['train_pairs']:,.0f} training pairs"
        f"  (target <= 60 s{' at full size' if not full else ''})  {'met' if ok_fit else 'MISSED'}"
    )
    peak = "" if figures["peak_reset"] else " (peak not reset: process peak)"
    print(
        f"  peak memory during the fit: {figures['peak_mb']:,.0f} MB resident"
        f" (before it: {figures['rss_before_mb']:,.0f} MB){peak}"
    )
    print(f"  whole run (tuning, 7 models fitted and evaluated): {figures['pipeline_s']:.1f} s")
    return ok_lift and ok_cold and ok_fit


# -- serving -------------------------------------------------------------------
def service_latency(ds: Any, result: Any, calls: int) -> dict[str, tuple[float, float]]:
    """p50 and p99 (ms) of the service's own work per request, in process:
    ranking and reasons, without HTTP, auth or the load generator."""
    import numpy as np

    from serving.schemas.tracks import TrackPublic
    from serving.services.recommend import LoadedModel, RecommendationService, ServingIndex

    now = datetime.now(UTC)
    tracks = [
        TrackPublic(
            track_id=str(m["track_id"]), genre=m["genre"], bpm=float(m["bpm"]),
            musical_key=m["musical_key"], duration_s=180.0, prompt="simulated",
            backend="simulated", model_name="simulated", model_version="1",
            created_at=now - timedelta(minutes=n), score=None, master=None, plays=n % 17,
            on_air=True, audio_url=None,
        )
        for n, m in enumerate(ds.item_meta)
    ]  # fmt: skip
    t0 = time.perf_counter()
    model = LoadedModel("bench", result.artifact, time.time())
    idx = ServingIndex(tracks, model, {}, ("bench",))
    build_s = time.perf_counter() - t0
    svc = RecommendationService(
        catalog=None, lakehouse=None, db=None, tracking_uri="", artifact_root=None,
        model_name="", alias="champion", poll_s=0,
    )  # fmt: skip
    rng = np.random.default_rng(0)
    users = [str(u) for u in rng.choice(result.artifact.user_ids, calls)]
    seeds = [tracks[int(t)] for t in rng.integers(0, len(tracks), calls)]
    out = {}
    for name, fn in (
        ("personalized", lambda k: svc.personalized(idx, users[k], limit=10)),
        ("similar/{id}", lambda k: svc.similar(idx, seeds[k], limit=10)),
        ("trending", lambda k: svc.trending(idx, limit=10)),
    ):
        lat = []
        for k in range(calls):
            t = time.perf_counter()
            fn(k)
            lat.append(time.perf_counter() - t)
        arr = np.array(lat) * 1000
        out[name] = (float(np.percentile(arr, 50)), float(np.percentile(arr, 99)))
    print(f"\nservice in process ({len(tracks):,} candidates, index built in {build_s:.2f} s, "
          f"{calls} calls each): " + ", ".join(f"{k} p50 {a:.2f} / p99 {b:.2f} ms" for k, (a, b) in out.items()))  # fmt: skip
    return out


def seed_lake(root: Path, ds: Any) -> list[str]:
    """The simulated catalog as the lakehouse's on-air tracks."""
    from sonicforge.lakehouse import Lakehouse

    lake = Lakehouse(str(root / "lake"))
    now = datetime.now(UTC)
    tracks, scores, masters, rotation = [], [], [], []
    for n, meta in enumerate(ds.item_meta):
        tid, created = str(meta["track_id"]), now - timedelta(minutes=n)
        tracks.append({
            "track_id": tid, "batch_id": "b-sim", "genre": meta["genre"], "prompt": "simulated",
            "prompt_version": "v1", "bpm": float(meta["bpm"]), "musical_key": meta["musical_key"],
            "duration_s": 180.0, "requested_duration_s": 180.0, "sample_rate": 44100, "channels": 2,
            "backend": "simulated", "model_name": "simulated", "model_version": "1", "seed": n,
            "raw_uri": f"raw/{tid}.flac", "sha256": "0" * 64, "generation_s": 1.0,
            "created_at": created, "request_id": None, "dagster_run_id": None, "mlflow_run_id": None,
        })  # fmt: skip
        scores.append({
            "track_id": tid, "batch_id": "b-sim", "integrated_lufs": -15.0, "true_peak_dbtp": -1.2,
            "loudness_range_lu": 5.0, "clipping_ratio": 0.0, "silence_ratio": 0.0, "dc_offset": 0.0,
            "nonfinite_ratio": 0.0, "tempo_bpm_est": float(meta["bpm"]), "tempo_error": 0.0,
            "spectral_centroid_hz": 2000.0, "spectral_flatness": 0.1, "stereo_correlation": 0.9,
            "duration_s": 180.0, "quality_score": 80.0, "passed": True, "reasons": [],
            "scorer_version": "sim", "scored_at": created,
        })  # fmt: skip
        masters.append({
            "track_id": tid, "batch_id": "b-sim", "master_uri": f"masters/{tid}.flac",
            "master_sha256": "0" * 64,
            "renditions": [{"codec": "mp3", "bitrate_kbps": 128, "uri": f"masters/{tid}.mp3", "sha256": "0" * 64}],
            "duration_s": 180.0, "sample_rate": 44100, "lufs_before": -15.0, "lufs_after": -14.0,
            "true_peak_after": -1.0, "chain_version": "sim", "mastered_at": created,
        })  # fmt: skip
        rotation.append({
            "track_id": tid, "batch_id": "b-sim", "genre": meta["genre"], "weight": 1.0,
            "duration_s": 180.0, "quality_score": 80.0, "eligible_from": created, "retired_at": None,
        })  # fmt: skip
    for table, rows in (("tracks", tracks), ("track_scores", scores),
                        ("mastered_tracks", masters), ("rotation", rotation)):  # fmt: skip
        lake.insert_new(table, rows)
    lake.ensure("plays")
    return [str(t["track_id"]) for t in tracks]


def seed_users(database: str, n: int) -> list[tuple[str, str, str]]:
    from serving.db.models import RefreshFamily, User
    from serving.db.session import Database

    db = Database(database)
    db.migrate()
    sessions = []
    with db.session() as s:
        for u in range(n):
            user = User(email=f"sim{u}@example.com", display_name="sim", password_hash="x" * 60)
            s.add(user)
            s.flush()
            family = RefreshFamily(user_id=user.id, current_jti=secrets.token_hex(16))
            s.add(family)
            s.flush()
            sessions.append((user.id, family.id, "listener"))
        s.commit()
    db.dispose()
    return sessions


WRK_SCRIPT = """
local i = 0
local paths = {%s}
local tokens = {%s}
request = function()
  i = i + 1
  local headers = {["X-Forwarded-For"] = string.format("10.0.%%d.%%d", math.floor(i / 256) %% 256, i %% 256)}
  if #tokens > 0 then headers["Authorization"] = "Bearer " .. tokens[(i %% #tokens) + 1] end
  return wrk.format("GET", paths[(i %% #paths) + 1], headers)
end
"""  # bench/api.py's run_wrk adds the JSON report


def load_wrk(
    base: str, paths: list[str], tokens: list[str], seconds: float, connections: int
) -> dict[str, float]:
    script = WRK_SCRIPT % (
        ",".join(json.dumps(p) for p in paths),
        ",".join(json.dumps(t) for t in tokens),
    )
    from api import run_wrk  # bench/api.py: wrk with its JSON report

    return run_wrk(base, seconds, connections, script)


async def load_python(
    base: str, paths: list[str], tokens: list[str], seconds: float, connections: int
) -> dict[str, float]:
    import httpx

    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=5.0) as client:

        async def worker(k: int) -> None:
            nonlocal errors
            i = k
            while time.perf_counter() < deadline:
                headers = {"X-Forwarded-For": f"10.0.{(i >> 8) & 255}.{i & 255}"}
                if tokens:
                    headers["Authorization"] = f"Bearer {tokens[i % len(tokens)]}"
                t0 = time.perf_counter()
                r = await client.get(paths[i % len(paths)], headers=headers)
                latencies.append(time.perf_counter() - t0)
                errors += r.status_code != 200
                i += connections

        t0 = time.perf_counter()
        await asyncio.gather(*(worker(k) for k in range(connections)))
        elapsed = time.perf_counter() - t0
    latencies.sort()
    n = len(latencies)
    return {
        "rps": n / elapsed,
        "p50_ms": latencies[n // 2] * 1000,
        "p99_ms": latencies[min(n - 1, int(n * 0.99))] * 1000,
        "errors": errors,
    }


async def load_rate(
    base: str, paths: list[str], tokens: list[str], rate: float, seconds: float
) -> dict[str, float]:
    """Open loop at ``rate`` requests a second: each latency counts from when
    its request was due, so a stalled server is not hidden by a waiting client."""
    import httpx

    latencies: list[float] = []
    errors = 0
    n = int(rate * seconds)
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=5.0) as client:

        async def one(i: int, due: float) -> None:
            nonlocal errors
            headers = {"X-Forwarded-For": f"10.1.{(i >> 8) & 255}.{i & 255}"}
            if tokens:
                headers["Authorization"] = f"Bearer {tokens[i % len(tokens)]}"
            try:
                r = await client.get(paths[i % len(paths)], headers=headers)
                errors += r.status_code != 200
            except httpx.HTTPError:
                errors += 1
            latencies.append(time.perf_counter() - due)

        t0 = time.perf_counter()
        tasks = []
        for i in range(n):
            due = t0 + i / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(i, due)))
        await asyncio.gather(*tasks)
    latencies.sort()
    return {
        "rps": rate,
        "p50_ms": latencies[len(latencies) // 2] * 1000,
        "p99_ms": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000,
        "errors": errors,
    }


def serve(args: argparse.Namespace, ds: Any, result: Any) -> bool:
    import httpx
    import numpy as np

    from models.recommend.registry import RecommenderRegistry

    tmp = Path(tempfile.mkdtemp(prefix="sf-bench-rec-"))
    try:
        t0 = time.perf_counter()
        track_ids = seed_lake(tmp, ds)
        database = f"sqlite:///{tmp / 'app.db'}"
        sessions = seed_users(database, APP_USERS)
        # The first listeners of the simulation are these accounts.
        artifact = result.artifact
        ids = artifact.user_ids.copy()
        ids[:APP_USERS] = [u for u, _, _ in sessions]
        artifact.user_ids = ids
        artifact.__post_init__()
        registry = RecommenderRegistry(
            f"sqlite:///{tmp / 'mlflow.db'}", artifact_root=tmp / "mlartifacts"
        )
        version = registry.log_training(result, params={"bench": True})
        registry.promote(version.version)
        print(f"\nserving: lake, {APP_USERS} accounts and champion v{version.version} ready in "
              f"{time.perf_counter() - t0:.1f} s")  # fmt: skip
        secret = secrets.token_hex(32)
        port = args.port
        env = {
            **os.environ,
            "SONICFORGE_VAR_DIR": str(tmp / "var"),
            "SONICFORGE_LAKEHOUSE_URI": str(tmp / "lake"),
            "SONICFORGE_APP_DATABASE_URL": database,
            "SONICFORGE_MLFLOW_TRACKING_URI": f"sqlite:///{tmp / 'mlflow.db'}",
            "SONICFORGE_JWT_SECRET": secret,
            "SONICFORGE_ENVIRONMENT": "test",
            "SONICFORGE_BCRYPT_ROUNDS": "4",
            "SONICFORGE_ACCESS_LOG": "false",
            "SONICFORGE_RATE_LIMIT_IP": "1000000/minute",
            "SONICFORGE_RATE_LIMIT_PRINCIPAL": "1000000/minute",
            "SONICFORGE_RECOMMEND_POLL_S": os.environ.get("SF_BENCH_POLL_S", "5"),
        }
        log = open(tmp / "api.log", "wb")  # noqa: SIM115
        api = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "--factory", "serving.app:create_app",
             "--host", "127.0.0.1", "--port", str(port), "--no-access-log", "--log-level", "warning"],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            base = f"http://127.0.0.1:{port}"
            from bench.api import access_tokens  # the API's own token format

            tokens = access_tokens(secret, sessions)
            deadline = time.monotonic() + 180
            while True:
                try:
                    r = httpx.get(f"{base}/api/v1/recommendations/personalized",
                                  headers={"Authorization": f"Bearer {tokens[0]}"}, timeout=30)  # fmt: skip
                    if r.status_code == 200 and r.json()["strategy"] == "personalized":
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline or api.poll() is not None:
                    print(
                        "FAIL: the API did not serve the champion:",
                        (tmp / "api.log").read_text()[-2000:],
                    )
                    return False
                time.sleep(0.5)
            rng = np.random.default_rng(0)
            sample = [str(t) for t in rng.choice(track_ids, 200, replace=False)]
            genres = ["house", "techno", "ambient", "lofi_hip_hop"]
            endpoints = {
                "personalized": (["/api/v1/recommendations/personalized"], tokens),
                "similar/{id}": ([f"/api/v1/recommendations/similar/{t}" for t in sample], []),
                "trending": (["/api/v1/recommendations/trending"]
                             + [f"/api/v1/recommendations/trending?genre={g}" for g in genres], []),
            }  # fmt: skip
            loader = "wrk" if shutil.which("wrk") else "python (httpx; saturates first)"
            print(
                f"{len(track_ids):,} tracks on air, {len(tokens)} signed-in listeners the model knows"
            )
            print(f"p99 at the read load: {args.rate:g} requests/s per endpoint, open loop, "
                  f"{args.duration:g} s; throughput: {loader}, {args.connections} connections, closed loop")  # fmt: skip
            print(f"{'endpoint':<16}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}  p99<10ms | "
                  f"{'max req/s':>10}{'p50 ms':>9}{'p99 ms':>9}")  # fmt: skip
            ok = True
            # A warm server: two seconds of load on each endpoint first (the
            # first catalog check and lazy imports are start-up costs).
            for paths, toks in endpoints.values():
                asyncio.run(load_rate(base, paths, toks, args.rate, 2.0))
            for name, (paths, toks) in endpoints.items():
                at_rate = asyncio.run(load_rate(base, paths, toks, args.rate, args.duration))
                if shutil.which("wrk"):
                    sat = load_wrk(base, paths, toks, args.duration, args.connections)
                else:
                    sat = asyncio.run(
                        load_python(base, paths, toks, args.duration, args.connections)
                    )
                met = at_rate["p99_ms"] < 10.0 and at_rate["errors"] == 0 and sat["errors"] == 0
                ok &= met
                print(f"{name:<16}{at_rate['p50_ms']:>9.2f}{at_rate['p99_ms']:>9.2f}"
                      f"{at_rate['errors'] + sat['errors']:>8.0f}  {'met' if met else 'MISSED':<8} | "
                      f"{sat['rps']:>10.0f}{sat['p50_ms']:>9.2f}{sat['p99_ms']:>9.2f}")  # fmt: skip
            return ok
        finally:
            api.terminate()
            try:
                api.wait(10)
            except subprocess.TimeoutExpired:
                api.kill()
            log.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--full", action="store_true", help="100k listeners x 10k tracks x 5M plays")
    p.add_argument("--small", action="store_true", help="5k listeners x 1.5k tracks x 250k plays")
    p.add_argument("--listeners", type=int)
    p.add_argument("--tracks", type=int)
    p.add_argument("--plays", type=int)
    p.add_argument("--days", type=int, default=28)
    p.add_argument(
        "--eval-users", type=int, default=10_000, help="test listeners sampled per model"
    )
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--skip-serving", action="store_true")
    p.add_argument("--duration", type=float, default=5.0, help="seconds of load per endpoint")
    p.add_argument("--connections", type=int, default=8)
    p.add_argument("--calls", type=int, default=2000, help="in-process service calls per endpoint")
    p.add_argument(
        "--rate", type=float, default=200.0, help="requests/s for the p99 (the read load)"
    )
    p.add_argument("--port", type=int, default=8771)
    args = p.parse_args()
    size = SIZES["full" if args.full else "small" if args.small else "default"]
    args.size = (args.listeners or size[0], args.tracks or size[1], args.plays or size[2])
    ds, result, figures = train(args)
    ok = print_metrics(result, figures, full=args.size == SIZES["full"])
    service_latency(ds, result, args.calls)
    if not args.skip_serving:
        ok &= serve(args, ds, result)
    print("\nPASS" if ok else "\nsome targets MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
