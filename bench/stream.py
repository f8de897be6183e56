"""Streaming benchmark: CPU per second of air, peak memory, listener capacity.

    .venv/bin/python bench/stream.py [--air 60] [--max-listeners 400]

1. CPU: the streamer runs on a virtual clock (as fast as it can) over
   synthetic masters; process CPU time (all threads) / seconds of air, for
   playout alone, + the HLS ladder, + the MP3 mount and visualizer feed,
   + one RTMP video push (to a local nginx-rtmp when installed). Each case
   runs in its own process, so its peak RSS is its own.
2. Listeners: a real-time streamer, the listener app under uvicorn (one
   worker), and N MP3 listeners plus N HLS listeners on loopback; N grows
   until the p99 latency of HLS segment fetches passes 200 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import random
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

CASES = {
    "playout": (),
    "hls": ("hls",),
    "hls+mp3+viz": ("hls", "mp3", "viz"),
    "hls+mp3+viz+rtmp": ("hls", "mp3", "viz", "rtmp"),
}
NGINX_MODULE = "/usr/lib/nginx/modules/ngx_rtmp_module.so"


def make_lake(root: Path, *, tracks: int = 6, seconds: float = 40.0) -> str:
    """Masters that exercise an encoder: chords, a beat and some noise."""
    import numpy as np
    import soundfile as sf

    from sonicforge.lakehouse import Lakehouse

    lh = Lakehouse(str(root / "lake"))
    lh.ensure_all()
    sr, rng, epoch = 44100, np.random.default_rng(1), datetime(2020, 1, 1, tzinfo=UTC)
    mastered, rotation = [], []
    for i in range(tracks):
        t = np.arange(int(seconds * sr)) / sr
        root_hz = 110 * 2 ** (i / 5)
        chord = sum(np.sin(2 * np.pi * root_hz * r * t) for r in (1, 1.26, 1.5, 2.0)) / 4
        beat = np.exp(-30 * (t % 0.5)) * np.sin(2 * np.pi * 60 * t)
        noise = rng.standard_normal(t.size) * 0.05 * (t % 0.25 < 0.05)
        mono = 0.3 * chord + 0.4 * beat + noise
        pcm = np.stack([mono, np.roll(mono, 200)], axis=1).astype(np.float32) * 0.6
        buf = io.BytesIO()
        sf.write(buf, pcm, sr, format="FLAC")
        uri, sha = lh.audio.put(f"masters/b{i}.flac", buf.getvalue())
        mastered.append({
            "track_id": f"b{i}", "batch_id": "bench", "master_uri": uri, "master_sha256": sha,
            "renditions": [], "duration_s": seconds, "sample_rate": sr, "lufs_before": -14.0,
            "lufs_after": -14.0, "true_peak_after": -1.0, "chain_version": "bench", "mastered_at": epoch,
        })  # fmt: skip
        rotation.append({
            "track_id": f"b{i}", "batch_id": "bench", "genre": "house", "weight": 1.0,
            "duration_s": seconds, "quality_score": 80.0, "eligible_from": epoch, "retired_at": None,
        })  # fmt: skip
    lh.upsert("mastered_tracks", mastered)
    lh.upsert("rotation", rotation)
    return lh.root_uri


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_nginx(root: Path) -> tuple[subprocess.Popen[bytes], int] | None:
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if not (os.path.exists(nginx) and os.path.exists(NGINX_MODULE)):
        return None
    port = free_port()
    root.mkdir(parents=True, exist_ok=True)
    (root / "nginx.conf").write_text(
        f"load_module {NGINX_MODULE}; daemon off; master_process off; pid {root}/n.pid;"
        f"error_log {root}/error.log; events {{ worker_connections 64; }}"
        f"rtmp {{ server {{ listen 127.0.0.1:{port}; application live {{ live on; }} }} }}"
    )
    proc = subprocess.Popen(
        [nginx, "-c", str(root / "nginx.conf"), "-p", str(root), "-e", str(root / "error.log")]
    )
    for _ in range(100):
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return proc, port
        time.sleep(0.05)
    proc.terminate()
    return None


def _status_mb(field: str) -> float:
    """A memory figure of this process from /proc (VmRSS now, VmHWM peak)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def child_cpu(case: str, air_s: float, work: Path, lake: str) -> dict[str, object]:
    """One case in this (fresh) process; prints its figures as JSON."""
    from sonicforge.lakehouse import Lakehouse
    from sonicforge.settings import Settings
    from sonicforge.station import InMemoryStationState
    from streaming.clock import VirtualClock
    from streaming.service import build_streamer, output_specs

    nginx = start_nginx(work / "nginx") if "rtmp" in CASES[case] else None
    extra: dict[str, object] = {}
    if nginx is not None:
        extra["stream_rtmp_targets"] = json.dumps(
            [{"name": "bench", "url": f"rtmp://127.0.0.1:{nginx[1]}/live/benchkey"}]
        )
    settings = Settings(var_dir=work / "var", stream_dir=work / "stream", **extra)  # type: ignore[arg-type]
    clock = VirtualClock()
    station = InMemoryStationState(clock=clock.now)
    outputs = CASES[case]
    streamer = build_streamer(
        settings,
        lakehouse=Lakehouse(lake),
        station=station,
        clock=clock,
        rng=random.Random(0),
        outputs=output_specs(settings, outputs=outputs, station=station),  # type: ignore[arg-type]
        backpressure=True,
    )
    rss_start = _status_mb("VmRSS")
    before = resource.getrusage(resource.RUSAGE_SELF)
    wall = time.perf_counter()
    streamer.run(max_air_s=air_s)
    wall = time.perf_counter() - wall
    after = resource.getrusage(resource.RUSAGE_SELF)
    if nginx is not None:
        nginx[0].terminate()
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {
        "case": case,
        "cpu_per_air": cpu / air_s,
        "speed": air_s / wall,
        "peak_rss_mb": _status_mb("VmHWM"),
        "start_rss_mb": rss_start,
        "rtmp": "rtmp" in outputs and nginx is not None,
    }


