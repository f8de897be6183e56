"""Experiment statistics, with maintained libraries rather than hand-made
formulas: statsmodels for the tests and intervals, scipy for the
sample-ratio check.

- Proportion metrics: Wilson intervals (``proportion_confint``) and a
  two-sided two-proportion z-test against the control
  (``proportions_ztest``).
- Mean metrics: t intervals (``DescrStatsW``) and Welch's t-test
  (``ttest_ind(usevar="unequal")``).
- Sample-ratio mismatch: Pearson's chi-square of the exposed units per
  variant against the configured weights (``scipy.stats.chisquare``),
  flagged at p < 0.001; a flagged experiment reports no verdict, since a
  broken split biases every comparison.
- Fewer exposed units than the minimum sample in any variant: the rates
  are shown, the test is not (``not_enough_data``). With more than two
  variants each is compared with the control at ``alpha / (k - 1)``
  (Bonferroni).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np

from analytics.experiments import Experiment

SRM_ALPHA = 0.001


@dataclass(frozen=True)
class UnitOutcome:
    """One exposed unit: its variant and its metric (0/1 or a value)."""

    variant: str
    value: float


@dataclass(frozen=True)
class VariantResult:
    experiment_id: str
    variant: str
    is_control: bool
    metric: str
    weight: float
    exposures: int
    conversions: int
    rate: float | None
    mean: float | None
    ci_low: float | None
    ci_high: float | None
    diff: float | None
    p_value: float | None
    significant: bool | None
    srm_p_value: float | None
    srm: bool
    unexposed_conversions: int
    min_sample: int
    status: str

    def row(self, computed_at: datetime) -> dict[str, object]:
        return {**self.__dict__, "computed_at": computed_at}


def _finite(x: float) -> float | None:
    return float(x) if x is not None and math.isfinite(float(x)) else None


def srm_p_value(counts: Sequence[int], weights: Sequence[float]) -> float | None:
    """Chi-square p-value of ``counts`` against the split ``weights``."""
    from scipy.stats import chisquare

    total = sum(counts)
    if total == 0:
        return None
    w = np.asarray(weights, dtype=float)
    expected = total * w / w.sum()
    return _finite(chisquare(np.asarray(counts, dtype=float), f_exp=expected).pvalue)


def analyse(
    experiment: Experiment,
    outcomes: Sequence[UnitOutcome],
    *,
    unexposed_conversions: Mapping[str, int] | None = None,
) -> list[VariantResult]:
    """Results per variant of ``experiment`` from its exposed units' outcomes."""
    from statsmodels.stats.proportion import proportion_confint, proportions_ztest
    from statsmodels.stats.weightstats import DescrStatsW, ttest_ind

    metric = experiment.metric
    values: dict[str, list[float]] = {v.name: [] for v in experiment.variants}
    for o in outcomes:
        if o.variant in values:
            values[o.variant].append(o.value)
    arrays = {name: np.asarray(vals, dtype=float) for name, vals in values.items()}
    counts = [len(arrays[v.name]) for v in experiment.variants]
    weights = experiment.weights()
    srm_p = srm_p_value(counts, [weights[v.name] for v in experiment.variants])
    srm = srm_p is not None and srm_p < SRM_ALPHA
    enough = all(n >= experiment.min_sample for n in counts)
    status = "srm" if srm else ("ok" if enough else "not_enough_data")
    alpha = experiment.alpha / max(1, len(experiment.variants) - 1)
    control = arrays[experiment.control.name]
    unexposed = unexposed_conversions or {}

    results = []
    for v in experiment.variants:
        x = arrays[v.name]
        n = len(x)
        conversions = int((x > 0).sum()) if metric.kind == "proportion" else int(n)
        rate = mean = low = high = diff = p = None
        if n:
            if metric.kind == "proportion":
                rate = conversions / n
                lo, hi = proportion_confint(conversions, n, alpha=experiment.alpha, method="wilson")
                low, high = _finite(lo), _finite(hi)
            else:
                mean = float(x.mean())
                if n > 1:
                    lo, hi = DescrStatsW(x).tconfint_mean(alpha=experiment.alpha)
                    low, high = _finite(lo), _finite(hi)
        is_control = v.name == experiment.control.name
        if not is_control and n and len(control):
            if metric.kind == "proportion":
                c0 = int((control > 0).sum())
                diff = conversions / n - c0 / len(control)
                if status == "ok" and (conversions + c0) not in (0, n + len(control)):
                    _, pv = proportions_ztest([conversions, c0], [n, len(control)])
                    p = _finite(pv)
            else:
                diff = float(x.mean() - control.mean())
                if status == "ok" and n > 1 and len(control) > 1:
                    _, pv, _ = ttest_ind(x, control, usevar="unequal")
                    p = _finite(pv)
        results.append(
            VariantResult(
                experiment_id=experiment.experiment_id,
                variant=v.name,
                is_control=is_control,
                metric=metric.name,
                weight=weights[v.name],
                exposures=n,
                conversions=conversions,
                rate=rate,
                mean=mean,
                ci_low=low,
                ci_high=high,
                diff=diff,
                p_value=p,
                significant=None if p is None else p < alpha,
                srm_p_value=srm_p,
                srm=srm,
                unexposed_conversions=int(unexposed.get(v.name, 0)),
                min_sample=experiment.min_sample,
                status=status,
            )
        )
    return results
