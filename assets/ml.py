"""The recommender and the demand-steered generation plan.

``listener_interactions`` and ``track_features`` turn feedback and track
facts into the recommender's inputs; ``recommender_model`` trains every
candidate and baseline on one time split, logs the run and registers the
winner in MLflow; the blocking check ``recommender_promotion`` moves the
``champion`` alias only to a version that beats TopPop and the current
champion. ``generation_plan`` is what the air-feed sensor asks for next.
"""

# No ``from __future__ import annotations``: Dagster reads the config
# parameter's annotation from the signature (see assets/tracks.py).
import json
from datetime import UTC, datetime
from typing import Any

import dagster as dg
from pydantic import Field

from models.recommend import sources
from orchestration.resources import LakehouseResource, MLflowResource
from sonicforge.settings import get_settings

GROUP = "ml"
PROMOTION_CHECK = "recommender_promotion"


def _md_table(rows: list[dict[str, Any]], columns: list[str]) -> dg.MetadataValue:
    head = "| " + " | ".join(columns) + " |\n|" + "---|" * len(columns) + "\n"
    body = "".join(
        "| "
        + " | ".join(
            f"{r.get(c):.4f}" if isinstance(r.get(c), float) else str(r.get(c)) for c in columns
        )
        + " |\n"
        for r in rows
    )
    return dg.MetadataValue.md(head + body if rows else "_no rows_")


class RecommenderConfig(dg.Config):
    """Parameters of one recommender training."""

    factors: int = Field(default=64, ge=4, le=512)
    iterations: int = Field(default=12, ge=1, le=200)
    regularization: float = Field(default=0.05, gt=0.0, le=100.0)
    alpha: float = Field(default=2.0, gt=0.0, le=1000.0)
    test_days: float | None = Field(
        default=None, gt=0.0, le=60.0, description="Defaults to settings."
    )
    max_eval_users: int = Field(default=10_000, ge=10, le=1_000_000)
    seed: int = 0


@dg.asset(
    group_name=GROUP, kinds={"python", "deltalake"}, metadata={"table": "listener_interactions"}
)
def listener_interactions(
    context: dg.AssetExecutionContext, lakehouse: LakehouseResource
) -> dg.MaterializeResult:
    """Implicit feedback per listener and track from plays, skips, votes, shares and requests."""
    settings = get_settings()
    lh = lakehouse.open()
    w = sources.weights_from_settings(settings)
    skip_below = settings.recommend_skip_below
    feedback = sources.event_feedback(lh, w, skip_below=skip_below)
    feedback += sources.vote_feedback(lh, w, app_database_url=settings.resolved_app_database_url)
    simulated = 0
    if settings.recommend_include_simulated:
        sim = sources.simulated_feedback(lh, w, skip_below=skip_below)
        simulated = len(sim)
        feedback += sim
    rows = sources.interaction_rows(feedback)
    result = lh.upsert("listener_interactions", rows) if rows else {"inserted": 0, "updated": 0}
    kinds: dict[str, int] = {}
    for f in feedback:
        kinds[f.kind] = kinds.get(f.kind, 0) + 1
    return dg.MaterializeResult(
        metadata={
            "pairs": len(rows),
            "inserted": result["inserted"],
            "updated": result["updated"],
            "feedback": dg.MetadataValue.json(kinds),
            "simulated_feedback": simulated,
            "listeners": len({r["user_id"] for r in rows}),
        }
    )


