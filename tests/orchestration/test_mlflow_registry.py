"""The generator registry in MLflow and the resources that use it, on an
embedded SQLite store in a temporary directory."""

from __future__ import annotations

import io
from pathlib import Path

import mlflow.pyfunc
import pandas as pd
import pytest
import soundfile as sf

from models.errors import InvalidSpecError, RegistryError
from models.generation.musicgen_configs import save_random_model
from models.tracking import GenerationTracking, GeneratorConfig, quality_metrics
from orchestration.environment import mlflow_resource_for, resources_for
from orchestration.resources import (
    LocalGeneratorResource,
    LocalMLflowResource,
    RegistryGeneratorResource,
    ServerMLflowResource,
)
from sonicforge.settings import Settings

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture
def tracking(mlflow_local: LocalMLflowResource) -> GenerationTracking:
    return mlflow_local.tracking()


def test_first_resolution_registers_the_procedural_generator(
    tracking: GenerationTracking, tmp_path: Path
) -> None:
    resolved = tracking.resolve("production", bootstrap=GeneratorConfig("procedural"))
    assert (resolved.config, resolved.version, resolved.alias) == (
        GeneratorConfig("procedural"),
        "1",
        "production",
    )
    again = tracking.resolve("production", bootstrap=GeneratorConfig("procedural"))
    assert again.version == "1" and len(tracking.generator_versions()) == 1
    (v,) = tracking.generator_versions()
    assert v["aliases"] == ["production"] and v["backend"] == "procedural"
    # The embedded store keeps its artifacts under the configured root.
    assert any((tmp_path / "mlartifacts").rglob("MLmodel"))


def test_moving_the_alias_changes_the_resolved_generator(tracking: GenerationTracking) -> None:
    tracking.resolve("production", bootstrap=GeneratorConfig("procedural"))
    config = GeneratorConfig(
        "musicgen", {"model": "facebook/musicgen-small", "guidance_scale": 3.5}
    )
    version = tracking.register_generator(config)
    assert tracking.resolve("production").config.backend == "procedural"
    tracking.set_alias(version, "production")
    assert tracking.resolve("production").config == config
    tracking.set_alias("1", "production")
    assert tracking.resolve("production").config.backend == "procedural"


def test_registry_errors_say_what_exists(tracking: GenerationTracking) -> None:
    with pytest.raises(RegistryError, match="has no alias 'production'; versions: none"):
        tracking.resolve("production")
    tracking.register_generator(GeneratorConfig("procedural"))
    with pytest.raises(
        RegistryError, match=r"versions: 1 \(procedural\).*sonicforge models alias VERSION"
    ):
        tracking.resolve("production", bootstrap=GeneratorConfig("procedural"))
    with pytest.raises(RegistryError, match="has no version '7'; versions: 1"):
        tracking.set_alias("7")


def test_the_registered_pyfunc_generates_audio(
    tracking: GenerationTracking, tmp_path: Path
) -> None:
    tiny = save_random_model(tmp_path / "tiny", "tiny")
    config = GeneratorConfig(
        "musicgen",
        {
            "model": str(tiny),
            "device": "cpu",
            "window_s": 1.0,
            "context_s": 0.2,
            "crossfade_s": 0.1,
        },
    )
    version = tracking.register_generator(config, alias="staging")
    mv = tracking.client.get_model_version(tracking.model_name, version)
    model = mlflow.pyfunc.load_model(mv.source)
    out = model.predict(
        pd.DataFrame(
            [{"genre": "house", "duration_s": 0.5, "seed": 3, "bpm": 124.0, "prompt": None}]
        )
    )
    row = out.iloc[0]
    assert (row["genre"], row["bpm"], row["seed"], row["sample_rate"]) == ("house", 124.0, 3, 44100)
    audio, sr = sf.read(io.BytesIO(row["wav"]))
    assert sr == 44100 and audio.shape == (22050, 2)


