"""Provenance: every track row carries the license of what made it, and a
paid run never uses a generator whose license forbids commercial use."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from assets.tracks import generated_tracks
from models.provenance import LicenseError, commercial_choice, license_for, license_tags
from orchestration.partitions import BATCHES
from orchestration.resources import (
    LocalGeneratorResource,
    LocalLakehouseResource,
    LocalMLflowResource,
    RegistryGeneratorResource,
)
from sonicforge.lakehouse import Lakehouse


@pytest.mark.parametrize(
    ("backend", "spdx", "commercial"),
    [("procedural", "apache-2.0", True), ("musicgen", "cc-by-nc-4.0", False),
     ("audiocraft", "cc-by-nc-4.0", False), ("someone_elses", "unknown", False)],
)  # fmt: skip
def test_licenses_by_backend(backend: str, spdx: str, commercial: bool) -> None:
    lic = license_for(backend)
    assert (lic.spdx, lic.commercial_use) == (spdx, commercial)
    assert license_tags(backend) == {"license": spdx, "commercial_use": str(commercial).lower()}


def test_commercial_choice_keeps_falls_back_or_refuses_with_the_reason() -> None:
    assert commercial_choice("procedural", policy="refuse") == "procedural"
    assert commercial_choice("musicgen", policy="fallback") == "procedural"
    with pytest.raises(LicenseError) as err:
        commercial_choice("musicgen", policy="refuse")
    assert "licensed cc-by-nc-4.0" in str(err.value)
    assert "a paid request may use: procedural" in str(err.value)
    with pytest.raises(LicenseError):
        commercial_choice("someone_elses", policy="refuse")


def _run(
    tmp_path: Path,
    generator: Any,
    key: str,
    *,
    instance: dg.DagsterInstance | None = None,
    **config: Any,
) -> dg.ExecuteInProcessResult:
    instance = instance or dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(BATCHES, [key])
    return dg.materialize(
        [generated_tracks],
        instance=instance,
        partition_key=key,
        resources={
            "lakehouse": LocalLakehouseResource(root=str(tmp_path / "lake")),
            "generator": generator,
        },
        run_config={
            "ops": {
                "generated_tracks": {
                    "config": {"genres": ["house"], "count": 1, "duration_s": 10.0, **config}
                }
            }
        },
        raise_on_error=False,
    )


def _tracks(tmp_path: Path) -> list[dict[str, Any]]:
    return Lakehouse(str(tmp_path / "lake")).read("tracks").to_pylist()


def test_track_rows_carry_model_seed_prompt_version_and_license(tmp_path: Path) -> None:
    result = _run(tmp_path, LocalGeneratorResource(), "req-1", request_id="r-1")
    assert result.success
    (row,) = _tracks(tmp_path)
    assert (row["backend"], row["model_license"], row["commercial_use"]) == (
        "procedural", "apache-2.0", True,
    )  # fmt: skip
    assert row["request_id"] == "r-1" and row["prompt_version"] and row["model_version"]
    assert isinstance(row["seed"], int)


@pytest.fixture(scope="module")
def registry_on_musicgen(tmp_path_factory: pytest.TempPathFactory) -> RegistryGeneratorResource:
    """The registry's production alias on MusicGen (non-commercial weights);
    registered once for the module (MLflow takes seconds to set up)."""
    tmp_path = tmp_path_factory.mktemp("registry")
    mlflow = LocalMLflowResource(
        tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}", artifact_root=str(tmp_path / "mlart")
    )
    from models.tracking import GeneratorConfig

    tracking = mlflow.tracking()
    version = tracking.register_generator(GeneratorConfig("musicgen"), alias="production")
    (entry,) = [v for v in tracking.generator_versions() if v["version"] == version]
    assert entry["license"] == "cc-by-nc-4.0"  # the registered version carries the tag
    mv = tracking.client.get_model_version("sonicforge-generator", version)
    assert (mv.tags["license"], mv.tags["commercial_use"]) == ("cc-by-nc-4.0", "false")
    return RegistryGeneratorResource(mlflow=mlflow)


def test_a_paid_run_falls_back_from_a_non_commercial_production_model(
    tmp_path: Path, registry_on_musicgen: RegistryGeneratorResource
) -> None:
    result = _run(tmp_path, registry_on_musicgen, "req-2", commercial_only=True, request_id="r-2")
    assert result.success
    (row,) = _tracks(tmp_path)
    assert (row["backend"], row["model_license"], row["commercial_use"]) == (
        "procedural", "apache-2.0", True,
    )  # fmt: skip


def test_a_paid_run_is_refused_with_the_reason_under_the_refuse_policy(
    tmp_path: Path, registry_on_musicgen: RegistryGeneratorResource
) -> None:
    result = _run(
        tmp_path, registry_on_musicgen, "req-3", commercial_only=True, license_policy="refuse"
    )
    assert not result.success
    (failure,) = [e for e in result.all_events if e.is_step_failure]
    message = str(failure.event_specific_data.error)  # type: ignore[union-attr]
    assert "cc-by-nc-4.0" in message and "forbids commercial use" in message
    assert _tracks(tmp_path) == []


def test_the_embedded_launcher_reports_why_a_refused_run_failed(
    tmp_path: Path, registry_on_musicgen: RegistryGeneratorResource
) -> None:
    import asyncio

    from serving.services.dagster_embedded import EmbeddedLauncher
    from sonicforge.settings import Settings

    instance = dg.DagsterInstance.ephemeral()
    result = _run(
        tmp_path,
        registry_on_musicgen,
        "req-4",
        instance=instance,
        commercial_only=True,
        license_policy="refuse",
    )
    launcher = EmbeddedLauncher(Settings(var_dir=tmp_path / "var"))
    launcher._instance = instance  # the instance the run was recorded in
    reason = asyncio.run(launcher.failure_reason(result.run_id))
    assert reason is not None and reason.startswith("license: generator 'musicgen'")