@dg.asset(group_name=GROUP, kinds={"python", "deltalake"}, metadata={"table": "track_features"})
def track_features(
    context: dg.AssetExecutionContext, lakehouse: LakehouseResource
) -> dg.MaterializeResult:
    """Content features of every track, from the moment it has a tracks row."""
    settings = get_settings()
    lh = lakehouse.open()
    tracks = lh.read("tracks", columns=["track_id", "genre", "bpm", "musical_key", "created_at"])
    scores = {r["track_id"]: r for r in lh.read("track_scores").to_pylist()}
    rows = sources.feature_rows(tracks.to_pylist(), scores)
    if settings.recommend_include_simulated:
        sim = sources.read_table(
            lh,
            "simulated_tracks",
            ["track_id", "genre", "bpm", "musical_key", "energy", "quality_score", "released_at"],
        )
        if sim is not None:
            rows += sources.feature_rows(sim.to_pylist(), {}, simulated=True)
    result = lh.upsert("track_features", rows) if rows else {"inserted": 0, "updated": 0}
    return dg.MaterializeResult(
        metadata={
            "tracks": len(rows),
            "inserted": result["inserted"],
            "updated": result["updated"],
            "simulated": sum(1 for r in rows if r["simulated"]),
        }
    )


def _registry(mlflow: MLflowResource, settings: Any) -> Any:
    from models.recommend.registry import RecommenderRegistry

    return RecommenderRegistry.from_tracking(
        mlflow.tracking(), model_name=settings.recommend_model_name
    )


@dg.asset(
    group_name=GROUP,
    kinds={"python", "mlflow"},
    deps=[listener_interactions, track_features],
)
def recommender_model(
    context: dg.AssetExecutionContext,
    config: RecommenderConfig,
    lakehouse: LakehouseResource,
    mlflow: MLflowResource,
) -> dg.MaterializeResult:
    """The recommender trained on a time split, logged and registered in MLflow."""
    from models.recommend.train import TrainConfig, train_and_evaluate

    settings = get_settings()
    lh = lakehouse.open()
    ds = sources.dataset_from_tables(lh.read("listener_interactions"), lh.read("track_features"))
    if ds.rows == 0:
        raise dg.Failure(
            description="listener_interactions is empty: no plays, votes or shares yet "
            "(set SONICFORGE_RECOMMEND_INCLUDE_SIMULATED=true to train on the simulator's data)"
        )
    train_config = TrainConfig(
        factors=config.factors,
        iterations=config.iterations,
        regularization=config.regularization,
        alpha=config.alpha,
        test_days=config.test_days or settings.recommend_test_days,
        max_eval_users=config.max_eval_users,
        seed=config.seed,
    )
    try:
        result = train_and_evaluate(ds, train_config, log=context.log.info)
    except ValueError as exc:
        raise dg.Failure(description=f"cannot train the recommender: {exc}") from exc
    registry = _registry(mlflow, settings)
    registered = registry.log_training(
        result,
        params={
            **config.model_dump(),
            "listeners": ds.n_users,
            "tracks": ds.n_items,
            "rows": ds.rows,
        },
        tags={"dagster.run_id": context.run_id},
    )
    chosen = result.reports[result.chosen]
    return dg.MaterializeResult(
        metadata={
            "version": registered.version,
            "mlflow_run_id": registered.run_id,
            "chosen": result.chosen,
            "cutoff_us": result.split.cutoff_us,
            "test_days": train_config.test_days,
            "ndcg_at_10": chosen.overall.ndcg,
            "cold_ndcg_at_10": chosen.cold.ndcg,
            "toppop_ndcg_at_10": result.reports["toppop"].overall.ndcg,
            "metrics": _md_table(
                result.table(),
                [
                    "model",
                    "ndcg_at_10",
                    "precision_at_10",
                    "recall_at_10",
                    "coverage",
                    "cold_ndcg_at_10",
                    "fit_s",
                ],
            ),
        }
    )


