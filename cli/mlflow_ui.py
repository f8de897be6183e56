"""The MLflow UI over the embedded store, as one stoppable process.

``mlflow server`` starts its web server as a child process and does not
pass SIGTERM on, so stopping it by PID would leave the child running. This
wrapper starts it in a session of its own and, on SIGTERM or SIGINT, stops
that whole process group (its own child's, by id) and waits for it.

Run as ``python -m cli.mlflow_ui [--host H] [--port P]``; the store comes
from settings (``sqlite:///var/mlflow.db`` and ``var/mlartifacts``).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path


def server_argv(*, host: str, port: int) -> list[str]:
    from sonicforge.settings import get_settings

    s = get_settings()
    return [
        os.path.join(os.path.dirname(sys.executable), "mlflow"),
        "server",
        "--backend-store-uri", s.resolved_mlflow_tracking_uri,
        "--default-artifact-root", Path(s.resolved_mlflow_artifact_root).as_uri(),
        "--host", host,
        "--port", str(port),
        "--workers", "1",
    ]  # fmt: skip


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m cli.mlflow_ui")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=5000)
    args = p.parse_args(argv)
    proc = subprocess.Popen(server_argv(host=args.host, port=args.port), start_new_session=True)

    def stop(signum: int, _frame: object) -> None:
        with contextlib.suppress(ProcessLookupError):  # it has already exited
            os.killpg(proc.pid, signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        return proc.wait()
    finally:
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


if __name__ == "__main__":
    raise SystemExit(main())
