"""One settings object for the whole platform.

Embedded defaults live under ``./var/`` so one command runs the radio on a
laptop; production values (an ``s3://`` lakehouse, PostgreSQL, Redis, an
MLflow server) come from the environment only, prefix ``SONICFORGE_``.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from sonicforge.errors import ConfigurationError


class Settings(BaseSettings):
    """Typed settings, read from ``SONICFORGE_*`` environment variables."""

    model_config = SettingsConfigDict(env_prefix="SONICFORGE_", env_file=".env", extra="ignore")

    environment: Literal["development", "test", "production"] = "development"
    var_dir: Path = Path("var")

    # Lakehouse: a local path or an object-store URI (s3://bucket/prefix).
    lakehouse_uri: str | None = None
    # Storage options passed to deltalake and pyarrow's S3 layer, as JSON in the
    # environment: {"AWS_REGION": "...", "AWS_ENDPOINT_URL": "...", ...}.
    lakehouse_storage_options: Annotated[dict[str, str], NoDecode] = Field(default_factory=dict)

    dagster_home: Path | None = None
    mlflow_tracking_uri: str | None = None
    app_database_url: str | None = None
    redis_url: str | None = None
    duckdb_path: Path | None = None

    default_backend: str = "procedural"
    # Processes that generate, score and master a batch (one core each).
    generation_workers: int = Field(default=2, ge=1, le=64)

    @field_validator("lakehouse_storage_options", mode="before")
    @classmethod
    def _parse_options(cls, value: Any) -> Any:
        if isinstance(value, str):
            try:
                return json.loads(value) if value.strip() else {}
            except json.JSONDecodeError as exc:
                raise ValueError(
                    "SONICFORGE_LAKEHOUSE_STORAGE_OPTIONS must be a JSON object of strings, "
                    f'e.g. {{"AWS_REGION": "eu-west-1"}}: {exc}'
                ) from exc
        return value

    @property
    def resolved_lakehouse_uri(self) -> str:
        return self.lakehouse_uri or str((self.var_dir / "lake").absolute())

    @property
    def resolved_dagster_home(self) -> Path:
        return (self.dagster_home or self.var_dir / "dagster").absolute()

    @property
    def resolved_mlflow_tracking_uri(self) -> str:
        return self.mlflow_tracking_uri or f"sqlite:///{(self.var_dir / 'mlflow.db').absolute()}"

    @property
    def resolved_mlflow_artifact_root(self) -> str:
        return str((self.var_dir / "mlartifacts").absolute())

    @property
    def resolved_app_database_url(self) -> str:
        return self.app_database_url or f"sqlite:///{(self.var_dir / 'app.db').absolute()}"

    @property
    def resolved_duckdb_path(self) -> Path:
        return (self.duckdb_path or self.var_dir / "sonicforge.duckdb").absolute()

    def check_production(self) -> None:
        """Refuse embedded defaults where production needs real services."""
        if self.environment != "production":
            return
        missing = [
            name
            for name, value in (
                ("SONICFORGE_LAKEHOUSE_URI", self.lakehouse_uri),
                ("SONICFORGE_APP_DATABASE_URL", self.app_database_url),
                ("SONICFORGE_REDIS_URL", self.redis_url),
                ("SONICFORGE_MLFLOW_TRACKING_URI", self.mlflow_tracking_uri),
            )
            if not value
        ]
        if missing:
            raise ConfigurationError(
                "production needs explicit service settings; missing: " + ", ".join(missing)
            )


@functools.cache
def get_settings() -> Settings:
    """The process-wide settings (cached; tests build their own ``Settings``)."""
    return Settings()