def promotion_verdict(
    new: float,
    toppop: float,
    champion: float | None,
    *,
    margin: float,
    random: float | None = None,
) -> tuple[bool, str]:
    """Whether a version with NDCG@10 ``new`` may take the alias, and why:
    it must beat TopPop (and a random ranking, which TopPop can fall below
    when most liked tracks are new) by more than ``margin`` (relative), and
    the champion by at least ``margin`` (a retrain on unchanged data ties
    and passes when the margin is 0)."""
    misses = []
    floors = {"TopPop": toppop} | ({"a random ranking": random} if random is not None else {})
    for name, value in floors.items():
        need = value * (1.0 + margin)
        if not new > need:
            misses.append(
                f"{name}'s {value:.4f} (+{margin:.0%}) needs more than {need:.4f}: "
                f"missed by {need - new:.4f}"
            )
    if champion is not None:
        need_champ = champion * (1.0 + margin)
        if new < need_champ:
            misses.append(
                f"the champion's {champion:.4f} (+{margin:.0%}) needs at least {need_champ:.4f}: "
                f"missed by {need_champ - new:.4f}"
            )
    if misses:
        return False, f"NDCG@10 {new:.4f} does not beat " + "; ".join(misses)
    beaten = ", ".join(f"{k} ({v:.4f})" for k, v in floors.items())
    if champion is not None:
        beaten += f" and the champion ({champion:.4f})"
    return True, f"NDCG@10 {new:.4f} beats {beaten} with margin {margin:.0%}"


@dg.asset_check(asset=recommender_model, name=PROMOTION_CHECK, blocking=True)
def recommender_promotion(
    context: dg.AssetCheckExecutionContext, lakehouse: LakehouseResource, mlflow: MLflowResource
) -> dg.AssetCheckResult:
    """Moves ``champion`` to the new version only if, loaded back from the
    registry and evaluated on the same split, it beats TopPop and the champion."""
    from models.recommend.artifact import ArtifactScorer
    from models.recommend.baselines import RandomRanking, TopPop
    from models.recommend.data import time_split
    from models.recommend.evaluate import evaluate

    settings = get_settings()
    event = context.instance.get_latest_materialization_event(recommender_model.key)
    mat = event.asset_materialization if event is not None else None
    if mat is None:
        return dg.AssetCheckResult(
            passed=False, description="recommender_model has no materialization"
        )
    version = str(mat.metadata["version"].value)
    cutoff = int(mat.metadata["cutoff_us"].value)  # type: ignore[arg-type]
    lh = lakehouse.open()
    ds = sources.dataset_from_tables(lh.read("listener_interactions"), lh.read("track_features"))
    split = time_split(ds, cutoff_us=cutoff)
    registry = _registry(mlflow, settings)
    new = ArtifactScorer(registry.load(version), ds.user_ids, ds.item_ids)
    new.fit(split.train_pos, ds.item_features)
    new_ndcg = evaluate(new.score, split).overall.ndcg
    pop = TopPop()
    pop.fit(split.train_pos, ds.item_features)
    pop_ndcg = evaluate(pop.score, split).overall.ndcg
    rnd = RandomRanking()
    rnd.fit(split.train_pos, ds.item_features)
    random_ndcg = evaluate(rnd.score, split).overall.ndcg
    current = registry.champion_version(settings.recommend_alias)
    champion_ndcg = None
    if current is not None and current != version:
        champ = ArtifactScorer(registry.load(current), ds.user_ids, ds.item_ids)
        champ.fit(split.train_pos, ds.item_features)
        champion_ndcg = evaluate(champ.score, split).overall.ndcg
    passed, text = promotion_verdict(
        new_ndcg,
        pop_ndcg,
        champion_ndcg,
        margin=settings.recommend_promotion_margin,
        random=random_ndcg,
    )
    if passed:
        registry.promote(version, settings.recommend_alias)
    return dg.AssetCheckResult(
        passed=passed,
        description=(
            f"version {version} is now {settings.recommend_alias!r}: "
            if passed
            else f"version {version} stays unpromoted: "
        )
        + text,
        metadata={
            "version": version,
            "actual": new_ndcg,
            "threshold": max(pop_ndcg, random_ndcg, champion_ndcg or 0.0)
            * (1 + settings.recommend_promotion_margin),
            "toppop_ndcg_at_10": pop_ndcg,
            "random_ndcg_at_10": random_ndcg,
            "champion_version": current or "",
            "champion_ndcg_at_10": champion_ndcg if champion_ndcg is not None else float("nan"),
            "margin": settings.recommend_promotion_margin,
        },
    )