async def listen_load(
    base: str, n: int, seconds: float, segment_s: float
) -> tuple[list[float], int]:
    """n MP3 listeners reading and n HLS listeners fetching a segment every
    segment_s; returns the HLS segment fetch latencies (s) and the errors."""
    import httpx

    latencies: list[float] = []
    errors = 0
    # Listeners join over the first 2 s (not in one instant) and fetches of
    # that ramp are not counted: the figure is for a steady audience.
    warm = time.monotonic() + 2.0
    deadline = warm + seconds
    limits = httpx.Limits(max_connections=4 * n + 10, max_keepalive_connections=2 * n + 10)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=10) as client:

        async def mp3() -> None:
            nonlocal errors
            await asyncio.sleep(random.random() * 2.0)
            try:
                async with client.stream("GET", "/stream.mp3") as r:
                    r.raise_for_status()
                    async for _ in r.aiter_bytes():
                        if time.monotonic() > deadline:
                            return
            except httpx.HTTPError:
                errors += 1

        async def hls() -> None:
            nonlocal errors
            await asyncio.sleep(random.random() * 2.0)
            while time.monotonic() < deadline:
                try:
                    playlist = (await client.get("/hls/aac_128k/index.m3u8")).text
                    uri = [ln for ln in playlist.splitlines() if ln.endswith(".ts")][-1]
                    start = time.monotonic()
                    r = await client.get(f"/hls/aac_128k/{uri}")
                    r.raise_for_status()
                    if start > warm:
                        latencies.append(time.monotonic() - start)
                except (httpx.HTTPError, IndexError):
                    errors += 1
                await asyncio.sleep(segment_s)

        await asyncio.gather(*(mp3() for _ in range(n)), *(hls() for _ in range(n)))
    return latencies, errors


