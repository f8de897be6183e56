"""The ml assets through Dagster on simulated listeners: interactions and
features into Delta, training logged and registered in MLflow, the blocking
promotion check moving ``champion`` (or refusing to), the API following
the alias, and the generation plan."""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import numpy as np
import pytest

from assets.ml import (
    PROMOTION_CHECK,
    generation_plan,
    listener_interactions,
    recommender_model,
    recommender_promotion,
    track_features,
)
from models.recommend.registry import RecommenderRegistry
from models.recommend.simulate import SimConfig, write_scenario
from models.recommend.sources import latest_plan_specs
from orchestration.resources import LocalLakehouseResource, LocalMLflowResource
from serving.services.recommend import RecommendationService
from sonicforge.lakehouse import Lakehouse
from sonicforge.settings import get_settings

ML = [listener_interactions, track_features, recommender_model, recommender_promotion]
RUN_CONFIG = {"ops": {"recommender_model": {"config": {"iterations": 6, "max_eval_users": 500}}}}


@pytest.fixture
def mlflow_local(tmp_path: Path) -> LocalMLflowResource:
    return LocalMLflowResource(
        tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}",
        artifact_root=str(tmp_path / "mlartifacts"),
    )


@pytest.fixture
def simulated_lake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Lakehouse:
    monkeypatch.setenv("SONICFORGE_RECOMMEND_INCLUDE_SIMULATED", "true")
    monkeypatch.setenv("SONICFORGE_RECOMMEND_TEST_DAYS", "7")
    get_settings.cache_clear()
    lh = Lakehouse(str(tmp_path / "lake"))
    write_scenario(lh, SimConfig(listeners=800, tracks=300, plays=30_000, seed=5, scenario="t"))
    return lh


def _run(lh: Lakehouse, mlflow: LocalMLflowResource, instance: dg.DagsterInstance, **kw):
    return dg.materialize(
        ML,
        instance=instance,
        resources={"lakehouse": LocalLakehouseResource(root=lh.root_uri), "mlflow": mlflow},
        run_config=RUN_CONFIG,
        raise_on_error=False,
        **kw,
    )


def _check(result: dg.ExecuteInProcessResult) -> dg.AssetCheckEvaluation:
    (evaluation,) = [
        e for e in result.get_asset_check_evaluations() if e.check_name == PROMOTION_CHECK
    ]
    return evaluation


