"""Benchmark results keep what was measured: backend, model, device, weights."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from serving.services.benchmarks import latest_benchmarks

REPO = Path(__file__).resolve().parents[2]


def _bench(tmp_path: Path, name: str, *args: str) -> dict[str, Any]:
    out = tmp_path / "bench" / f"{name}.json"
    proc = subprocess.run(
        [sys.executable, "bench/generate.py", *args, "--batch", "1", "--output", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    data: dict[str, Any] = json.loads(out.read_text())
    return data


def test_generate_bench_records_what_it_measured_and_the_api_shows_it(tmp_path: Path) -> None:
    procedural = _bench(tmp_path, "procedural", "--backend", "procedural", "--duration", "10")
    assert {k: procedural[k] for k in ("backend", "model", "device", "weights")} == {
        "backend": "procedural",
        "model": procedural["model"],
        "device": "cpu",
        "weights": "none",
    }
    assert procedural["model"]
    musicgen = _bench(
        tmp_path,
        "musicgen-tiny",
        *("--backend", "musicgen", "--random-weights", "tiny", "--device", "cpu"),
        *("--duration", "0.5", "--window", "1", "--context", "0.2", "--no-warmup"),
    )
    assert musicgen["backend"] == "musicgen"
    assert musicgen["model"] == "random-weights:musicgen-tiny"
    assert musicgen["device"] == "cpu"
    assert musicgen["weights"] == "random"
    assert musicgen["figures"]["audio_seconds"] > 0

    shown = {
        (b.backend, b.model, b.device, b.weights) for b in latest_benchmarks(tmp_path / "bench")
    }
    assert shown == {
        ("procedural", procedural["model"], "cpu", "none"),
        ("musicgen", "random-weights:musicgen-tiny", "cpu", "random"),
    }


def test_random_weights_need_the_musicgen_backend(tmp_path: Path) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "bench/generate.py",
            "--backend",
            "procedural",
            "--random-weights",
            "tiny",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert "--random-weights builds MusicGen: it needs --backend musicgen" in proc.stderr


def _write(directory: Path, name: str, **data: Any) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / name).write_text(json.dumps(data))


def test_each_measured_configuration_keeps_its_latest_result(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    bench = tmp_path / "bench"
    common = {"backend": "musicgen", "model": "facebook/musicgen-small"}
    _write(bench, "real-cuda-old.json", **common, device="cuda", weights="real",
           figures={"audio_seconds_per_wall_second": 2.0}, measured_at="2026-11-01T10:00:00+00:00")  # fmt: skip
    _write(bench, "real-cuda-new.json", **common, device="cuda", weights="real",
           figures={"audio_seconds_per_wall_second": 3.0}, measured_at="2026-11-02T10:00:00+00:00")  # fmt: skip
    # Newer, but random weights on a CPU: another measurement, not a replacement.
    _write(bench, "random-cpu.json", **common, device="cpu", weights="random",
           figures={"audio_seconds_per_wall_second": 0.09}, measured_at="2026-11-03T10:00:00+00:00")  # fmt: skip
    # Says nothing about what was measured: not shown.
    _write(bench, "unlabelled.json", backend="musicgen", figures={"x": 1.0},
           measured_at="2026-11-04T10:00:00+00:00")  # fmt: skip
    _write(bench, "bad-weights.json", **common, device="cpu", weights="pretrained",
           figures={"x": 1.0}, measured_at="2026-11-04T10:00:00+00:00")  # fmt: skip

    with caplog.at_level("WARNING", logger="serving.benchmarks"):
        items = latest_benchmarks(bench)
    assert [(b.device, b.weights, b.figures, b.source) for b in items] == [
        ("cpu", "random", {"audio_seconds_per_wall_second": 0.09}, "random-cpu.json"),
        ("cuda", "real", {"audio_seconds_per_wall_second": 3.0}, "real-cuda-new.json"),
    ]
    skipped = {r.__dict__.get("file", "") for r in caplog.records}
    assert {Path(f).name for f in skipped} == {"unlabelled.json", "bad-weights.json"}
