"""`make run`'s launcher (cli/run.py) and what it starts: every process of
its tree stops on SIGTERM (what a container runtime sends) and on Ctrl-C
(SIGINT to the process group); the MLflow UI is one process; the tree is
walked from /proc, so processes that left the group or lost their parent
are found too."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from cli import proctree
from cli.run import services, workspace_yaml
from sonicforge.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SONICFORGE_")}
    env.update(
        {
            "SONICFORGE_VAR_DIR": str(tmp_path / "var"),
            "DAGSTER_HOME": str(tmp_path / "var" / "dagster"),
            **extra,
        }
    )
    return env


def test_stop_tree_kills_what_ignores_sigterm_and_finds_orphans() -> None:
    # A child that ignores SIGTERM, and an orphan: a process that ignores it
    # too, in a session of its own, whose parent exited at once.
    hang = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)"
    orphan = f"import subprocess, sys; subprocess.Popen([sys.executable, '-c', {hang!r}], start_new_session=True)"
    child = (
        "import signal, subprocess, sys, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        f"subprocess.run([sys.executable, '-c', {orphan!r}])\n"
        "print('up', flush=True)\n"
        "time.sleep(60)\n"
    )
    # The subreaper is a process of its own, not pytest's.
    reaper = (
        "import os, subprocess, sys, time\n"
        "from cli import proctree\n"
        "assert proctree.become_subreaper()\n"
        f"child = subprocess.Popen([sys.executable, '-c', {child!r}], stdout=subprocess.PIPE)\n"
        "child.stdout.readline()\n"
        "time.sleep(0.5)\n"
        "tree = proctree.descendants(os.getpid())\n"
        "adopted = [p for p in tree if p.pid != child.pid and p.ppid == os.getpid()]\n"
        "killed = proctree.stop_tree(os.getpid(), first=[child.pid], grace_s=2.0)\n"
        "print(len(tree), len(adopted), len(killed), len(proctree.alive(tree)))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", reaper], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    tree, adopted, killed, left = map(int, done.stdout.split())
    assert (tree, adopted, killed, left) == (2, 1, 2, 0)


def test_the_webserver_and_daemon_share_one_code_server(tmp_path: Path) -> None:
    settings = Settings(var_dir=tmp_path / "var")
    specs = {s.name: s for s in services(settings, code_socket="/tmp/x/code.sock")}
    assert "-s" in specs["dagster-code"].argv and "/tmp/x/code.sock" in specs["dagster-code"].argv
    workspace = specs["dagster-webserver"].argv[specs["dagster-webserver"].argv.index("-w") + 1]
    assert specs["dagster-daemon"].argv[-1] == workspace
    assert Path(workspace).read_text() == workspace_yaml("/tmp/x/code.sock")
    assert not any("dagster dev" in " ".join(s.argv) for s in specs.values())
    # Without Redis the streamer runs inside the API process.
    assert "streamer" not in specs and specs["api"].env["SONICFORGE_STREAM_EMBEDDED"] == "true"


def test_the_mlflow_ui_is_one_process_that_stops_on_sigterm(tmp_path: Path) -> None:
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "cli.mlflow_ui", "--port", str(port)],
        cwd=ROOT, env=_env(tmp_path), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 90
        ok = False
        while time.monotonic() < deadline and not ok:
            try:
                ok = httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).text == "OK"
            except httpx.HTTPError:
                time.sleep(0.5)
        assert ok, "the MLflow UI did not answer /health"
        r = httpx.post(
            f"http://127.0.0.1:{port}/ajax-api/2.0/mlflow/experiments/search",
            json={"max_results": 5},
            timeout=10,
        )
        assert r.status_code == 200 and "experiments" in r.json()
        assert proctree.descendants(proc.pid) == [], "no job runner, no separate server"
        proc.send_signal(signal.SIGTERM)
        # uvicorn shuts down gracefully, then re-raises the signal it caught.
        assert proc.wait(timeout=30) in (0, -signal.SIGTERM)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)


LOCATION_QUERY = """
{ workspaceOrError { ... on Workspace { locationEntries { name
    locationOrLoadError { __typename ... on PythonError { message } } } } } }
"""


def _location_loaded(dagster_port: int) -> dict[str, object] | None:
    """The webserver's one code location entry, once it has one."""
    try:
        r = httpx.post(
            f"http://127.0.0.1:{dagster_port}/graphql", json={"query": LOCATION_QUERY}, timeout=5
        )
        entries = r.json()["data"]["workspaceOrError"]["locationEntries"]
    except (httpx.HTTPError, KeyError, TypeError, ValueError):
        return None
    if entries and entries[0]["locationOrLoadError"] is not None:
        return dict(entries[0])
    return None


