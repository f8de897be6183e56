"""Resources for external systems, each with a local and a production form."""

from __future__ import annotations

import abc
from typing import Any

import dagster as dg
from pydantic import Field

from models.generation.base import GenerationBackend
from models.generation.registry import create_backend
from sonicforge.lakehouse import Lakehouse


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
        # Without a locking provider concurrent S3 writers may clobber each
        # other; writers here are Dagster steps of distinct partitions.
        out.setdefault("AWS_S3_ALLOW_UNSAFE_RENAME", "true")
        return out

    def open(self) -> Lakehouse:
        return Lakehouse(self.uri, storage_options=self.storage_options())


class GeneratorResource(dg.ConfigurableResource, abc.ABC):
    """Chooses the generation backend a run uses."""

    workers: int = Field(default=1, description="Processes for CPU backends (one core each).")

    @abc.abstractmethod
    def backend(self, name: str | None = None) -> GenerationBackend: ...

    def backend_options(self, name: str | None = None) -> dict[str, Any]:
        return {}


class LocalGeneratorResource(GeneratorResource):
    """Backends by name, defaulting to the procedural synthesizer."""

    default_backend: str = "procedural"

    def backend(self, name: str | None = None) -> GenerationBackend:
        return create_backend(name or self.default_backend, **self.backend_options(name))
