"""Health, readiness and liveness."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from serving.schemas.common import Schema

DependencyState = Literal["ok", "degraded", "down", "disabled"]


class HealthPublic(Schema):
    status: Literal["ok"] = "ok"
    version: str = Field(examples=["0.1.0"])
    environment: str = Field(examples=["development"])


class DependencyStatus(Schema):
    name: str = Field(examples=["app_db"])
    status: DependencyState
    latency_ms: float | None = Field(examples=[0.8])
    detail: str = Field(examples=["sqlite"])
    required: bool = Field(description="Whether /ready needs it.")


class HealthDetailed(Schema):
    status: Literal["ok", "degraded", "down"]
    checked_at: datetime
    dependencies: list[DependencyStatus]


class ReadyPublic(Schema):
    status: Literal["ready", "not_ready"]
    dependencies: list[DependencyStatus]
