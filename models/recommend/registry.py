"""Recommender runs and versions in MLflow.

Each training is a run in the ``sonicforge-recommender`` experiment: the
parameters, every model's and baseline's metrics on the same split, the
metrics table, and the chosen model as a pyfunc (``pyfunc.py`` plus the
arrays). Versions are registered as ``sonicforge-recommender``; the
``champion`` alias is what the API serves, and only the promotion check
moves it.
"""

from __future__ import annotations

import functools
import json
import re
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from models.errors import RegistryError
from models.recommend.artifact import RecommenderArtifact
from models.recommend.train import TrainResult

RECOMMENDER_MODEL_NAME = "sonicforge-recommender"
CHAMPION_ALIAS = "champion"
EXPERIMENT = "sonicforge-recommender"
PLAN_EXPERIMENT = "sonicforge-generation-plan"


def _metric_name(text: str) -> str:
    """MLflow allows alphanumerics and ``_-. :/`` in names: ``C#`` becomes ``C-sharp``."""
    return re.sub(r"[^A-Za-z0-9_\-. :/]", "_", text.replace("#", "-sharp"))


@dataclass(frozen=True)
class RegisteredVersion:
    version: str
    run_id: str
    source: str


class RecommenderRegistry:
    """Runs, versions and the champion alias in one MLflow store."""

    def __init__(
        self,
        tracking_uri: str,
        *,
        artifact_root: str | Path | None = None,
        registry_uri: str | None = None,
        model_name: str = RECOMMENDER_MODEL_NAME,
    ) -> None:
        self.tracking_uri = tracking_uri
        self.registry_uri = registry_uri or tracking_uri
        self.artifact_root = Path(artifact_root).absolute() if artifact_root else None
        self.model_name = model_name

    @classmethod
    def from_tracking(
        cls, tracking: Any, *, model_name: str = RECOMMENDER_MODEL_NAME
    ) -> RecommenderRegistry:
        """The same store as a ``GenerationTracking`` (the Dagster MLflow resource's)."""
        return cls(
            tracking.tracking_uri,
            artifact_root=tracking.artifact_root,
            registry_uri=tracking.registry_uri,
            model_name=model_name,
        )

    @functools.cached_property
    def client(self) -> Any:
        from mlflow import MlflowClient

        return MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.registry_uri)

    def experiment_id(self, name: str) -> str:
        from models.tracking import ensure_experiment  # imports mlflow: only when training

        return ensure_experiment(self.client, name, self.artifact_root)

    def log_training(
        self, result: TrainResult, *, params: dict[str, Any], tags: dict[str, str] | None = None
    ) -> RegisteredVersion:
        """One MLflow run for ``result`` and a new registered version of its model."""
        import mlflow.pyfunc
        from mlflow.entities import Metric, Param
        from mlflow.exceptions import MlflowException

        run = self.client.create_run(
            self.experiment_id(EXPERIMENT),
            run_name=f"recommender {result.chosen}",
            tags={"sonicforge.chosen": result.chosen, **(tags or {})},
        )
        run_id = str(run.info.run_id)
        all_params = {
            **params,
            "chosen": result.chosen,
            "content_scale": result.content_scale,
            "cutoff_us": result.split.cutoff_us,
            **{f"{result.chosen}.{k}": v for k, v in result.artifact.params.items()},
            **{f"skipped.{k}": v for k, v in result.skipped.items()},
        }
        self.client.log_batch(
            run_id, params=[Param(k, str(v)[:6000]) for k, v in all_params.items()]
        )
        metrics = [Metric(k, float(v), 0, 0) for k, v in result.metrics().items()]
        for i in range(0, len(metrics), 900):
            self.client.log_batch(run_id, metrics=metrics[i : i + 900])
        self.client.log_dict(run_id, {"models": result.table()}, "metrics_table.json")
        with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*input example")
            arrays = result.artifact.save(Path(tmp) / "arrays")
            path = Path(tmp) / "recommender"
            mlflow.pyfunc.save_model(
                str(path),
                python_model=str(Path(__file__).with_name("pyfunc.py")),
                artifacts={"recommender": str(arrays)},
                pip_requirements=["sonicforge"],
            )
            self.client.log_artifacts(run_id, str(path), "recommender")
        self.client.set_terminated(run_id, "FINISHED")
        try:
            self.client.create_registered_model(
                self.model_name,
                description="SonicForge recommender versions; the alias "
                f"{CHAMPION_ALIAS!r} is what the API serves.",
            )
        except MlflowException as exc:
            if exc.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
        source = f"{run.info.artifact_uri}/recommender"
        mv = self.client.create_model_version(
            self.model_name,
            source=source,
            run_id=run_id,
            tags={
                "kind": result.chosen,
                "ndcg_at_10": f"{result.reports[result.chosen].overall.ndcg:.6f}",
                "cutoff_us": str(result.split.cutoff_us),
            },
            description=f"{result.chosen}, trained on interactions before {result.split.cutoff_us}",
        )
        return RegisteredVersion(str(mv.version), run_id, source)

    def champion_version(self, alias: str = CHAMPION_ALIAS) -> str | None:
        from mlflow.exceptions import MlflowException

        try:
            return str(self.client.get_model_version_by_alias(self.model_name, alias).version)
        except MlflowException:
            return None

    def promote(self, version: str, alias: str = CHAMPION_ALIAS) -> None:
        self.client.set_registered_model_alias(self.model_name, alias, str(version))

    def load(self, version: str) -> RecommenderArtifact:
        """The arrays of registered ``version`` (downloaded, then read with numpy)."""
        import mlflow.artifacts
        from mlflow.exceptions import MlflowException

        try:
            mv = self.client.get_model_version(self.model_name, str(version))
        except MlflowException:
            raise RegistryError(
                f"registered recommender {self.model_name!r} has no version {version!r}"
            ) from None
        local = mlflow.artifacts.download_artifacts(
            artifact_uri=f"{mv.source}/artifacts/arrays", tracking_uri=self.tracking_uri
        )
        return RecommenderArtifact.load(local)

    def log_plan(self, plan: dict[str, Any], *, tags: dict[str, str] | None = None) -> str:
        """The generation plan as a run: its shares as metrics, the whole plan as JSON."""
        from mlflow.entities import Metric, Param

        run = self.client.create_run(
            self.experiment_id(PLAN_EXPERIMENT), run_name="generation plan", tags=tags or {}
        )
        run_id = str(run.info.run_id)
        self.client.log_batch(
            run_id,
            params=[
                Param(k, json.dumps(v) if not isinstance(v, str) else v)
                for k, v in plan.get("params", {}).items()
            ],
            metrics=[
                Metric(
                    _metric_name(f"share.{arm['dimension']}.{arm['value']}"),
                    float(arm["share"]),
                    0,
                    0,
                )
                for arm in plan.get("arms", [])
            ],
        )
        self.client.log_dict(run_id, plan, "plan.json")
        self.client.set_terminated(run_id, "FINISHED")
        return run_id
