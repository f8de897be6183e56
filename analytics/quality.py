"""Data-quality suites on lakehouse tables, validated with great-expectations.

Asset checks call ``validate`` with a frame and a list of expectations and
turn the outcome into an ``AssetCheckResult``. great-expectations is heavy
to import (~3 s), so it is imported on first use only.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd


@dataclass(frozen=True)
class Expect:
    """One expectation: a great-expectations class name and its arguments."""

    kind: str  # e.g. "ExpectColumnValuesToBeUnique"
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass
class Outcome:
    passed: bool
    failures: list[dict[str, Any]]
    evaluated: int
    rows: int


@functools.cache
def _context() -> Any:
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    ctx = gx.get_context(mode="ephemeral")
    # Progress bars would write to stderr of every Dagster step.
    ctx.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
    ds = ctx.data_sources.add_pandas("lakehouse")
    return ctx, ds


def validate(frame: pd.DataFrame, expectations: Sequence[Expect], *, name: str) -> Outcome:
    """Run ``expectations`` over ``frame``; an empty frame fails (a gate that
    sees no rows has checked nothing)."""
    import great_expectations as gx

    if frame.empty:
        return Outcome(False, [{"expectation": "rows exist", "detail": "no rows to check"}], 0, 0)
    ctx, ds = _context()
    uid = uuid.uuid4().hex[:12]
    asset = ds.add_dataframe_asset(name=f"{name}-{uid}")
    batch_def = asset.add_batch_definition_whole_dataframe(f"all-{uid}")
    suite = ctx.suites.add(gx.ExpectationSuite(name=f"{name}-{uid}"))
    for exp in expectations:
        suite.add_expectation(getattr(gx.expectations, exp.kind)(**exp.kwargs))
    vd = ctx.validation_definitions.add(
        gx.ValidationDefinition(data=batch_def, suite=suite, name=f"{name}-{uid}")
    )
    try:
        result = vd.run(batch_parameters={"dataframe": frame})
    finally:
        ctx.validation_definitions.delete(vd.name)
        ctx.suites.delete(suite.name)
        ds.delete_asset(asset.name)
    failures = []
    for r in result.results:
        if not r.success:
            cfg = r.expectation_config
            res = dict(r.result or {})
            failures.append(
                {
                    "expectation": cfg.type,
                    "kwargs": {k: v for k, v in cfg.kwargs.items() if k != "batch_id"},
                    "unexpected_count": res.get("unexpected_count"),
                    "partial_unexpected_list": res.get("partial_unexpected_list", [])[:10],
                    "observed_value": res.get("observed_value"),
                }
            )
    return Outcome(bool(result.success), failures, len(result.results), len(frame))


def ids_unique_not_null(column: str) -> list[Expect]:
    return [
        Expect("ExpectColumnValuesToNotBeNull", {"column": column}),
        Expect("ExpectColumnValuesToBeUnique", {"column": column}),
    ]


def between(column: str, low: float | None, high: float | None) -> Expect:
    return Expect(
        "ExpectColumnValuesToBeBetween", {"column": column, "min_value": low, "max_value": high}
    )


def in_set(column: str, values: Sequence[Any]) -> Expect:
    return Expect("ExpectColumnValuesToBeInSet", {"column": column, "value_set": list(values)})
