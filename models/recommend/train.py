"""Train every candidate and baseline on one time split, pick the winner.

Each model is fitted on the interactions before the cutoff and evaluated on
the days after it (``evaluate``). The hybrid's content scale is tuned on a
validation split inside the training period, never on the test days. The
winner on NDCG@10 overall becomes the artifact that is registered; it is
trained on data up to the cutoff, so tomorrow's run can evaluate it on its
own test days without leakage.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from models.recommend.artifact import RecommenderArtifact
from models.recommend.baselines import EASE, ItemKNN, RandomRanking, Recommender, TopPop
from models.recommend.data import Dataset, Split, time_split
from models.recommend.evaluate import Report, evaluate
from models.recommend.factorization import BPR, IALS, HybridIALS

BASELINES = ("random", "toppop", "ease", "itemknn")
CANDIDATES = ("hybrid_ials", "ials", "bpr")
#: EASE inverts an items × items matrix: above this many heard tracks it is skipped.
EASE_MAX_ITEMS = 12_000


@dataclass(frozen=True)
class TrainConfig:
    factors: int = 64
    iterations: int = 12
    regularization: float = 0.05
    alpha: float = 2.0
    bpr_iterations: int = 60
    test_days: float = 7.0
    max_eval_users: int | None = 10_000
    content_scales: tuple[float, ...] = (1.0, 2.0, 3.0, 4.0, 6.0, 8.0, 12.0)
    baselines: tuple[str, ...] = BASELINES
    candidates: tuple[str, ...] = CANDIDATES
    seed: int = 0

    def build(self, name: str, *, content_scale: float = 3.0) -> Recommender:
        als = {
            "factors": self.factors,
            "iterations": self.iterations,
            "regularization": self.regularization,
            "alpha": self.alpha,
            "seed": self.seed,
        }
        makers: dict[str, Callable[[], Recommender]] = {
            "random": lambda: RandomRanking(seed=self.seed),
            "toppop": TopPop,
            "ease": EASE,
            "itemknn": ItemKNN,
            "ials": lambda: IALS(**als),  # type: ignore[arg-type]
            "hybrid_ials": lambda: HybridIALS(content_scale=content_scale, **als),  # type: ignore[arg-type]
            "bpr": lambda: BPR(
                factors=self.factors, iterations=self.bpr_iterations, seed=self.seed
            ),
        }
        if name not in makers:
            raise ValueError(f"unknown recommender {name!r}; allowed: {', '.join(sorted(makers))}")
        return makers[name]()


@dataclass
class TrainResult:
    chosen: str
    artifact: RecommenderArtifact
    reports: dict[str, Report]
    fit_seconds: dict[str, float]
    split: Split
    content_scale: float
    skipped: dict[str, str] = field(default_factory=dict)

    def metrics(self) -> dict[str, float]:
        """Flat MLflow metrics: ``{model}.{metric}`` and the chosen model's unprefixed."""
        out: dict[str, float] = {}
        for name, report in self.reports.items():
            out.update({f"{name}.{k}": v for k, v in report.as_dict().items()})
        out.update(self.reports[self.chosen].as_dict())
        for name, s in self.fit_seconds.items():
            out[f"{name}.fit_seconds"] = s
        return out

    def table(self) -> list[dict[str, Any]]:
        """One row per model: overall and cold-start metrics."""
        rows = []
        for name, r in self.reports.items():
            rows.append(
                {
                    "model": name + (" (chosen)" if name == self.chosen else ""),
                    "ndcg_at_10": r.overall.ndcg,
                    "precision_at_10": r.overall.precision,
                    "recall_at_10": r.overall.recall,
                    "coverage": r.overall.coverage,
                    "cold_ndcg_at_10": r.cold.ndcg,
                    "cold_precision_at_10": r.cold.precision,
                    "cold_recall_at_10": r.cold.recall,
                    "fit_s": self.fit_seconds.get(name, 0.0),
                }
            )
        return rows


