"""Experiment statistics on data with a known truth: a real effect is found,
an A/A split finds none at about the stated error rate, a broken split is
flagged, and small samples get no verdict."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from analytics.experiments import EXPERIMENTS, Experiment, Metric, Variant
from analytics.stats import SRM_ALPHA, UnitOutcome, analyse, srm_p_value

AB = Experiment(
    experiment_id="ab_test",
    description="test",
    variants=(Variant("a", 0.5, {}), Variant("b", 0.5, {})),
    metric=Metric("conv", "proportion", event="convert", direction="increase"),
    min_sample=500,
    status="running",
)


def _proportions(
    rng: np.random.Generator, n: dict[str, int], p: dict[str, float]
) -> list[UnitOutcome]:
    out = []
    for variant, count in n.items():
        hits = rng.random(count) < p[variant]
        out += [UnitOutcome(variant, float(h)) for h in hits]
    return out


def test_a_real_effect_is_found() -> None:
    rng = np.random.default_rng(7)
    units = _proportions(rng, {"a": 5000, "b": 5000}, {"a": 0.10, "b": 0.13})
    control, treatment = analyse(AB, units)
    assert control.status == treatment.status == "ok"
    assert treatment.significant is True
    assert treatment.p_value is not None and treatment.p_value < 0.001
    assert treatment.diff == pytest.approx(0.03, abs=0.015)
    assert treatment.ci_low is not None and treatment.ci_high is not None
    assert treatment.ci_low < treatment.rate < treatment.ci_high  # type: ignore[operator]
    assert control.srm is False


def test_an_aa_split_finds_no_effect_at_the_stated_error_rate() -> None:
    """Over 300 seeds of an A/A split, the share of false positives is the
    test's alpha (5 %) within what 300 trials allow (a binomial 99.9 %
    band is about 1.5 %-10 %)."""
    rng = np.random.default_rng(2026)
    positives = 0
    trials = 300
    for _ in range(trials):
        units = _proportions(rng, {"a": 1000, "b": 1000}, {"a": 0.2, "b": 0.2})
        _, treatment = analyse(AB, units)
        assert treatment.status == "ok"
        positives += bool(treatment.significant)
    rate = positives / trials
    assert 0.015 <= rate <= 0.10, rate


def test_a_broken_split_is_flagged_as_sample_ratio_mismatch() -> None:
    rng = np.random.default_rng(3)
    # Configured 50/50, served 55/45: the split is broken, whatever the metric.
    units = _proportions(rng, {"a": 5500, "b": 4500}, {"a": 0.1, "b": 0.1})
    control, treatment = analyse(AB, units)
    assert control.srm and treatment.srm
    assert control.srm_p_value is not None and control.srm_p_value < SRM_ALPHA
    assert treatment.status == "srm"
    assert treatment.p_value is None and treatment.significant is None  # no verdict


def test_a_fair_split_is_not_flagged() -> None:
    p = srm_p_value([5030, 4970], [0.5, 0.5])
    assert p is not None and p > 0.1


def test_weights_other_than_even_are_the_expected_split() -> None:
    exp = replace(AB, variants=(Variant("a", 0.8, {}), Variant("b", 0.2, {})))
    rng = np.random.default_rng(5)
    units = _proportions(rng, {"a": 8000, "b": 2000}, {"a": 0.1, "b": 0.1})
    assert all(not r.srm for r in analyse(exp, units))


def test_not_enough_data_until_the_minimum_sample() -> None:
    rng = np.random.default_rng(1)
    units = _proportions(rng, {"a": 200, "b": 200}, {"a": 0.1, "b": 0.3})
    control, treatment = analyse(AB, units)
    assert treatment.status == "not_enough_data"
    assert treatment.p_value is None and treatment.significant is None
    assert treatment.rate is not None and control.rate is not None  # rates are still shown


def test_a_mean_metric_uses_welchs_t_test() -> None:
    exp = EXPERIMENTS["player_layout"]
    rng = np.random.default_rng(11)
    control = [UnitOutcome("classic", float(x)) for x in rng.exponential(600, 2000)]
    better = [UnitOutcome("visualizer_first", float(x)) for x in rng.exponential(700, 2000)]
    c, t = analyse(exp, control + better)
    assert c.mean == pytest.approx(600, rel=0.1)
    assert t.diff == pytest.approx(100, abs=60)
    assert t.significant is True
    assert t.rate is None  # a mean metric has no rate


def test_no_exposures_yields_rows_without_numbers() -> None:
    rows = analyse(AB, [])
    assert [r.exposures for r in rows] == [0, 0]
    assert all(r.rate is None and r.srm is False for r in rows)
    assert rows[0].status == "not_enough_data"