def _wait_for_full_stack(
    proc: subprocess.Popen[bytes], api_port: int, seen: dict[tuple[int, int], proctree.Proc]
) -> list[str]:
    """Until a track is on air and the tree holds a Dagster code server and
    a multiprocessing worker of the first batch; what was missing otherwise."""
    want = {
        "code server": "dagster api grpc",
        "webserver": "dagster-webserver",
        "daemon": "dagster-daemon",
        "worker": "multiprocessing.spawn",
    }
    on_air = False
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        tree = proctree.descendants(proc.pid)
        seen.update({p.key: p for p in tree})
        missing = [k for k, v in want.items() if not any(v in p.cmdline for p in tree)]
        if not on_air:
            try:
                r = httpx.get(f"http://127.0.0.1:{api_port}/api/v1/stream/status", timeout=2)
                on_air = r.status_code == 200 and r.json().get("now_playing") is not None
            except (httpx.HTTPError, ValueError):
                pass
        if on_air and not missing:
            return []
        time.sleep(0.2)
    return (["a track on air"] if not on_air else []) + missing


@pytest.mark.slow
@pytest.mark.parametrize("how", ["SIGTERM to the launcher", "SIGINT to its process group"])
def test_make_run_stops_every_process_it_started(tmp_path: Path, how: str) -> None:
    api, dagster, mlflow = _free_port(), _free_port(), _free_port()
    env = _env(
        tmp_path,
        SONICFORGE_API_PORT=str(api),
        SONICFORGE_DAGSTER_UI_PORT=str(dagster),
        SONICFORGE_MLFLOW_UI_PORT=str(mlflow),
        # A short first track, then four more made by two worker processes.
        SONICFORGE_RUN_FIRST_BATCH="5",
        SONICFORGE_RUN_FIRST_TRACK_DURATION="10",
        SONICFORGE_RUN_FIRST_DURATION="60",
        SONICFORGE_GENERATION_WORKERS="2",
    )
    log = open(tmp_path / "run.log", "wb")  # noqa: SIM115  # closed below
    proc = subprocess.Popen(
        [sys.executable, "-m", "cli.run"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    seen: dict[tuple[int, int], proctree.Proc] = {}
    try:
        missing = _wait_for_full_stack(proc, api, seen)
        assert not missing, (
            f"never saw {missing}; log: {(tmp_path / 'run.log').read_text()[-3000:]}"
        )
        # The webserver loaded the code location from the shared code server.
        entry = None
        end = time.monotonic() + 60
        while entry is None and time.monotonic() < end:
            entry = _location_loaded(dagster)
            time.sleep(0.5)
        assert entry is not None and entry["name"] == "sonicforge"
        assert entry["locationOrLoadError"] == {"__typename": "RepositoryLocation"}, entry
        # The MLflow UI starts on the first request to its port, and answers it.
        assert not any("cli.mlflow_ui" in p.cmdline for p in proctree.descendants(proc.pid))
        health = httpx.get(f"http://127.0.0.1:{mlflow}/health", timeout=90)
        assert health.status_code == 200 and health.text == "OK"
        tree = proctree.descendants(proc.pid)
        for p in tree:
            seen.setdefault(p.key, p)
        assert sum("cli.mlflow_ui" in p.cmdline for p in tree) == 1
        if how.startswith("SIGTERM"):
            os.kill(proc.pid, signal.SIGTERM)
        else:
            os.killpg(proc.pid, signal.SIGINT)
        end = time.monotonic() + 60
        while proc.poll() is None and time.monotonic() < end:
            seen.update({p.key: p for p in proctree.descendants(proc.pid)})
            time.sleep(0.1)
        assert proc.poll() is not None, "the launcher did not exit"
        # Zombies are not processes left running; give init a moment to reap.
        left = proctree.alive(seen.values())
        end = time.monotonic() + 5
        while left and time.monotonic() < end:
            time.sleep(0.2)
            left = proctree.alive(left)
        assert left == [], [p.cmdline[:120] for p in left]
        assert len(seen) >= 6  # code server, webserver, daemon, mlflow, api, helper, ...
    finally:
        for p in proctree.alive(seen.values()):
            os.kill(p.pid, signal.SIGKILL)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()
