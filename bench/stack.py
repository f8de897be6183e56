"""`make run` as production starts it: memory, time to first audio, time to stop.

    .venv/bin/python bench/stack.py [--settle 60] [--timeout 600]

Starts the launcher (``python -m cli.run``, what ``make run`` runs) in its
own session on a fresh var directory in a temporary folder, with free ports,
and no Redis (the embedded default). It measures, from the moment the
launcher starts:

- the first bytes on ``/stream.mp3`` (the streamer's standby may come
  first), and the first track on air (``/api/v1/stream/status``);
- when the first batch is made (its helper exited), the resident memory
  (RSS, and PSS) of every process the launcher started, summed over its
  tree, by service; then the same sum sampled every second for ``--settle``
  seconds more (the air-feed sensor's first run usually falls there), its
  peak and last value; the MLflow UI, which starts on its first request,
  is opened halfway through;
- SIGTERM to the launcher alone (what a container runtime sends to PID 1):
  seconds until no process of its tree, as seen at any time, is left.

Baseline in the same run: a bare Python interpreter's RSS, and the RSS of a
process that imports the code location (``orchestration.definitions``), the
floor of every Dagster process that loads the pipeline.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cli import proctree  # noqa: E402

MB = 2**20


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def python_rss(code: str) -> int:
    """Peak RSS of a Python process that runs ``code`` (bytes)."""
    out = subprocess.run(
        [sys.executable, "-c", code + "\nimport resource; print(resource.getrusage(0).ru_maxrss)"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    )  # fmt: skip
    return int(out.stdout.split()[-1]) * 1024


def first_mp3_bytes(url: str) -> bool:
    import httpx

    try:
        with httpx.stream("GET", url, timeout=3.0) as r:
            if r.status_code != 200:
                return False
            for chunk in r.iter_bytes():
                if chunk:
                    return True
    except httpx.HTTPError:
        return False
    return False


def mlflow_health(url: str) -> bool:
    import httpx

    try:
        return httpx.get(url, timeout=90.0).text == "OK"
    except httpx.HTTPError:
        return False


def track_on_air(url: str) -> str | None:
    import httpx

    try:
        r = httpx.get(url, timeout=3.0)
        now = r.json().get("now_playing") if r.status_code == 200 else None
    except (httpx.HTTPError, ValueError):
        return None
    return now.get("track_id") if isinstance(now, dict) else None


def rotation_size(lake: Path) -> int:
    from sonicforge.lakehouse import Lakehouse

    try:
        return Lakehouse(str(lake)).count("rotation")
    except Exception:  # not created yet, or mid-commit
        return 0


def remember(seen: dict[tuple[int, int], proctree.Proc], procs: list[proctree.Proc]) -> None:
    """Add what was not seen before (a zombie's later sighting has lost its
    command line)."""
    for p in procs:
        seen.setdefault(p.key, p)


def service_of(proc: proctree.Proc, launcher: int, parents: dict[int, int]) -> int:
    """The launcher's child that ``proc`` descends from."""
    pid = proc.pid
    while parents.get(pid, launcher) != launcher:
        pid = parents[pid]
    return pid


def label(cmdline: str) -> str:
    for key, name in (
        ("cli.run first-batch", "first-batch helper"),
        ("cli.run warm", "store set-up"),
        ("dagster api grpc", "dagster code server"),
        ("dagster-webserver", "dagster webserver"),
        ("dagster-daemon", "dagster daemon"),
        ("cli.mlflow_ui", "mlflow ui"),
        ("mlflow server", "mlflow server"),
        ("cli.main serve", "api + streamer"),
        ("cli.main stream", "streamer"),
        ("dagster dev", "dagster dev"),
    ):
        if key in cmdline:
            return name
    return cmdline[:40]


