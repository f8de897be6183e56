"""Generation benchmark figures that bench scripts leave under var/bench.

Each file is one JSON object::

    {"backend": "musicgen", "model": "facebook/musicgen-small", "device": "cuda",
     "weights": "real",
     "figures": {"audio_seconds_per_wall_second": 3.1, ...},
     "measured_at": "2026-11-24T15:45:00+00:00"}

and the newest file (by ``measured_at``) per measured configuration
(backend, model, device, weights) is what the API shows. Files that do not
follow the format, or do not say what was measured, are skipped and logged.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from pydantic import ValidationError

from serving.schemas.pipeline import BenchmarkPublic

log = logging.getLogger("serving.benchmarks")


MEASURED = ("backend", "model", "device", "weights")


def latest_benchmarks(directory: Path) -> list[BenchmarkPublic]:
    latest: dict[tuple[str, ...], BenchmarkPublic] = {}
    if not directory.is_dir():
        return []
    for path in sorted(directory.glob("*.json")):
        try:
            data = json.loads(path.read_text())
            # Writers may add keys of their own (host, notes): take ours.
            fields = {k: data[k] for k in (*MEASURED, "figures", "measured_at") if k in data}
            item = BenchmarkPublic.model_validate({**fields, "source": path.name})
        except (OSError, ValueError, ValidationError, TypeError) as exc:
            log.warning(
                "skipping benchmark file", extra={"file": str(path), "error": str(exc)[:200]}
            )
            continue
        if item.measured_at.tzinfo is None:
            log.warning("skipping benchmark file without a zone", extra={"file": str(path)})
            continue
        key = tuple(getattr(item, k) for k in MEASURED)
        current = latest.get(key)
        if current is None or item.measured_at > current.measured_at:
            latest[key] = item
    return [latest[k] for k in sorted(latest)]
