"""Pick the environment in one place and map it to resources."""

from __future__ import annotations

import os
from typing import Any

import dagster as dg

from orchestration.resources import (
    GeneratorResource,
    LocalGeneratorResource,
    LocalLakehouseResource,
    LocalMLflowResource,
    MLflowResource,
    RegistryGeneratorResource,
    S3LakehouseResource,
    ServerMLflowResource,
)
from sonicforge.settings import Settings, get_settings


def resources_for(settings: Settings | None = None) -> dict[str, Any]:
    """Resources for the configured environment: an ``s3://`` lakehouse
    switches to the production form, with credentials from ``dg.EnvVar``."""
    settings = settings or get_settings()
    uri = settings.resolved_lakehouse_uri
    lakehouse: Any
    if uri.startswith("s3://"):
        opts = settings.lakehouse_storage_options
        lakehouse = S3LakehouseResource(
            uri=uri,
            region=opts.get("AWS_REGION"),
            endpoint_url=opts.get("AWS_ENDPOINT_URL"),
            access_key_id=dg.EnvVar("AWS_ACCESS_KEY_ID")
            if "AWS_ACCESS_KEY_ID" in os.environ
            else opts.get("AWS_ACCESS_KEY_ID"),
            secret_access_key=dg.EnvVar("AWS_SECRET_ACCESS_KEY")
            if "AWS_SECRET_ACCESS_KEY" in os.environ
            else opts.get("AWS_SECRET_ACCESS_KEY"),
            allow_http=opts.get("AWS_ALLOW_HTTP", "").lower() == "true",
        )
    else:
        lakehouse = LocalLakehouseResource(root=uri)
    mlflow = mlflow_resource_for(settings)
    return {
        "lakehouse": lakehouse,
        "generator": generator_resource_for(settings, mlflow),
        "mlflow": mlflow,
    }


def mlflow_resource_for(settings: Settings) -> MLflowResource:
    """A tracking server when its URI is http(s); otherwise the embedded
    SQLite store and artifact directory under ``var/``."""
    uri = settings.resolved_mlflow_tracking_uri
    if uri.startswith(("http://", "https://", "databricks")):
        return ServerMLflowResource(tracking_uri=uri)
    return LocalMLflowResource(
        tracking_uri=uri, artifact_root=settings.resolved_mlflow_artifact_root
    )


def generator_resource_for(settings: Settings, mlflow: MLflowResource) -> GeneratorResource:
    """The registry's alias (default) or the backend named in settings."""
    if settings.generator_source == "registry":
        return RegistryGeneratorResource(
            mlflow=mlflow,
            model_name=settings.generator_model_name,
            alias=settings.generator_alias,
            bootstrap_backend=settings.default_backend,
            workers=settings.generation_workers,
        )
    return LocalGeneratorResource(
        default_backend=settings.default_backend, workers=settings.generation_workers, mlflow=mlflow
    )