def test_training_registers_and_the_gate_promotes(
    simulated_lake: Lakehouse,
    mlflow_local: LocalMLflowResource,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    instance = dg.DagsterInstance.ephemeral()
    lh = simulated_lake
    first = _run(lh, mlflow_local, instance)
    assert first.success
    pairs = lh.read("listener_interactions").to_pylist()
    assert pairs and all(p["simulated"] for p in pairs)  # labelled all the way through
    feats = lh.read("track_features").to_pylist()
    assert len(feats) == 300 and all(f["simulated"] and len(f["features"]) > 20 for f in feats)
    mat = first.asset_materializations_for_node("recommender_model")[0].metadata
    assert mat["chosen"].value == "hybrid_ials" and mat["version"].value == "1"
    check = _check(first)
    assert check.passed, check.description
    assert "is now 'champion'" in str(check.description)
    registry = RecommenderRegistry.from_tracking(mlflow_local.tracking())
    assert registry.champion_version() == "1"
    run = registry.client.get_run(str(mat["mlflow_run_id"].value))
    assert run.data.metrics["toppop.ndcg_at_10"] < run.data.metrics["ndcg_at_10"]
    assert {"ease.ndcg_at_10", "itemknn.cold_ndcg_at_10", "bpr.ndcg_at_10"} <= set(run.data.metrics)

    # The API loads the champion, then follows the alias when it moves.
    settings = get_settings()
    service = RecommendationService(
        catalog=None, lakehouse=lh, db=None, tracking_uri=mlflow_local.tracking_uri,
        artifact_root=mlflow_local.artifact_root, model_name=settings.recommend_model_name,
        alias="champion", poll_s=0,
    )  # fmt: skip
    assert service.refresh() and service.model is not None and service.model.version == "1"
    assert not service.refresh()  # unchanged alias: nothing reloaded

    # A retrain on the same data ties the champion: at margin 0 it passes.
    second = _run(lh, mlflow_local, instance)
    assert _check(second).passed and registry.champion_version() == "2"
    assert service.refresh() and service.model.version == "2"

    # With a margin it cannot meet, the gate fails, says by how much, and
    # the alias stays where it was.
    monkeypatch.setenv("SONICFORGE_RECOMMEND_PROMOTION_MARGIN", "0.5")
    get_settings.cache_clear()
    third = _run(lh, mlflow_local, instance)
    check = _check(third)
    assert not check.passed and "missed by" in str(check.description), check.description
    assert registry.champion_version() == "2"


def test_a_broken_artifact_fails_the_gate(
    simulated_lake: Lakehouse, mlflow_local: LocalMLflowResource
) -> None:
    """The check scores the version as stored: a version whose vectors were
    written with the wrong sign loses to a random ranking and is not promoted."""
    instance = dg.DagsterInstance.ephemeral()
    resources = {
        "lakehouse": LocalLakehouseResource(root=simulated_lake.root_uri),
        "mlflow": mlflow_local,
    }
    trained = dg.materialize(
        [listener_interactions, track_features, recommender_model],
        instance=instance, resources=resources, run_config=RUN_CONFIG,
    )  # fmt: skip
    version = trained.asset_materializations_for_node("recommender_model")[0].metadata["version"]
    (npz,) = Path(mlflow_local.artifact_root).rglob("recommender.npz")
    with np.load(npz) as z:
        arrays = dict(z)
    # A sign error: the model ranks what each listener likes least first.
    arrays["item_vectors"] = -arrays["item_vectors"]
    np.savez_compressed(npz, **arrays)
    result = dg.materialize(
        [recommender_model, recommender_promotion],
        instance=instance, resources=resources,
        selection=dg.AssetSelection.checks(recommender_promotion), raise_on_error=False,
    )  # fmt: skip
    check = _check(result)
    assert not check.passed and "random ranking" in str(check.description), check.description
    registry = RecommenderRegistry.from_tracking(mlflow_local.tracking())
    assert registry.champion_version() is None and version.value == "1"


def test_generation_plan_asset(lakehouse: Lakehouse, mlflow_local: LocalMLflowResource) -> None:
    from tests.serving.factories import seed_tracks

    seed_tracks(lakehouse)
    result = dg.materialize(
        [generation_plan],
        resources={"lakehouse": LocalLakehouseResource(root=lakehouse.root_uri), "mlflow": mlflow_local},
        run_config={"ops": {"generation_plan": {"config": {"count": 12, "seed": 1}}}},
    )  # fmt: skip
    meta = result.asset_materializations_for_node("generation_plan")[0].metadata
    assert "exploration floor" in meta["genres"].value or "no demand" in meta["genres"].value
    specs = latest_plan_specs(lakehouse, 5)
    assert specs is not None and len(specs) == 5 and all(s["genre"] and s["bpm"] for s in specs)
    drawn = latest_plan_specs(lakehouse, 12, seed=3)
    assert drawn is not None and sorted(json.dumps(s) for s in drawn) == sorted(
        json.dumps(s) for s in latest_plan_specs(lakehouse, 12) or []
    )
    registry = RecommenderRegistry.from_tracking(mlflow_local.tracking())
    run = registry.client.get_run(str(meta["mlflow_run_id"].value))
    assert any(k.startswith("share.genre.") for k in run.data.metrics)


def test_the_air_feed_sensor_asks_for_the_plan(
    lakehouse: Lakehouse, mlflow_local: LocalMLflowResource, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Once a plan exists, the sensor's run asks for its tracks (genre, bpm,
    key and mood each), and the generation config turns them into specs."""
    from orchestration.config import GenerationConfig
    from orchestration.sensors import air_feed_sensor

    monkeypatch.setenv("SONICFORGE_STREAM_MIN_UNPLAYED_AIRTIME_S", "1000")
    get_settings.cache_clear()
    resources = {"lakehouse": LocalLakehouseResource(root=lakehouse.root_uri)}
    with dg.instance_for_test() as instance:
        before = air_feed_sensor(dg.build_sensor_context(instance=instance, resources=resources))
        assert isinstance(before, dg.SensorResult)
        (request,) = before.run_requests or []
        config = request.run_config["ops"]["generated_tracks"]["config"]
        assert "planned" not in config  # no plan yet: the default genres take turns
        dg.materialize(
            [generation_plan],
            resources={**resources, "mlflow": mlflow_local},
            run_config={"ops": {"generation_plan": {"config": {"count": 12, "seed": 2}}}},
        )
        result = air_feed_sensor(dg.build_sensor_context(instance=instance, resources=resources))
        assert isinstance(result, dg.SensorResult)
        (request,) = result.run_requests or []
    config = request.run_config["ops"]["generated_tracks"]["config"]
    planned = config["planned"]
    assert len(planned) == config["count"] and config["genres"] == [p["genre"] for p in planned]
    specs = GenerationConfig(**config).track_specs()
    assert [(s.genre, s.bpm, s.musical_key, s.mood) for s in specs] == [
        (p["genre"], p["bpm"], p["musical_key"], p["mood"]) for p in planned
    ]