def subset(ds: Dataset, mask: np.ndarray) -> Dataset:
    return Dataset(
        ds.user_ids,
        ds.item_ids,
        ds.u[mask],
        ds.i[mask],
        ds.w[mask],
        ds.ts[mask],
        ds.item_features,
        ds.item_meta,
        ds.item_created_us,
    )


def tune_content_scale(ds: Dataset, split: Split, config: TrainConfig) -> float:
    """The hybrid's content scale that maximises NDCG@10 on the last
    ``test_days`` before the cutoff (a validation split of the training data)."""
    inner_ds = subset(ds, ds.ts < split.cutoff_us)
    try:
        inner = time_split(inner_ds, test_days=config.test_days)
    except ValueError:
        return 3.0
    model = config.build("hybrid_ials")
    assert isinstance(model, HybridIALS)
    model.fit(inner.train_pos, ds.item_features)
    best, best_ndcg = config.content_scales[0], -1.0
    for scale in config.content_scales:
        model.rescale(scale)
        ndcg = evaluate(
            model.score, inner, max_users=min(config.max_eval_users or 3000, 3000)
        ).overall.ndcg
        if ndcg > best_ndcg:
            best, best_ndcg = scale, ndcg
    return best


def to_artifact(
    model: Recommender, name: str, ds: Dataset, split: Split, config: TrainConfig
) -> RecommenderArtifact:
    if not isinstance(model, IALS | BPR):
        raise ValueError(f"only factor models are served; {name!r} is a baseline")
    return RecommenderArtifact(
        kind=name,
        user_ids=ds.user_ids,
        item_ids=ds.item_ids,
        user_factors=model.user_factors,
        item_vectors=model.item_vectors,
        projection=model.projection
        if isinstance(model, HybridIALS)
        else np.zeros((1, 1), dtype=np.float32),
        content_scale=model.content_scale if isinstance(model, HybridIALS) else 0.0,
        item_features=ds.item_features,
        popularity=np.asarray(split.item_counts, dtype=np.float32),
        history=split.train,
        regularization=float(getattr(model, "regularization", 0.05)),
        alpha=float(getattr(model, "alpha", 1.0)),
        params={
            **model.params(),
            "trained_until_us": split.cutoff_us,
            "test_days": config.test_days,
        },
    )


def train_and_evaluate(
    ds: Dataset,
    config: TrainConfig | None = None,
    *,
    log: Callable[[str], None] = lambda _m: None,
) -> TrainResult:
    """Fit baselines and candidates on one time split; the best candidate
    on NDCG@10 overall is the result's artifact."""
    config = config or TrainConfig()
    split = time_split(ds, test_days=config.test_days)
    scale = tune_content_scale(ds, split, config) if "hybrid_ials" in config.candidates else 3.0
    log(f"hybrid content scale {scale:g} (validation split before the cutoff)")
    reports: dict[str, Report] = {}
    seconds: dict[str, float] = {}
    fitted: dict[str, Recommender] = {}
    skipped: dict[str, str] = {}
    heard = int((split.item_counts > 0).sum())
    for name in (*config.baselines, *config.candidates):
        if name == "ease" and heard > EASE_MAX_ITEMS:
            skipped[name] = f"{heard} heard tracks > {EASE_MAX_ITEMS} (dense inverse)"
            continue
        model = config.build(name, content_scale=scale)
        started = time.perf_counter()
        model.fit(split.train_pos, ds.item_features)
        seconds[name] = time.perf_counter() - started
        reports[name] = evaluate(
            model.score, split, max_users=config.max_eval_users, seed=config.seed
        )
        log(
            f"{name}: fit {seconds[name]:.1f} s, NDCG@10 {reports[name].overall.ndcg:.4f}, "
            f"cold {reports[name].cold.ndcg:.4f}"
        )
        if name in config.candidates:
            fitted[name] = model
        else:
            del model
    if not fitted:
        raise ValueError(f"no candidate among {config.candidates} was trained")
    chosen = max(fitted, key=lambda n: reports[n].overall.ndcg)
    artifact = to_artifact(fitted[chosen], chosen, ds, split, config)
    artifact.metrics = reports[chosen].as_dict()
    return TrainResult(chosen, artifact, reports, seconds, split, scale, skipped)