class PlanConfig(dg.Config):
    """How many tracks the plan covers."""

    count: int = Field(default=24, ge=1, le=1000)
    seed: int | None = Field(default=None, description="Defaults to the hour, so plans vary.")


@dg.asset(
    group_name=GROUP, kinds={"python", "deltalake", "mlflow"}, metadata={"table": "generation_plan"}
)
def generation_plan(
    context: dg.AssetExecutionContext,
    config: PlanConfig,
    lakehouse: LakehouseResource,
    mlflow: MLflowResource,
) -> dg.MaterializeResult:
    """What to generate next: genres, tempos, keys and moods weighted by listener demand."""
    from models.recommend.plan import Demand, make_plan
    from models.recommend.plan import PlanConfig as BanditConfig

    settings = get_settings()
    lh = lakehouse.open()
    now = datetime.now(UTC)
    feedback = sources.plan_feedback(lh, skip_below=settings.recommend_skip_below)
    demand = Demand.from_feedback(feedback, now=now, half_life_days=settings.plan_half_life_days)
    seed = config.seed if config.seed is not None else int(now.timestamp() // 3600)
    plan = make_plan(
        demand, config.count, BanditConfig(exploration=settings.plan_exploration, seed=seed)
    )
    plan_id = f"plan_{now.strftime('%Y%m%dT%H%M%S')}_{context.run_id[:8]}"
    plan["plan_id"] = plan_id
    rows = [
        {
            "plan_id": plan_id,
            "dimension": a["dimension"],
            "value": a["value"],
            "share": a["share"],
            "alpha": a["alpha"],
            "beta": a["beta"],
            "reason": a["reason"],
            "spec": None,
            "created_at": now,
        }
        for a in plan["arms"]
    ] + [
        {
            "plan_id": plan_id,
            "dimension": "spec",
            "value": f"{n:04d}",
            "share": 1.0 / config.count,
            "alpha": None,
            "beta": None,
            "reason": "planned track",
            "spec": json.dumps(s),
            "created_at": now,
        }
        for n, s in enumerate(plan["specs"])
    ]
    lh.insert_new("generation_plan", rows)
    run_id = _registry(mlflow, settings).log_plan(plan, tags={"dagster.run_id": context.run_id})
    genres = [a for a in plan["arms"] if a["dimension"] == "genre"]
    return dg.MaterializeResult(
        metadata={
            "plan_id": plan_id,
            "mlflow_run_id": run_id,
            "feedback": len(feedback),
            "exploration": settings.plan_exploration,
            "genres": _md_table(genres, ["value", "share", "p_best", "mean", "n", "reason"]),
            "specs": _md_table(plan["specs"], ["genre", "bpm", "musical_key", "mood"]),
        }
    )


recommender_job = dg.define_asset_job(
    name="recommender_job",
    selection=dg.AssetSelection.assets(listener_interactions, track_features, recommender_model),
    description="Rebuild the recommender's inputs, train, register, and promote if it wins.",
)
generation_plan_job = dg.define_asset_job(
    name="generation_plan_job",
    selection=dg.AssetSelection.assets(generation_plan),
    description="Plan the next generation runs from listener demand.",
)
recommender_schedule = dg.ScheduleDefinition(
    name="recommender_daily",
    job=recommender_job,
    cron_schedule="30 3 * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
)
generation_plan_schedule = dg.ScheduleDefinition(
    name="generation_plan_hourly",
    job=generation_plan_job,
    cron_schedule="5 * * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
)

ML_ASSETS = [listener_interactions, track_features, recommender_model, generation_plan]
ML_CHECKS = [recommender_promotion]
ML_JOBS = [recommender_job, generation_plan_job]
ML_SCHEDULES = [recommender_schedule, generation_plan_schedule]
