"""API keys."""

from __future__ import annotations

from datetime import datetime

from pydantic import ConfigDict, Field

from serving.schemas.common import Schema
from serving.security.permissions import Permission


class ApiKeyBase(Schema):
    name: str = Field(min_length=1, max_length=80, examples=["stream dashboard"])
    scopes: list[Permission] = Field(
        min_length=1,
        max_length=len(Permission),
        description="Permissions the key may use; capped by its owner's role at each use.",
        examples=[["votes:write"]],
    )


class ApiKeyCreate(ApiKeyBase):
    expires_in_days: int | None = Field(default=None, ge=1, le=365, examples=[90])
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"name": "stream dashboard", "scopes": ["votes:write"], "expires_in_days": 90}
            ]
        }
    )


class ApiKeyPublic(ApiKeyBase):
    id: str
    prefix: str = Field(
        description="The key's first characters, to recognise it.", examples=["sfk_Xq3b9Lm2"]
    )
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None


class ApiKeyCreated(ApiKeyPublic):
    key: str = Field(
        description="The key itself: shown this once, only its hash is stored.",
        examples=["sfk_Xq3b9Lm2..."],
    )
