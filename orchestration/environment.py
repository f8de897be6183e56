"""Pick the environment in one place and map it to resources."""

from __future__ import annotations

import os
from typing import Any

import dagster as dg

from orchestration.resources import (
    LocalGeneratorResource,
    LocalLakehouseResource,
    S3LakehouseResource,
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
            access_key_id=dg.EnvVar("AWS_ACCESS_KEY_ID") if "AWS_ACCESS_KEY_ID" in os.environ else opts.get("AWS_ACCESS_KEY_ID"),
            secret_access_key=dg.EnvVar("AWS_SECRET_ACCESS_KEY") if "AWS_SECRET_ACCESS_KEY" in os.environ else opts.get("AWS_SECRET_ACCESS_KEY"),
            allow_http=opts.get("AWS_ALLOW_HTTP", "").lower() == "true",
        )
    else:
        lakehouse = LocalLakehouseResource(root=uri)
    return {
        "lakehouse": lakehouse,
        "generator": LocalGeneratorResource(
            default_backend=settings.default_backend, workers=settings.generation_workers
        ),
    }