def test_quality_is_added_to_a_finished_generation_run(tracking: GenerationTracking) -> None:
    run_id = tracking.start_batch(
        backend="procedural", batch_id="b1", params={"seed": 7, "unused": None}
    )
    tracks = [{"track_id": f"t{i}", "duration_s": 10.0, "generation_s": 2.0} for i in range(2)]
    tracking.finish_batch(run_id, tracks=tracks)
    scores = [
        {"track_id": "t0", "quality_score": 80.0, "passed": True, "integrated_lufs": -20.0},
        {"track_id": "t1", "quality_score": 40.0, "passed": False, "integrated_lufs": -30.0},
    ]
    tracking.log_quality(run_id, scores)
    run = tracking.client.get_run(run_id)
    assert run.info.status == "FINISHED" and run.data.params == {"seed": "7"}
    m = run.data.metrics
    assert m["realtime_factor"] == 5.0 and m["mean_quality_score"] == 60.0 and m["pass_rate"] == 0.5
    assert m["mean_loudness_before_mastering_lufs"] == -25.0
    history = tracking.client.get_metric_history(run_id, "quality_score")
    assert sorted((h.step, h.value) for h in history) == [(0, 80.0), (1, 40.0)]
    assert run.data.tags["sonicforge.failed_tracks"] == "t1"
    assert quality_metrics([]) == {}


def test_registry_resource_resolves_at_run_time(mlflow_local: LocalMLflowResource) -> None:
    resource = RegistryGeneratorResource(mlflow=mlflow_local)
    choice = resource.choose()
    assert choice.backend.name == "procedural"
    assert choice.tags["sonicforge.generator_version"] == "1"
    with pytest.raises(InvalidSpecError, match="guidance_scale apply to the model backends"):
        resource.choose(overrides={"guidance_scale": 4.0})
    named = resource.choose("procedural")
    assert named.tags == {"sonicforge.generator_source": "run_config"}


def test_environment_maps_settings_to_mlflow_and_generator_forms(tmp_path: Path) -> None:
    local = Settings(var_dir=tmp_path / "var")
    res = resources_for(local)
    assert isinstance(res["generator"], RegistryGeneratorResource) and isinstance(
        res["mlflow"], LocalMLflowResource
    )
    assert res["mlflow"].tracking_uri == f"sqlite:///{(tmp_path / 'var' / 'mlflow.db').absolute()}"
    assert res["mlflow"].artifact_root == str((tmp_path / "var" / "mlartifacts").absolute())
    server = Settings(
        var_dir=tmp_path, mlflow_tracking_uri="http://mlflow:5000", generator_source="settings"
    )
    assert isinstance(mlflow_resource_for(server), ServerMLflowResource)
    gen = resources_for(server)["generator"]
    assert isinstance(gen, LocalGeneratorResource) and isinstance(gen.mlflow, ServerMLflowResource)


def test_models_cli_registers_moves_the_alias_and_lists(capsys: pytest.CaptureFixture[str]) -> None:
    from cli.main import main

    assert main(["models", "register", "procedural", "--alias", "production"]) == 0
    assert (
        main(
            [
                "models",
                "register",
                "musicgen",
                "-o",
                "model=musicgen-medium",
                "-o",
                "guidance_scale=4",
            ]
        )
        == 0
    )
    assert (
        "registered sonicforge-generator v2: musicgen(guidance_scale=4, model=musicgen-medium)"
        in capsys.readouterr().out
    )
    assert main(["models", "alias", "2"]) == 0
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert "sonicforge-generator@production -> v2" in out
    assert "facebook/musicgen-small      missing" in out
    assert "v2    musicgen    aliases: production" in out and "v1    procedural  aliases: -" in out
    assert main(["models", "alias", "9"]) == 2
    assert main(["models", "register", "musicgen", "-o", "guidance=4"]) == 2
    err = capsys.readouterr().err
    assert "has no version '9'; versions: 2, 1" in err and "does not take these options" in err


def test_models_pull_offline_fails_with_what_to_do(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from huggingface_hub import constants

    from cli.main import main

    # As on these machines: no hub access. Patched where it is read at call
    # time too, so that a machine with internet downloads nothing here.
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    assert main(["models", "pull", "musicgen-small"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(
        "error: could not download 'facebook/musicgen-small' from the Hugging Face Hub"
    )
    assert "on a machine with internet" in err and "SONICFORGE_MUSICGEN_PATH" in err
