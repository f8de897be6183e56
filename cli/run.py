"""``make run``: prepare the lakehouse, put a first batch on air, and start
the radio's long-running services side by side until Ctrl-C.

Each service is a child process started with default signal handlers (some
shells start background jobs ignoring SIGTERM/SIGINT; see STACK.md), and
only the processes started here are stopped here, by PID.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field

from sonicforge.settings import get_settings


@dataclass
class Service:
    name: str
    argv: list[str]
    url: str
    env: dict[str, str] = field(default_factory=dict)


def _reset_signals() -> None:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def services() -> list[Service]:
    """The processes that make up the running radio."""
    bin_dir = os.path.dirname(sys.executable)
    host = os.environ.get("SONICFORGE_RUN_HOST", "127.0.0.1")
    out = [
        Service(
            "dagster",
            [
                os.path.join(bin_dir, "dagster"),
                "dev",
                "-w",
                "workspace.yaml",
                "-h",
                host,
                "-p",
                "3000",
            ],
            f"http://{host}:3000",
        ),
    ]
    mlflow_ui = _mlflow_ui(host)
    if mlflow_ui is not None:
        out.append(mlflow_ui)
    out.append(_api(host))
    out.extend(_streamer(out[-1]))
    return out


def _streamer(api: Service) -> list[Service]:
    """The streamer (``sonicforge stream``). With Redis it is its own process;
    without, it runs inside the API process, the only place the in-process
    station state (queue, control, now-playing) is shared."""
    listen = api.url.removesuffix("/docs") + "/stream.mp3"
    if get_settings().redis_url:
        return [Service("streamer", [sys.executable, "-m", "cli.main", "stream"], listen)]
    api.env["SONICFORGE_STREAM_EMBEDDED"] = "true"
    print(f"[run] streamer: inside the api process, {listen}", flush=True)
    return []


def _api(host: str) -> Service:
    """The API (``sonicforge serve``: migrations, then uvicorn with the app
    factory); it launches generation runs through the Dagster webserver above."""
    port = str(get_settings().api_port)
    env = {}
    if not get_settings().dagster_graphql_url:
        env["SONICFORGE_DAGSTER_GRAPHQL_URL"] = f"http://{host}:3000/graphql"
    argv = [sys.executable, "-m", "cli.main", "serve", "--host", host, "--port", port]
    return Service("api", argv, f"http://{host}:{port}/docs", env)


def _mlflow_ui(host: str) -> Service | None:
    """The MLflow UI over the embedded store (generation runs, the generator
    registry); none when a tracking server is configured: it has its own UI."""
    s = get_settings()
    if s.resolved_mlflow_tracking_uri.startswith(("http://", "https://")):
        return None
    port = str(s.mlflow_ui_port)
    # Through a wrapper: `mlflow server` leaves its web server running when
    # it is stopped by PID (see cli/mlflow_ui.py).
    argv = [sys.executable, "-m", "cli.mlflow_ui", "--host", host, "--port", port]
    return Service("mlflow", argv, f"http://{host}:{port}")


def bootstrap() -> None:
    """Tables, Dagster home and DuckDB file; a first batch if nothing is on air."""
    from cli.main import main as cli
    from orchestration.config import DEFAULT_GENRES
    from sonicforge.lakehouse import Lakehouse

    if cli(["init"]) != 0:
        raise SystemExit("sonicforge init failed")
    if Lakehouse.from_settings(get_settings()).count("rotation") == 0:
        count = os.environ.get("SONICFORGE_RUN_FIRST_BATCH", "6")
        duration = os.environ.get("SONICFORGE_RUN_FIRST_DURATION", "180")
        argv = ["generate", "--count", count, "--duration", duration]
        for g in DEFAULT_GENRES:
            argv += ["--genre", g]
        cli(argv)


def supervise(procs: dict[str, subprocess.Popen[bytes]], specs: dict[str, Service]) -> None:
    stopping = False

    def stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    while not stopping:
        for name, proc in list(procs.items()):
            if proc.poll() is not None:
                print(f"[run] {name} exited with {proc.returncode}; restarting in 2 s", flush=True)
                time.sleep(2)
                procs[name] = subprocess.Popen(
                    specs[name].argv,
                    preexec_fn=_reset_signals,
                    env={**os.environ, **specs[name].env},
                )
        time.sleep(0.5)
    print("[run] stopping ...", flush=True)
    for proc in procs.values():
        proc.terminate()
    deadline = time.monotonic() + 15
    for proc in procs.values():
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()


def main() -> None:
    settings = get_settings()
    os.environ.setdefault("DAGSTER_HOME", str(settings.resolved_dagster_home))
    bootstrap()
    specs = {s.name: s for s in services()}
    procs = {
        name: subprocess.Popen(s.argv, preexec_fn=_reset_signals, env={**os.environ, **s.env})
        for name, s in specs.items()
    }
    for s in specs.values():
        print(f"[run] {s.name}: {s.url}", flush=True)
    supervise(procs, specs)


if __name__ == "__main__":
    main()
