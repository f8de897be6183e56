"""The MLflow UI over the embedded store, as one process.

``mlflow server`` is three kinds of process: its command (which imports all
of MLflow only to start the others), a uvicorn server, and a job runner
(huey consumers, about 330 MB each, seven of them here) for server-side jobs
that the embedded radio never submits. This module serves the same app,
``mlflow.server.fastapi_app:app``, under uvicorn in this process, with the
store settings ``mlflow server`` would hand its server and job execution
off. uvicorn stops on SIGTERM or SIGINT; nothing else is left.

Run as ``python -m cli.mlflow_ui [--host H] [--port P]``, or with ``--fd N``
to serve on a listening socket it inherits (``make run`` starts the UI so,
on the first connection to its port); the store comes from settings
(``sqlite:///var/mlflow.db`` and ``var/mlartifacts``).
"""

from __future__ import annotations

import argparse
import os
import socket
import uuid
from collections.abc import Sequence
from pathlib import Path


def server_env() -> dict[str, str]:
    """The environment ``mlflow server`` gives its web server, for the
    embedded store, with the job runner turned off."""
    from mlflow.server.constants import (
        ARTIFACT_ROOT_ENV_VAR,
        BACKEND_STORE_URI_ENV_VAR,
        SERVE_ARTIFACTS_ENV_VAR,
    )

    from sonicforge.settings import get_settings

    s = get_settings()
    return {
        BACKEND_STORE_URI_ENV_VAR: s.resolved_mlflow_tracking_uri,
        ARTIFACT_ROOT_ENV_VAR: Path(s.resolved_mlflow_artifact_root).as_uri(),
        # Artifacts are files the UI reads itself; nothing is uploaded through it.
        SERVE_ARTIFACTS_ENV_VAR: "false",
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
        "_MLFLOW_IN_JOB_EXECUTOR": "false",
        "_MLFLOW_SGI_NAME": "uvicorn",
        "_MLFLOW_SERVER_BOOT_ID": uuid.uuid4().hex,
    }


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m cli.mlflow_ui")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=5000)
    p.add_argument("--fd", type=int, default=None, help="serve on this inherited listening socket")
    args = p.parse_args(argv)
    # Before the app is imported: its handlers read the store from these.
    os.environ.update(server_env())
    import uvicorn

    config = uvicorn.Config(
        "mlflow.server.fastapi_app:app",
        host=args.host,
        port=args.port,
        workers=1,
        log_level="warning",
        server_header=False,
    )
    # socket(fileno=...) reads the family and type from the descriptor.
    sockets = [socket.socket(fileno=args.fd)] if args.fd is not None else None
    uvicorn.Server(config).run(sockets=sockets)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