def snapshot(launcher: int) -> tuple[int, int, dict[str, tuple[int, int]]]:
    """Total RSS and PSS of the launcher's tree, and (processes, RSS) per
    service. RSS counts a page shared by several processes (the Python
    runtime, numpy's libraries) in each; PSS splits it between them."""
    procs = proctree.descendants(launcher)
    parents = {p.pid: p.ppid for p in procs}
    by_pid = {p.pid: p for p in procs}
    per: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    total = proctree.rss_bytes(launcher)
    pss = proctree.pss_bytes(launcher)
    per["launcher"] = [1, total]
    for p in procs:
        rss = proctree.rss_bytes(p.pid)
        total += rss
        pss += proctree.pss_bytes(p.pid)
        top = by_pid.get(service_of(p, launcher, parents), p)
        row = per[label(top.cmdline)]
        row[0] += 1
        row[1] += rss
    return total, pss, {k: (v[0], v[1]) for k, v in per.items()}


def run_stack(args: argparse.Namespace, tmp: Path) -> dict[str, object]:
    api, dagster, mlflow = free_port(), free_port(), free_port()
    var = tmp / "var"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SONICFORGE_")}
    env.update(
        {
            "SONICFORGE_VAR_DIR": str(var),
            "DAGSTER_HOME": str(var / "dagster"),
            "SONICFORGE_API_PORT": str(api),
            "SONICFORGE_DAGSTER_UI_PORT": str(dagster),
            "SONICFORGE_MLFLOW_UI_PORT": str(mlflow),
            "SONICFORGE_RUN_FIRST_BATCH": str(args.first_batch),
        }
    )
    log = open(tmp / "run.log", "wb")  # noqa: SIM115  # closed below
    t0 = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "cli.run"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    base = f"http://127.0.0.1:{api}"
    out: dict[str, object] = {"log": str(tmp / "run.log")}
    seen: dict[tuple[int, int], proctree.Proc] = {}
    deadline = t0 + args.timeout
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            remember(seen, proctree.descendants(proc.pid))
            now = time.monotonic() - t0
            if "first_bytes_s" not in out and first_mp3_bytes(f"{base}/stream.mp3"):
                out["first_bytes_s"] = now
            if "first_track_s" not in out and track_on_air(f"{base}/api/v1/stream/status"):
                out["first_track_s"] = now
            helpers = [p for p in seen.values() if "cli.run first-batch" in p.cmdline]
            # The first batch is done when the helper that makes it has exited.
            if "first_track_s" in out and helpers and not proctree.alive(helpers):
                out["batch_on_air_s"] = now
                out["rotation_tracks"] = rotation_size(var / "lake")
                break
            time.sleep(0.25)
        if "batch_on_air_s" in out:
            total, pss, per = snapshot(proc.pid)
            out["rss_at_batch"], out["pss_at_batch"], out["per_service"] = total, pss, per
            peak, peak_pss, last = total, pss, total
            # The MLflow UI starts on its first request: halfway through the
            # window, open it, so the peak counts it as well.
            half = time.monotonic() + args.settle / 2
            end = time.monotonic() + args.settle
            while time.monotonic() < end and proc.poll() is None:
                if "mlflow_ui_s" not in out and time.monotonic() >= half:
                    out["rss_peak_no_ui"] = peak
                    t_ui = time.monotonic()
                    if mlflow_health(f"http://127.0.0.1:{mlflow}/health"):
                        out["mlflow_ui_s"] = time.monotonic() - t_ui
                    else:
                        out["mlflow_ui_s"] = "no answer"
                remember(seen, proctree.descendants(proc.pid))
                last, last_pss, per_now = snapshot(proc.pid)
                if last > peak:
                    peak, peak_pss, out["per_service_peak"] = last, last_pss, per_now
                time.sleep(1.0)
            out["rss_peak"], out["pss_peak"], out["rss_last"] = peak, peak_pss, last
    finally:
        remember(seen, proctree.descendants(proc.pid))
        t_stop = time.monotonic()
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGTERM)
        stopped_at = None
        while time.monotonic() - t_stop < 60:
            if proc.poll() is None:
                remember(seen, proctree.descendants(proc.pid))
            if proc.poll() is not None and not proctree.alive(seen.values()):
                stopped_at = time.monotonic() - t_stop
                break
            time.sleep(0.05)
        out["stop_s"] = stopped_at
        out["left"] = [p.cmdline[:100] for p in proctree.alive(seen.values())]
        out["processes_seen"] = len(seen)
        for p in proctree.alive(seen.values()):  # the bench cleans up after a failure
            os.kill(p.pid, signal.SIGKILL)
        log.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--settle", type=float, default=60.0, help="seconds sampled after")
    parser.add_argument("--timeout", type=float, default=600.0, help="give up after")
    parser.add_argument("--first-batch", type=int, default=6, help="SONICFORGE_RUN_FIRST_BATCH")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON too")
    args = parser.parse_args()

    bare = python_rss("pass")
    code = python_rss("import orchestration.definitions")
    with tempfile.TemporaryDirectory(prefix="sonicforge-stack-") as tmp:
        r = run_stack(args, Path(tmp))
        log_tail = Path(str(r["log"])).read_text(errors="replace").splitlines()[-15:]

    def secs(key: str) -> str:
        v = r.get(key)
        return f"{v:.1f} s" if isinstance(v, float) else "not reached"

    def mb(key: str) -> str:
        v = r.get(key)
        return f"{v / MB:,.0f} MB" if isinstance(v, int) else "not measured"

    print("\n`make run` launcher (python -m cli.run), fresh var dir, embedded default")
    print(f"{'figure':<52}{'value':>14}  target")
    rows = [
        ("first bytes on /stream.mp3", secs("first_bytes_s"), ""),
        ("first track on air (stream status)", secs("first_track_s"), "<= 20 s"),
        ("first batch done (its helper exited)", secs("batch_on_air_s"), ""),
        ("tracks in the rotation then", str(r.get("rotation_tracks", "-")), str(args.first_batch)),
        ("RSS of the tree, first batch on air", mb("rss_at_batch"), "<= 2,500 MB"),
        ("  PSS (shared pages split), same moment", mb("pss_at_batch"), ""),
        (f"RSS peak, next {args.settle / 2:g} s (MLflow UI not opened)", mb("rss_peak_no_ui"), ""),
        ("MLflow UI: first request answered after", secs("mlflow_ui_s"), ""),
        (f"RSS peak, whole {args.settle:g} s (UI opened halfway)", mb("rss_peak"), ""),
        ("  PSS at that peak", mb("pss_peak"), ""),
        (f"RSS of the tree, after {args.settle:g} s", mb("rss_last"), ""),
        ("stop after SIGTERM to the launcher", secs("stop_s"), "<= 10 s"),
        ("processes left after stop", str(len(r["left"])), "0"),  # type: ignore[arg-type]
        ("processes seen in the tree", str(r["processes_seen"]), ""),
    ]
    for name, value, target in rows:
        print(f"{name:<52}{value:>14}  {target}")
    for key, title in (("per_service", "first batch on air"), ("per_service_peak", "at the peak")):
        per = r.get(key)
        if isinstance(per, dict):
            print(f"\nby service, {title}:")
            for name, (n, rss) in sorted(per.items(), key=lambda kv: -kv[1][1]):
                print(f"  {name:<28}{n:>4} proc{'s' if n > 1 else ' '}{rss / MB:>10,.0f} MB")
    print("\nbaseline, same machine and run:")
    print(f"  bare python interpreter           {bare / MB:>10,.0f} MB")
    print(f"  python + orchestration.definitions{code / MB:>10,.0f} MB")
    left = r["left"]
    if isinstance(left, list) and left:
        print("left running (killed by the bench):", *left, sep="\n  ")
    if "batch_on_air_s" not in r:
        print("the first batch did not reach the rotation; the launcher's last lines:")
        print(*log_tail, sep="\n  ")
    if args.json:
        print(json.dumps({k: v for k, v in r.items() if k != "log"}, default=str))


if __name__ == "__main__":
    main()
