"""Resources for external systems, each with a local and a production form."""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import dagster as dg
from pydantic import Field

from models.generation.base import GenerationBackend
from models.generation.registry import create_backend
from sonicforge.lakehouse import Lakehouse, safe_storage_options

if TYPE_CHECKING:
    from models.tracking import GenerationTracking


class LakehouseResource(dg.ConfigurableResource, abc.ABC):
    """Delta tables and the audio store."""

    @abc.abstractmethod
    def open(self) -> Lakehouse: ...


class LocalLakehouseResource(LakehouseResource):
    """A lakehouse in a local directory (the embedded default, ``./var/lake``)."""

    root: str = Field(description="Directory that holds the Delta tables and audio/.")

    def open(self) -> Lakehouse:
        return Lakehouse(self.root)


class S3LakehouseResource(LakehouseResource):
    """A lakehouse on any S3 API; credentials come in as ``dg.EnvVar``."""

    uri: str = Field(description="s3://bucket/prefix of the lakehouse.")
    region: str | None = None
    endpoint_url: str | None = None
    access_key_id: str | None = None
    secret_access_key: str | None = None
    allow_http: bool = False

    def storage_options(self) -> dict[str, str]:
        options = {
            "AWS_REGION": self.region,
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_ACCESS_KEY_ID": self.access_key_id,
            "AWS_SECRET_ACCESS_KEY": self.secret_access_key,
        }
        out = {k: v for k, v in options.items() if v}
        if self.allow_http:
            out["AWS_ALLOW_HTTP"] = "true"
        # Runs of different partitions share each table's Delta log: commits
        # go through conditional put, so a racing writer retries, never overwrites.
        return safe_storage_options(self.uri, out)

    def open(self) -> Lakehouse:
        return Lakehouse(self.uri, storage_options=self.storage_options())


# MLflow is imported by the methods below, not here: loading the code
# location should not pay for it until a run tracks something.
GENERATOR_MODEL_NAME = "sonicforge-generator"


class MLflowResource(dg.ConfigurableResource, abc.ABC):
    """Where generation runs are tracked and generators registered."""

    @abc.abstractmethod
    def tracking(self, *, model_name: str = GENERATOR_MODEL_NAME) -> GenerationTracking: ...


class LocalMLflowResource(MLflowResource):
    """The embedded store: SQLite plus a local artifact directory
    (``sqlite:///var/mlflow.db`` and ``./var/mlartifacts`` by default)."""

    tracking_uri: str = Field(description="sqlite:///ABSOLUTE/PATH/mlflow.db")
    artifact_root: str = Field(description="Directory for run artifacts and registered models.")

    def tracking(self, *, model_name: str = GENERATOR_MODEL_NAME) -> GenerationTracking:
        from models.tracking import GenerationTracking

        return GenerationTracking(
            self.tracking_uri, artifact_root=self.artifact_root, model_name=model_name
        )


class ServerMLflowResource(MLflowResource):
    """An MLflow tracking server; it decides where artifacts go. Credentials
    come from MLflow's own variables (MLFLOW_TRACKING_TOKEN, or
    MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD)."""

    tracking_uri: str = Field(description="http(s)://host:port of the MLflow server.")
    registry_uri: str | None = Field(default=None, description="Defaults to the tracking URI.")

    def tracking(self, *, model_name: str = GENERATOR_MODEL_NAME) -> GenerationTracking:
        from models.tracking import GenerationTracking

        return GenerationTracking(
            self.tracking_uri, registry_uri=self.registry_uri, model_name=model_name
        )


@dataclass(frozen=True)
class GeneratorChoice:
    """The backend a run uses, the options it was made with, and where the
    choice came from (MLflow tags: registry version and alias, or settings)."""

    backend: GenerationBackend
    options: dict[str, Any] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)


def _with_overrides(
    name: str, options: dict[str, Any], overrides: dict[str, Any] | None
) -> dict[str, Any]:
    if not overrides:
        return options
    from models.tracking import sampling_overrides

    return {**options, **sampling_overrides(name, **overrides)}


class GeneratorResource(dg.ConfigurableResource, abc.ABC):
    """Chooses the generation backend a run uses."""

    workers: int = Field(default=1, description="Processes for CPU backends (one core each).")
    mlflow: MLflowResource | None = Field(
        default=None, description="Tracks each generation batch as an MLflow run; None: untracked."
    )

    @abc.abstractmethod
    def backend(self, name: str | None = None) -> GenerationBackend: ...

    def backend_options(self, name: str | None = None) -> dict[str, Any]:
        return {}

    def choose(
        self, name: str | None = None, *, overrides: dict[str, Any] | None = None
    ) -> GeneratorChoice:
        """The backend for one run: ``name`` if given, else this resource's
        choice; ``overrides`` are per-run sampling options."""
        base = self.backend(name)
        options = _with_overrides(base.name, self.backend_options(name), overrides)
        backend = create_backend(base.name, **options) if overrides else base
        return GeneratorChoice(backend, options, {"sonicforge.generator_source": "settings"})

    def tracking(self) -> GenerationTracking | None:
        return self.mlflow.tracking() if self.mlflow is not None else None


class LocalGeneratorResource(GeneratorResource):
    """Backends by name, defaulting to the procedural synthesizer."""

    default_backend: str = "procedural"

    def backend(self, name: str | None = None) -> GenerationBackend:
        return create_backend(name or self.default_backend, **self.backend_options(name))


class RegistryGeneratorResource(GeneratorResource):
    """The generator registered in MLflow under ``alias``, resolved when each
    run starts: moving the alias switches what the next run generates with.
    On an empty registry, ``bootstrap_backend`` is registered and aliased."""

    mlflow: MLflowResource  # type: ignore[assignment]  # required here
    model_name: str = GENERATOR_MODEL_NAME
    alias: str = "production"
    bootstrap_backend: str = "procedural"

    def choose(
        self, name: str | None = None, *, overrides: dict[str, Any] | None = None
    ) -> GeneratorChoice:
        if name is not None:
            # A backend named in the run config wins over the registry.
            options = _with_overrides(name, {}, overrides)
            return GeneratorChoice(
                create_backend(name, **options),
                options,
                {"sonicforge.generator_source": "run_config"},
            )
        from models.tracking import GeneratorConfig

        resolved = self.mlflow.tracking(model_name=self.model_name).resolve(
            self.alias, bootstrap=GeneratorConfig(self.bootstrap_backend)
        )
        options = _with_overrides(resolved.config.backend, resolved.config.options, overrides)
        return GeneratorChoice(
            create_backend(resolved.config.backend, **options), options, resolved.tags()
        )

    def backend(self, name: str | None = None) -> GenerationBackend:
        return self.choose(name).backend

    def backend_options(self, name: str | None = None) -> dict[str, Any]:
        return self.choose(name).options

    def tracking(self) -> GenerationTracking:
        return self.mlflow.tracking(model_name=self.model_name)
