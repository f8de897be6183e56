"""API keys."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BeforeValidator, ConfigDict, Field

from serving.schemas.common import Name, Schema
from serving.security.permissions import Permission

SCOPES_DESCRIPTION = "Permissions the key may use; capped by its owner's role at each use."


def _known_scopes(value: Any) -> Any:
    # A scope that no longer exists grants nothing (see principal_from_key);
    # it is left out of the listing rather than breaking it.
    if isinstance(value, list):
        return [s for s in value if isinstance(s, Permission) or s in Permission._value2member_map_]
    return value


class ApiKeyCreate(Schema):
    name: Name = Field(
        description="To recognise the key by; leading and trailing spaces are stripped.",
        examples=["stream dashboard"],
    )
    scopes: list[Permission] = Field(
        min_length=1,
        max_length=len(Permission),
        description=SCOPES_DESCRIPTION,
        examples=[["votes:write"]],
    )
    expires_in_days: int | None = Field(default=None, ge=1, le=365, examples=[90])
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"name": "stream dashboard", "scopes": ["votes:write"], "expires_in_days": 90}
            ]
        }
    )


class ApiKeyPublic(Schema):
    # Not re-validated against the input rules: every stored row lists.
    name: str = Field(examples=["stream dashboard"])
    scopes: Annotated[list[Permission], BeforeValidator(_known_scopes)] = Field(
        description=SCOPES_DESCRIPTION, examples=[["votes:write"]]
    )
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
