"""The experiments, defined once, and their deterministic assignment.

A unit (a user id, or an anonymous id before sign-in) is assigned by
hashing ``experiment_id:salt:unit_id`` with SHA-256 and mapping the first
8 bytes onto the variants' cumulative weights: the same unit gets the same
variant in every worker, after every restart, with no shared state. The
salt is part of the definition, so a re-launched experiment (a new salt)
reshuffles its units independently of the last run.

The API serves the variant and records the first exposure; the
``experiment_results`` asset counts exposures and conversions per variant
and tests them (``analytics.stats``).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Literal

from sonicforge.errors import SonicForgeError

Status = Literal["draft", "running", "paused", "concluded"]
MetricKind = Literal["proportion", "mean"]
Direction = Literal["increase", "decrease"]


class UnknownExperimentError(SonicForgeError):
    """No experiment has this id."""


@dataclass(frozen=True)
class Variant:
    name: str
    weight: float
    # What the client applies, e.g. {"crossfade_s": 8}.
    config: dict[str, object]


@dataclass(frozen=True)
class Metric:
    """The primary metric. ``proportion``: the share of exposed units with
    at least one ``event`` after their exposure (a two-proportion z-test).
    ``mean``: the mean per exposed unit of ``value`` summed over its
    ``event`` rows after exposure (Welch's t-test)."""

    name: str
    kind: MetricKind
    event: str
    direction: Direction
    value: str | None = None  # the numeric property summed for a mean metric


@dataclass(frozen=True)
class Experiment:
    experiment_id: str
    description: str
    variants: tuple[Variant, ...]
    metric: Metric
    min_sample: int  # exposed units per variant before a verdict
    status: Status
    salt: str = "v1"
    alpha: float = 0.05

    @property
    def control(self) -> Variant:
        return self.variants[0]

    def weights(self) -> dict[str, float]:
        total = sum(v.weight for v in self.variants)
        return {v.name: v.weight / total for v in self.variants}

    def variant(self, name: str) -> Variant:
        for v in self.variants:
            if v.name == name:
                return v
        raise UnknownExperimentError(
            f"experiment {self.experiment_id!r} has no variant {name!r}; "
            f"variants: {', '.join(v.name for v in self.variants)}"
        )


EXPERIMENTS: dict[str, Experiment] = {
    e.experiment_id: e
    for e in (
        Experiment(
            experiment_id="crossfade_seconds",
            description="The streamer's crossfade between tracks: 4 s against 8 s, on skip rate.",
            variants=(
                Variant("crossfade_4s", 0.5, {"crossfade_s": 4.0}),
                Variant("crossfade_8s", 0.5, {"crossfade_s": 8.0}),
            ),
            metric=Metric("skip_rate", "proportion", event="skip", direction="decrease"),
            min_sample=1000,
            status="running",
        ),
        Experiment(
            experiment_id="player_layout",
            description="The web player's layout: classic against a visualizer-first layout, "
            "on listening time.",
            variants=(
                Variant("classic", 0.5, {"layout": "classic"}),
                Variant("visualizer_first", 0.5, {"layout": "visualizer_first"}),
            ),
            metric=Metric(
                "listening_s", "mean", event="heartbeat", direction="increase", value="seconds"
            ),
            min_sample=500,
            status="running",
        ),
        Experiment(
            experiment_id="pricing_page",
            description="The pricing page: monthly-first against annual-first plans, on "
            "checkout conversion.",
            variants=(
                Variant("monthly_first", 0.5, {"default_interval": "month"}),
                Variant("annual_first", 0.5, {"default_interval": "year"}),
            ),
            metric=Metric(
                "checkout_conversion",
                "proportion",
                event="checkout_completed",
                direction="increase",
            ),
            min_sample=2000,
            status="running",
        ),
    )
}


def get_experiment(experiment_id: str) -> Experiment:
    try:
        return EXPERIMENTS[experiment_id]
    except KeyError:
        raise UnknownExperimentError(
            f"no experiment {experiment_id!r}; experiments: {', '.join(sorted(EXPERIMENTS))}"
        ) from None


def bucket(experiment: Experiment, unit_id: str) -> float:
    """The unit's point in [0, 1) for this experiment (uniform, stable)."""
    digest = hashlib.sha256(f"{experiment.experiment_id}:{experiment.salt}:{unit_id}".encode())
    return int.from_bytes(digest.digest()[:8], "big") / 2**64


def assign(experiment: Experiment, unit_id: str) -> Variant:
    """The variant ``unit_id`` gets, by its bucket on the cumulative weights."""
    point = bucket(experiment, unit_id)
    total = sum(v.weight for v in experiment.variants)
    edge = 0.0
    for v in experiment.variants:
        edge += v.weight / total
        if point < edge:
            return v
    return experiment.variants[-1]  # rounding at the last edge
