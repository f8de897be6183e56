"""Generation benchmark figures that bench scripts leave under var/bench.

Each file is one JSON object::

    {"backend": "procedural",
     "figures": {"tracks_per_min": 12.5, "realtime_factor": 40.2, ...},
     "measured_at": "2026-11-24T15:45:00+00:00"}

and the newest file per backend (by ``measured_at``) is what the API shows.
Files that do not follow the format are skipped and logged.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from pydantic import ValidationError

from serving.schemas.pipeline import BenchmarkPublic

log = logging.getLogger("serving.benchmarks")


def latest_benchmarks(directory: Path) -> list[BenchmarkPublic]:
    latest: dict[str, BenchmarkPublic] = {}
    if not directory.is_dir():
        return []
    for path in sorted(directory.glob("*.json")):
        try:
            data = json.loads(path.read_text())
            # Writers may add keys of their own (host, notes): take ours.
            fields = {k: data[k] for k in ("backend", "figures", "measured_at") if k in data}
            item = BenchmarkPublic.model_validate({**fields, "source": path.name})
        except (OSError, ValueError, ValidationError, TypeError) as exc:
            log.warning(
                "skipping benchmark file", extra={"file": str(path), "error": str(exc)[:200]}
            )
            continue
        if item.measured_at.tzinfo is None:
            log.warning("skipping benchmark file without a zone", extra={"file": str(path)})
            continue
        current = latest.get(item.backend)
        if current is None or item.measured_at > current.measured_at:
            latest[item.backend] = item
    return sorted(latest.values(), key=lambda b: b.backend)
