"""The demand-steered generation plan against simulated listeners who
prefer one genre and tempo range, over simulated days."""

from __future__ import annotations

import numpy as np
import pytest

from models.recommend.features import GENRES
from models.recommend.plan import (
    GENRE_TEMPO,
    Demand,
    Feedback,
    PlanConfig,
    allocate,
    make_plan,
    tempo_band,
    uniform_plan,
)

FAVOURITE = "techno"


def satisfaction(spec: dict, rng: np.random.Generator) -> float:
    """Simulated listeners: techno at the top of its range is what they love."""
    base = 0.75 if spec["genre"] == FAVOURITE else 0.3
    if spec["genre"] == FAVOURITE and tempo_band(spec["genre"], spec["bpm"]) == "high":
        base += 0.15
    return float(np.clip(base + rng.normal(0, 0.05), 0, 1))


def run_days(
    days: int, *, steered: bool, exploration: float = 0.2
) -> tuple[list[float], list[float]]:
    rng = np.random.default_rng(7)
    feedback: list[Feedback] = []
    shares, happiness = [], []
    for day in range(days):
        if steered:
            plan = make_plan(
                Demand.from_feedback(feedback), 30, PlanConfig(exploration=exploration, seed=day)
            )
            specs = plan["specs"]
        else:
            specs = uniform_plan(30, seed=day)
        day_happy = []
        for spec in specs:
            for _ in range(20):  # twenty simulated listeners hear each track
                happy = satisfaction(spec, rng)
                day_happy.append(happy)
                feedback.append(Feedback(genre=spec["genre"], reward=float(rng.random() < happy),
                                         bpm=spec["bpm"], musical_key=spec["musical_key"],
                                         mood=spec["mood"]))  # fmt: skip
        shares.append(sum(s["genre"] == FAVOURITE for s in specs) / len(specs))
        happiness.append(float(np.mean(day_happy)))
    return shares, happiness


def test_demand_steers_the_plan_and_keeps_exploring() -> None:
    shares, happy = run_days(8, steered=True)
    _, uniform_happy = run_days(8, steered=False)
    assert shares[0] < 0.4 and shares[-1] > 0.6, shares  # the favourite's share rises
    assert np.mean(happy[-3:]) > np.mean(uniform_happy[-3:]) + 0.1, (happy, uniform_happy)
    # Every genre keeps the exploration floor in the plan's shares.
    feedback = [Feedback(genre=FAVOURITE, reward=1.0) for _ in range(500)]
    plan = make_plan(Demand.from_feedback(feedback), 30, PlanConfig(exploration=0.2))
    floor = 0.2 / len(GENRES)
    assert all(plan["genre_shares"][g] >= floor - 1e-12 for g in GENRES)
    assert sum(plan["genre_shares"].values()) == pytest.approx(1.0)
    assert {s["genre"] for s in make_plan(Demand.from_feedback(feedback), 60).get("specs")} == set(
        GENRES
    )


def test_plan_specs_stay_in_each_genre_range_and_give_reasons() -> None:
    plan = make_plan(Demand(), 24, PlanConfig(seed=1))
    for spec in plan["specs"]:
        lo, hi = GENRE_TEMPO[spec["genre"]]
        assert lo <= spec["bpm"] <= hi
    reasons = {a["value"]: a["reason"] for a in plan["arms"] if a["dimension"] == "genre"}
    assert all("no demand measured yet" in r for r in reasons.values())


def test_allocate_apportions_exactly() -> None:
    slots = allocate({"a": 0.5, "b": 0.3, "c": 0.2}, 10)
    assert (slots.count("a"), slots.count("b"), slots.count("c")) == (5, 3, 2)


def test_exploration_out_of_range_is_refused() -> None:
    with pytest.raises(ValueError, match="out of range"):
        PlanConfig(exploration=1.5)
