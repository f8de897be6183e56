"""Experiment definitions and the deterministic assignment."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter

import pytest
from scipy.stats import chisquare

from analytics.experiments import EXPERIMENTS, UnknownExperimentError, assign, get_experiment


def test_the_three_seed_experiments_are_defined_once() -> None:
    assert set(EXPERIMENTS) == {"crossfade_seconds", "player_layout", "pricing_page"}
    crossfade = EXPERIMENTS["crossfade_seconds"]
    assert [v.config["crossfade_s"] for v in crossfade.variants] == [4.0, 8.0]
    assert crossfade.metric.name == "skip_rate"
    assert EXPERIMENTS["player_layout"].metric.kind == "mean"
    assert EXPERIMENTS["pricing_page"].metric.event == "checkout_completed"
    for e in EXPERIMENTS.values():
        assert e.min_sample > 0 and e.status == "running"
        assert sum(e.weights().values()) == pytest.approx(1.0)


def test_unknown_experiment_names_the_known_ones() -> None:
    with pytest.raises(UnknownExperimentError, match="crossfade_seconds"):
        get_experiment("nope")


@pytest.mark.parametrize("experiment_id", sorted(EXPERIMENTS))
def test_assignment_follows_the_weights(experiment_id: str) -> None:
    exp = EXPERIMENTS[experiment_id]
    counts = Counter(assign(exp, f"u:{i}").name for i in range(20_000))
    expected = [20_000 * w for w in exp.weights().values()]
    observed = [counts[v.name] for v in exp.variants]
    assert chisquare(observed, expected).pvalue > 0.001


def test_assignment_is_the_same_in_another_process() -> None:
    """Stable across workers and restarts: no per-process hash seed."""
    exp = EXPERIMENTS["player_layout"]
    here = [assign(exp, f"a:visitor-{i}").name for i in range(50)]
    code = (
        "from analytics.experiments import EXPERIMENTS, assign;"
        "e = EXPERIMENTS['player_layout'];"
        "print(','.join(assign(e, f'a:visitor-{i}').name for i in range(50)))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True,
        env={"PYTHONHASHSEED": "12345", "PATH": ""},
    )  # fmt: skip
    assert out.stdout.strip().split(",") == here


def test_experiments_assign_independently() -> None:
    """One experiment's split does not predict another's."""
    a, b = EXPERIMENTS["crossfade_seconds"], EXPERIMENTS["player_layout"]
    pairs = Counter((assign(a, f"u:{i}").name, assign(b, f"u:{i}").name) for i in range(8000))
    assert chisquare(list(pairs.values())).pvalue > 0.001
