"""``make run``: prepare the lakehouse, put a first batch on air, and start
the radio's long-running services side by side until Ctrl-C or SIGTERM.

Order, so that a listener hears music within seconds of a fresh start:

1. A one-shot helper (``python -m cli.run first-batch``) creates the tables
   and the Dagster home (while ``cli.run warm`` migrates the app database
   and creates the MLflow store beside it), marks failed any run a previous
   stack left STARTED, and, when nothing is on air, makes the first track of
   the first batch, a short one (one run: generated, scored, mastered, in
   rotation). It says so through a pipe, then makes the rest of the batch in
   a second run, at a lower CPU priority, and exits.
2. Once the first track is on air (or nothing had to be made), the services
   start: one Dagster code server shared by the webserver and the daemon
   (sensors, schedules, run monitoring), the MLflow UI, and the API with the
   streamer inside it (or beside it, with Redis).

This process stays small (it imports neither Dagster nor the lakehouse).
It is a child subreaper, so processes whose parent died stay in its tree,
and on SIGTERM or SIGINT it stops that whole tree, by PID: the services
first, then anything left of them (run workers, multiprocessing pools),
killing what is still there after a grace period.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cli import proctree
from sonicforge.settings import Settings, get_settings

READY_FD_ENV = "SONICFORGE_RUN_READY_FD"
STARTED_AT_ENV = "SONICFORGE_RUN_STARTED_AT"
STOP_GRACE_S = 6.0
RESTART_DELAY_S = 2.0


@dataclass
class Service:
    name: str
    argv: list[str]
    url: str
    env: dict[str, str] = field(default_factory=dict)
    # Added to the process's niceness: generation is background work, the
    # streamer in the API process must never wait for it.
    nice: int = 0
    # Started on the first connection to this address (which this launcher
    # listens on meanwhile), and handed the listening socket as ``--fd N``.
    on_demand: tuple[str, int] | None = None


def log(message: str) -> None:
    """A ``[run]`` line, with the seconds since the launcher started."""
    since = time.time() - float(os.environ.get(STARTED_AT_ENV) or time.time())
    print(f"[run] +{since:5.1f} s {message}", flush=True)


def _child_setup(nice: int = 0) -> None:
    # Some shells start background jobs ignoring SIGTERM/SIGINT, and children
    # inherit that (see STACK.md): each service gets the default handlers.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    if nice:
        os.nice(nice)


def services(settings: Settings, *, code_socket: str) -> list[Service]:
    """The long-running processes of the radio, in start order."""
    out = _dagster(settings, code_socket=code_socket)
    mlflow_ui = _mlflow_ui(settings)
    if mlflow_ui is not None:
        out.append(mlflow_ui)
    api = _api(settings)
    out.append(api)
    out.extend(_streamer(settings, api))
    return out


def _bin(name: str) -> str:
    return os.path.join(os.path.dirname(sys.executable), name)


def workspace_yaml(code_socket: str) -> str:
    """A workspace that points at the one code server this launcher starts."""
    return (
        "# Written by `make run` (cli/run.py): the webserver and the daemon share\n"
        "# one code server instead of each starting its own.\n"
        "load_from:\n"
        "  - grpc_server:\n"
        f"      socket: {code_socket}\n"
        "      location_name: sonicforge\n"
    )


def _dagster(settings: Settings, *, code_socket: str) -> list[Service]:
    """One code server (``dagster api grpc``), and the webserver and daemon
    that ``dagster dev`` would start, both talking to it: three processes
    where ``dagster dev`` makes five (its own, a code-server proxy, the
    server, the webserver and the daemon)."""
    host, port = settings.run_host, settings.dagster_ui_port
    home = Path(os.environ.get("DAGSTER_HOME") or settings.resolved_dagster_home)
    workspace = home / "run-workspace.yaml"
    workspace.write_text(workspace_yaml(code_socket))
    code = [
        _bin("dagster"), "api", "grpc", "-m", "orchestration.definitions",
        "-s", code_socket, "--location-name", "sonicforge", "--log-level", "warning",
    ]  # fmt: skip
    web = [_bin("dagster-webserver"), "-w", str(workspace), "-h", host, "-p", str(port)]
    daemon = [_bin("dagster-daemon"), "run", "-w", str(workspace)]
    url = f"http://{host}:{port}"
    # Runs launched here (the feed sensor's, the API's) execute under the
    # code server. On a laptop one generation worker keeps a run to one extra
    # core and about half the memory of two; an explicit setting wins.
    env = (
        {}
        if "SONICFORGE_GENERATION_WORKERS" in os.environ
        else {"SONICFORGE_GENERATION_WORKERS": "1"}
    )
    return [
        # The code server executes the runs (as its children): background work.
        Service("dagster-code", code, code_socket, env, nice=5),
        Service("dagster-webserver", web, url),
        Service("dagster-daemon", daemon, "sensors, schedules, run monitoring"),
    ]


def _streamer(settings: Settings, api: Service) -> list[Service]:
    """The streamer (``sonicforge stream``). With Redis it is its own process;
    without, it runs inside the API process, the only place the in-process
    station state (queue, control, now-playing) is shared."""
    listen = api.url.removesuffix("/docs") + "/stream.mp3"
    if settings.redis_url:
        return [Service("streamer", [sys.executable, "-m", "cli.main", "stream"], listen)]
    api.env["SONICFORGE_STREAM_EMBEDDED"] = "true"
    log(f"streamer: inside the api process, {listen}")
    return []


def _api(settings: Settings) -> Service:
    """The API (``sonicforge serve``: migrations, then uvicorn with the app
    factory); it launches generation runs through the Dagster webserver."""
    host, port = settings.run_host, str(settings.api_port)
    env = {}
    if not settings.dagster_graphql_url:
        env["SONICFORGE_DAGSTER_GRAPHQL_URL"] = f"http://{host}:{settings.dagster_ui_port}/graphql"
    argv = [sys.executable, "-m", "cli.main", "serve", "--host", host, "--port", port]
    return Service("api", argv, f"http://{host}:{port}/docs", env)


def _mlflow_ui(settings: Settings) -> Service | None:
    """The MLflow UI over the embedded store (generation runs, the generator
    registry); none when a tracking server is configured: it has its own UI."""
    if settings.resolved_mlflow_tracking_uri.startswith(("http://", "https://")):
        return None
    host, port = settings.run_host, settings.mlflow_ui_port
    argv = [sys.executable, "-m", "cli.mlflow_ui", "--host", host, "--port", str(port)]
    # About 300 MB once running, for a page that is opened now and then: it
    # starts when someone first connects (a few seconds' wait, once).
    return Service("mlflow", argv, f"http://{host}:{port}", on_demand=(host, port))


# -- the first batch (the helper process) ------------------------------------


def first_batch(ready_fd: int | None) -> int:
    """Tables, Dagster home, dead runs failed; when nothing is on air, a
    first track, then (after saying so on ``ready_fd``) the rest of the batch."""
    from cli.main import _sync_duckdb, cmd_init
    from orchestration.config import DEFAULT_GENRES, GenerationConfig
    from orchestration.launch import FIRST_BATCH, fail_dead_local_runs, launch_generation

    def ready() -> None:
        nonlocal ready_fd
        if ready_fd is not None:
            with contextlib.suppress(OSError):
                os.write(ready_fd, b"ready\n")
                os.close(ready_fd)
            ready_fd = None

    settings = get_settings()
    # Meanwhile, on the other core, the stores that the first run and the API
    # would otherwise set up on first use, one after the other.
    warming = subprocess.Popen([sys.executable, "-m", "cli.run", "warm"])
    if cmd_init(argparse.Namespace()) != 0:
        print("[run] sonicforge init failed", file=sys.stderr, flush=True)
        return 2
    import dagster as dg

    from sonicforge.lakehouse import Lakehouse

    instance = dg.DagsterInstance.get()
    for run_id in fail_dead_local_runs(instance):
        log(f"run {run_id} was left STARTED by a stopped stack: marked failed")
    lh = Lakehouse.from_settings(settings)
    on_air = lh.count("rotation") > 0
    defs = None
    if not on_air:
        # While the stores are set up: what the first run will import anyway
        # (the pipeline, its checks' validator, MLflow's client).
        from orchestration.definitions import build_definitions

        defs = build_definitions()
        import great_expectations  # noqa: F401
        import mlflow  # noqa: F401
    if warming.wait() != 0:
        log("setting up the app database and MLflow store failed; the services will retry")
    if on_air:
        ready()
        return 0
    count, duration = settings.run_first_batch, settings.run_first_duration
    genres = list(DEFAULT_GENRES)
    tags = {"sonicforge/launched_by": FIRST_BATCH}
    plan = [
        GenerationConfig(genres=genres[:1], count=1, duration_s=settings.run_first_track_duration)
    ]
    if count > 1:
        rest = genres[1:] or genres
        plan.append(GenerationConfig(genres=rest, count=count - 1, duration_s=duration))
    status = 0
    for i, config in enumerate(plan):
        what = "first track" if i == 0 else f"rest of the first batch ({config.count} tracks)"
        log(f"generating the {what}, {config.duration_s:g} s each ...")
        result = launch_generation(
            config, defs=defs, instance=instance, tags=tags, log_level="WARNING"
        )
        verdict = (
            "on air"
            if result.success
            else "FAILED: " + ", ".join(result.failed_steps + result.failed_checks)
        )
        log(f"batch {result.batch_id} (run {result.run_id}): {verdict}")
        status = status or (0 if result.success else 1)
        if i == 0:
            ready()
            # The rest is background work: the services starting now, and
            # the streamer above all, come first.
            os.nice(10)
    ready()
    _sync_duckdb(lh)
    return status


def warm() -> int:
    """Migrate the app database and create the MLflow store with the
    generator registry (what the API and the first run do on first use)."""
    import logging

    from orchestration.environment import resources_for
    from serving.db.session import migrate

    logging.getLogger("mlflow").setLevel(logging.WARNING)
    settings = get_settings()
    migrate(settings.resolved_app_database_url)
    generator = resources_for(settings)["generator"]
    tracking = generator.tracking()
    if tracking is not None:
        tracking.client.search_experiments(max_results=1)
    generator.choose()
    return 0


# -- the launcher ------------------------------------------------------------


class Launcher:
    """Starts the helper, then the services; restarts a service that exits;
    stops the whole tree on request."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.stopping = False
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.specs: dict[str, Service] = {}
        self.helper: subprocess.Popen[bytes] | None = None
        self.listeners: dict[str, socket.socket] = {}
        self._socket_dir = tempfile.mkdtemp(prefix="sonicforge-run-")

    def _popen(
        self,
        argv: Sequence[str],
        env: dict[str, str],
        *,
        pass_fds: Sequence[int] = (),
        nice: int = 0,
    ) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            argv,
            preexec_fn=functools.partial(_child_setup, nice),
            env={**os.environ, **env},
            pass_fds=pass_fds,
        )

    def on_signal(self, signum: int, _frame: object) -> None:
        self.stopping = True

    def start_helper(self) -> int:
        r, w = os.pipe()
        self.helper = self._popen(
            [sys.executable, "-m", "cli.run", "first-batch"],
            {READY_FD_ENV: str(w)},
            pass_fds=(w,),
        )
        os.close(w)
        return r

    def wait_ready(self, fd: int) -> bool:
        """Wait until the helper says the first track is on air (or exits);
        False if asked to stop first."""
        while not self.stopping:
            readable, _, _ = select.select([fd], [], [], 0.2)
            if readable:
                # b"ready", or b"" (end of file) if the helper exited first.
                if not os.read(fd, 64):
                    log("the first-batch helper stopped before a track was on air")
                os.close(fd)
                return True
        os.close(fd)
        return False

    def start_services(self) -> None:
        """The API (and streamer) first, for the listener; then the code
        server and MLflow; the webserver and daemon once the code server
        listens, so they load the code location at their first try."""
        code_socket = os.path.join(self._socket_dir, "code.sock")
        self.specs = {s.name: s for s in services(self.settings, code_socket=code_socket)}
        order = ["api", "streamer", "dagster-code", "mlflow"]
        for name in [n for n in order if n in self.specs] + [
            n for n in self.specs if n not in order
        ]:
            if name in ("dagster-webserver", "dagster-daemon"):
                self._wait_for(lambda: os.path.exists(code_socket), timeout_s=60.0)
            if self.stopping:
                return
            if self.specs[name].on_demand is not None:
                self._listen(name)
            else:
                self._start(name)
        api = self.specs.get("api")
        if api is not None:  # the two addresses people open (serving/web.py)
            base = api.url.removesuffix("/docs")
            log(f"listen: {base}/ (the station in a browser)")
            log(f"operate: {base}/console (operators and admins)")

    def _listen(self, name: str) -> None:
        spec = self.specs[name]
        assert spec.on_demand is not None
        sock = socket.create_server(spec.on_demand, reuse_port=False)
        sock.set_inheritable(True)
        self.listeners[name] = sock
        log(f"{name}: {spec.url} (starts on the first request)")

    def _start(self, name: str) -> None:
        spec = self.specs[name]
        argv = list(spec.argv)
        fds: tuple[int, ...] = ()
        if name in self.listeners:
            fd = self.listeners[name].fileno()
            argv, fds = [*argv, "--fd", str(fd)], (fd,)
        self.procs[name] = self._popen(argv, spec.env, pass_fds=fds, nice=spec.nice)
        log(f"{name}: {spec.url}")

    def _start_requested(self) -> None:
        """Start each on-demand service that has a connection waiting."""
        waiting = [n for n in self.listeners if n not in self.procs]
        if not waiting:
            return
        readable, _, _ = select.select([self.listeners[n] for n in waiting], [], [], 0)
        for name in waiting:
            if self.listeners[name] in readable:
                self._start(name)

    def _wait_for(self, condition: Callable[[], bool], *, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while not self.stopping and time.monotonic() < deadline:
            if condition():
                return True
            time.sleep(0.1)
        return False

    def supervise(self) -> None:
        restart_at: dict[str, float] = {}
        while not self.stopping:
            proctree.reap(exclude=self._own_children())
            if self.helper is not None:
                self.helper.poll()  # collects it once the first batch is made
            self._start_requested()
            for name, proc in list(self.procs.items()):
                if proc.poll() is None:
                    continue
                now = time.monotonic()
                if name not in restart_at:
                    log(
                        f"{name} exited with {proc.returncode}; restarting in {RESTART_DELAY_S:g} s"
                    )
                    restart_at[name] = now + RESTART_DELAY_S
                elif now >= restart_at[name]:
                    del restart_at[name]
                    self._start(name)
            time.sleep(0.2)

    def _own_children(self) -> set[int]:
        pids = {p.pid for p in self.procs.values()}
        if self.helper is not None:
            pids.add(self.helper.pid)
        return pids

    def stop(self) -> None:
        log("stopping ...")
        first = [p.pid for p in self.procs.values() if p.poll() is None]
        if self.helper is not None and self.helper.poll() is None:
            first.append(self.helper.pid)
        killed = proctree.stop_tree(
            os.getpid(), first=first, grace_s=STOP_GRACE_S, exclude=self._own_children()
        )
        for p in killed:
            log(f"killed {p.pid} ({p.cmdline[:80]}): it ignored SIGTERM")
        for proc in [*self.procs.values(), *([self.helper] if self.helper else [])]:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=1.0)
        for sock in self.listeners.values():
            sock.close()
        shutil.rmtree(self._socket_dir, ignore_errors=True)
        log("stopped")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cli.run", description=__doc__.split("\n")[0])
    parser.add_argument("mode", nargs="?", choices=["first-batch", "warm"], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    settings = get_settings()
    os.environ.setdefault("DAGSTER_HOME", str(settings.resolved_dagster_home))
    os.environ.setdefault(STARTED_AT_ENV, repr(time.time()))
    if args.mode == "warm":
        return warm()
    if args.mode == "first-batch":
        ready_fd = os.environ.get(READY_FD_ENV)
        return first_batch(int(ready_fd) if ready_fd else None)

    proctree.become_subreaper()
    launcher = Launcher(settings)
    signal.signal(signal.SIGINT, launcher.on_signal)
    signal.signal(signal.SIGTERM, launcher.on_signal)
    try:
        fd = launcher.start_helper()
        if launcher.wait_ready(fd):
            launcher.start_services()
            launcher.supervise()
    finally:
        launcher.stop()
    helper = launcher.helper
    return 0 if helper is None or helper.returncode in (0, None, -signal.SIGTERM) else 1


if __name__ == "__main__":
    raise SystemExit(main())