def listeners(work: Path, max_n: int) -> list[tuple[int, float, int, int]]:
    lake = make_lake(work)
    env = {
        **os.environ,
        "SONICFORGE_VAR_DIR": str(work / "var"),
        "SONICFORGE_LAKEHOUSE_URI": lake,
        "SONICFORGE_STREAM_DIR": str(work / "stream"),
        "SONICFORGE_STREAM_HLS_SEGMENT_S": "2",
        "SONICFORGE_LOG_LEVEL": "WARNING",
    }
    port = free_port()
    root = str(Path(__file__).resolve().parents[1])
    streamer = subprocess.Popen(
        [sys.executable, "-m", "cli.main", "stream"], cwd=root, env=env, stderr=subprocess.DEVNULL
    )
    api = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--factory", "streaming.http:create_stream_app",
         "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
        cwd=root, env=env,
    )  # fmt: skip
    results: list[tuple[int, float, int, int]] = []
    try:
        while not (work / "stream" / "hls" / "aac_128k" / "index.m3u8").exists():
            time.sleep(0.2)
        time.sleep(3)
        n = 10
        while n <= max_n:
            found, errors = asyncio.run(listen_load(f"http://127.0.0.1:{port}", n, 8.0, 2.0))
            lat = sorted(found)
            p99 = lat[min(len(lat) - 1, int(0.99 * len(lat)))] if lat else float("inf")
            results.append((n, p99, len(lat), errors))
            print(
                f"  N={n}: p99 {1000 * p99:.1f} ms over {len(lat)} fetches, {errors} errors",
                flush=True,
            )
            if p99 > 0.2 or errors:
                break
            n = n * 2 if n < 160 else n + 50
    finally:
        for proc in (api, streamer):
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--air", type=float, default=60.0, help="seconds of air per CPU case")
    parser.add_argument("--max-listeners", type=int, default=400)
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--lake", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--skip-listeners", action="store_true")
    args = parser.parse_args()
    if args.child:
        with tempfile.TemporaryDirectory() as tmp:
            print(json.dumps(child_cpu(args.child, args.air, Path(tmp), args.lake)))
        return
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        # One set of masters for every case; each case runs in a fresh
        # process so that its peak RSS is its own.
        lake = make_lake(Path(tmp))
        for case in CASES:
            out = subprocess.run(
                [sys.executable, __file__, "--child", case, "--air", str(args.air), "--lake", lake],
                capture_output=True, text=True, check=True,
            )  # fmt: skip
            rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    base = rows[0]["cpu_per_air"]
    print(f"\nCPU per second of air ({args.air:g} s of air per case, 48 kHz stereo)")
    print(
        f"{'case':<22}{'core %':>8}{'outputs %':>11}{'x realtime':>12}"
        f"{'RSS at start MB':>17}{'peak RSS MB':>13}"
    )
    for r in rows:
        note = "" if r["case"] != "hls+mp3+viz+rtmp" or r["rtmp"] else "  (no nginx: not pushed)"
        print(
            f"{r['case']:<22}{100 * r['cpu_per_air']:>8.1f}{100 * (r['cpu_per_air'] - base):>11.1f}"
            f"{r['speed']:>12.1f}{r['start_rss_mb']:>17.0f}{r['peak_rss_mb']:>13.0f}{note}"
        )
    by_case = {r["case"]: r for r in rows}
    audio = by_case["hls+mp3+viz"]["cpu_per_air"]
    print(f"playout + audio outputs: {100 * audio:.1f} % of a core (target < 10 %)")
    with_video = by_case["hls+mp3+viz+rtmp"]
    if with_video["rtmp"]:
        video = with_video["cpu_per_air"] - audio
        print(f"RTMP video push alone:   {100 * video:.1f} % of a core (target < 50 %)")
    else:  # without a target the RTMP output is never built: nothing was measured
        print("RTMP video push alone:   not measured (no nginx-rtmp to push to)")
    if args.skip_listeners:
        return
    with tempfile.TemporaryDirectory() as tmp:
        ramp = listeners(Path(tmp), args.max_listeners)
    print("\nListeners on loopback (one uvicorn worker; N MP3 + N HLS listeners)")
    print(f"{'N':>6}{'p99 segment ms':>16}{'fetches':>9}{'errors':>8}")
    for n, p99, count, errors in ramp:
        print(f"{n:>6}{1000 * p99:>16.1f}{count:>9}{errors:>8}")
    ok = [n for n, p99, _, errors in ramp if p99 <= 0.2 and not errors]
    print(
        f"served with p99 <= 200 ms: {max(ok) if ok else 0} MP3 + {max(ok) if ok else 0} HLS listeners"
    )


if __name__ == "__main__":
    main()
