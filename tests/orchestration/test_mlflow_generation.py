"""Generation through the Dagster assets into a temporary lakehouse, tracked
in MLflow, with the generator chosen by the registry alias ``production``:
moving the alias from the procedural synthesizer to a tiny random-weight
MusicGen switches the backend of the next run."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest

from assets.tracks import generated_tracks, track_scores
from models.generation.musicgen_configs import save_random_model
from models.generation.prompts import PROMPT_TEMPLATE_VERSION
from models.tracking import GenerationTracking, GeneratorConfig
from orchestration.partitions import BATCHES
from orchestration.resources import (
    LocalLakehouseResource,
    LocalMLflowResource,
    RegistryGeneratorResource,
)
from sonicforge.lakehouse import Lakehouse

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture
def stores(tmp_path: Path, mlflow_local: LocalMLflowResource) -> tuple[Path, LocalMLflowResource]:
    return tmp_path / "lake", mlflow_local


def _run(
    lake: Path, mlflow: LocalMLflowResource, batch: str, **config: object
) -> dg.ExecuteInProcessResult:
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(BATCHES, [batch])
    # Scoring runs too (its metrics land on the MLflow run); mastering and
    # the rotation are the pipeline tests' business.
    return dg.materialize(
        [generated_tracks, track_scores],
        instance=instance,
        partition_key=batch,
        resources={
            "lakehouse": LocalLakehouseResource(root=str(lake)),
            "generator": RegistryGeneratorResource(mlflow=mlflow, workers=1),
        },
        run_config={"ops": {"generated_tracks": {"config": {"duration_s": 10.0, **config}}}},
        raise_on_error=False,
    )


def test_moving_the_production_alias_switches_the_next_run_to_musicgen(
    stores: tuple[Path, LocalMLflowResource], tmp_path: Path
) -> None:
    lake, mlflow = stores
    tracking: GenerationTracking = mlflow.tracking()

    # First run: the registry is empty, so the procedural generator is
    # registered as version 1 under the alias, and used.
    first = _run(lake, mlflow, "b1", genres=["house"], count=1, seed=1)
    assert first.success
    lh = Lakehouse(str(lake))
    (proc,) = lh.read("tracks", where={"batch_id": "b1"}).to_pylist()
    assert proc["backend"] == "procedural" and proc["mlflow_run_id"]
    assert [v["aliases"] for v in tracking.generator_versions()] == [["production"]]

    # Register a tiny MusicGen (loaded from disk like real weights) and move the alias.
    tiny = save_random_model(tmp_path / "tiny-musicgen", "tiny")
    options = {
        "model": str(tiny),
        "device": "cpu",
        "window_s": 4.0,
        "context_s": 1.0,
        "crossfade_s": 0.25,
    }
    version = tracking.register_generator(GeneratorConfig("musicgen", options))
    tracking.set_alias(version, "production")

    second = _run(
        lake, mlflow, "b2", genres=["techno", "ambient"], count=2, seed=40, guidance_scale=2.5
    )
    assert second.success, [e.message for e in second.all_events if e.is_step_failure]
    rows = sorted(lh.read("tracks", where={"batch_id": "b2"}).to_pylist(), key=lambda r: r["seed"])
    assert [r["backend"] for r in rows] == ["musicgen", "musicgen"]
    assert [r["genre"] for r in rows] == ["techno", "ambient"] and [r["seed"] for r in rows] == [
        40,
        41,
    ]
    for r in rows:
        assert r["model_name"] == str(tiny) and r["model_version"].startswith("local-")
        assert r["prompt_version"] == PROMPT_TEMPLATE_VERSION and "bpm" in rows[0]["prompt"]
        assert (
            r["sample_rate"] == 44100 and r["channels"] == 2 and abs(r["duration_s"] - 10.0) < 0.01
        )
        assert lh.audio.exists(r["raw_uri"])
    run_id = rows[0]["mlflow_run_id"]
    assert (
        run_id
        and {r["mlflow_run_id"] for r in rows} == {run_id}
        and run_id != proc["mlflow_run_id"]
    )

    # The batch is a run in the musicgen experiment with its parameters,
    # speed and quality metrics, linked to the Dagster run.
    run = tracking.client.get_run(run_id)
    exp = tracking.client.get_experiment(run.info.experiment_id)
    assert exp.name == "sonicforge-generation-musicgen" and run.info.run_name == "b2"
    p = run.data.params
    assert (
        p["backend"] == "musicgen"
        and p["model_id"] == str(tiny)
        and p["model_revision"] == rows[0]["model_version"]
    )
    assert (p["guidance_scale"], p["temperature"], p["top_k"]) == ("2.5", "1.0", "250")
    assert (p["duration_s"], p["seed"], p["prompt_template_version"]) == (
        "10.0",
        "40",
        PROMPT_TEMPLATE_VERSION,
    )
    m = run.data.metrics
    assert (
        m["tracks"] == 2 and m["audio_seconds"] == pytest.approx(20.0) and m["realtime_factor"] > 0
    )
    assert {"mean_quality_score", "pass_rate", "mean_loudness_before_mastering_lufs"} <= set(m)
    assert len(tracking.client.get_metric_history(run_id, "quality_score")) == 2
    t = run.data.tags
    assert t["dagster.run_id"] == second.run_id and t["dagster.partition"] == "b2"
    assert (t["sonicforge.generator_version"], t["sonicforge.generator_alias"]) == (
        version,
        "production",
    )

    # The procedural batch is its own run, in the procedural experiment.
    proc_run = tracking.client.get_run(proc["mlflow_run_id"])
    assert (
        tracking.client.get_experiment(proc_run.info.experiment_id).name
        == "sonicforge-generation-procedural"
    )
    assert proc_run.data.tags["sonicforge.generator_version"] == "1"


def test_a_failed_batch_is_a_failed_run(stores: tuple[Path, LocalMLflowResource]) -> None:
    lake, mlflow = stores
    tracking = mlflow.tracking()
    missing = GeneratorConfig(
        "musicgen",
        {"model": "facebook/musicgen-large", "cache_dir": str(lake.parent / "empty-hub")},
    )
    tracking.set_alias(tracking.register_generator(missing), "production")
    result = _run(lake, mlflow, "b3", genres=["house"], count=1)
    assert not result.success
    (failure,) = [e for e in result.all_events if e.is_step_failure]
    error = str(failure.step_failure_data.error)
    assert "facebook/musicgen-large" in error and "sonicforge models pull" in error
    # The ML engineer sees it in MLflow too: a failed run saying why.
    (run,) = tracking.runs("musicgen")
    assert run.info.status == "FAILED" and run.data.tags["dagster.run_id"] == result.run_id
    assert "ModelUnavailableError" in run.data.tags["sonicforge.error"]
    assert not Lakehouse(str(lake)).read("tracks").num_rows
