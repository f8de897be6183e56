"""``experiment_results`` from the ``events`` table: each exposed unit's
outcome on its experiment's primary metric, then ``analytics.stats``.

A unit's outcome counts only what it did after its first exposure. The
metric's events are conversions recorded for the experiment
(``POST …/convert`` or ``record_event(…, "conversion", event=…,
experiment_id=…)``), tracked client events of the metric's name, or server
events of that kind (e.g. ``checkout_completed`` from payments). A
conversion flagged ``no_exposure`` is never counted; their number is
reported on every row of the experiment (``unexposed_conversions``).
"""

from __future__ import annotations

from datetime import UTC, datetime

import polars as pl
import pyarrow as pa

from analytics.experiments import EXPERIMENTS, Experiment
from analytics.stats import UnitOutcome, analyse
from analytics.transforms import unit_expr
from sonicforge.tables import EXPERIMENT_RESULTS


def _unit() -> pl.Expr:
    from_props = pl.col("properties").str.json_path_match("$.unit_id")
    return pl.coalesce(from_props, unit_expr())


def outcomes(events: pl.LazyFrame, experiment: Experiment) -> tuple[list[UnitOutcome], int]:
    """Every exposed unit's outcome, and the conversions without exposure."""
    exp_id, metric = experiment.experiment_id, experiment.metric
    exposures = (
        events.filter((pl.col("type") == "exposure") & (pl.col("experiment_id") == exp_id))
        .select(_unit().alias("unit"), "ts", "variant")
        .sort("ts")
        .group_by("unit")
        .agg(pl.col("variant").first(), pl.col("ts").first().alias("exposed_at"))
    )
    flagged = pl.col("flags").list.contains("no_exposure")
    is_metric = (
        (
            (pl.col("type") == "conversion")
            & (pl.col("experiment_id") == exp_id)
            & (pl.col("event") == metric.event)
            & ~flagged
        )
        | ((pl.col("type") == "track") & (pl.col("event") == metric.event))
        | (pl.col("type") == metric.event)
    )
    value = (
        pl.col("properties").str.json_path_match(f"$.{metric.value}").cast(pl.Float64, strict=False)
        if metric.value
        else pl.lit(1.0)
    )
    hits = events.filter(is_metric).select(_unit().alias("unit"), "ts", value.alias("value"))
    per_unit = (
        exposures.join(hits, on="unit", how="left")
        .with_columns(
            pl.when(pl.col("ts") >= pl.col("exposed_at"))
            .then(pl.col("value").fill_null(0.0))
            .otherwise(0.0)
            .alias("value")
        )
        .group_by("unit", "variant")
        .agg(
            pl.col("value").sum().alias("total"),
            (pl.col("ts") >= pl.col("exposed_at")).any().alias("converted"),
        )
        .collect()
    )
    unexposed = int(
        events.filter(
            (pl.col("type") == "conversion") & (pl.col("experiment_id") == exp_id) & flagged
        )
        .select(pl.len())
        .collect()
        .item()
    )
    out = [
        UnitOutcome(
            variant=r["variant"],
            value=(1.0 if r["converted"] else 0.0) if metric.kind == "proportion" else r["total"],
        )
        for r in per_unit.iter_rows(named=True)
    ]
    return out, unexposed


def experiment_results(events: pl.LazyFrame, *, now: datetime | None = None) -> pa.Table:
    now = now or datetime.now(UTC)
    rows = []
    for exp in EXPERIMENTS.values():
        units, unexposed = outcomes(events, exp)
        results = analyse(
            exp, units, unexposed_conversions={v.name: unexposed for v in exp.variants}
        )
        rows += [r.row(now) for r in results]
    return pa.Table.from_pylist(rows, schema=EXPERIMENT_RESULTS.schema)
