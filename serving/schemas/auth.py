"""Accounts and tokens."""

from __future__ import annotations

from datetime import datetime

from pydantic import ConfigDict, EmailStr, Field

from serving.schemas.common import Schema
from serving.security.permissions import Permission, Role


class UserBase(Schema):
    email: EmailStr = Field(max_length=320, examples=["ada@example.com"])
    display_name: str = Field(min_length=1, max_length=80, examples=["Ada"])


class UserCreate(UserBase):
    password: str = Field(
        min_length=1,
        max_length=256,
        description="At least 10 characters mixing three of lowercase, uppercase, digits and "
        "symbols, or a passphrase of 16 or more characters.",
        examples=["Tempo-Rubato-42"],
    )
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"email": "ada@example.com", "display_name": "Ada", "password": "Tempo-Rubato-42"}
            ]
        }
    )


class UserUpdate(Schema):
    """What an admin may change on an account."""

    role: Role | None = Field(default=None, examples=["operator"])
    is_active: bool | None = Field(default=None, examples=[True])


class UserPublic(UserBase):
    id: str = Field(examples=["0192f5a0-6c1e-7b3a-9d5e-2f4a1c3b5d6e"])
    role: Role
    is_active: bool
    created_at: datetime


class MePublic(UserPublic):
    permissions: list[Permission] = Field(description="What this credential may do.")
    auth: str = Field(description="How the caller authenticated.", examples=["jwt"])


class LoginRequest(Schema):
    email: EmailStr = Field(max_length=320, examples=["ada@example.com"])
    password: str = Field(min_length=1, max_length=256, examples=["Tempo-Rubato-42"])


class RefreshRequest(Schema):
    refresh_token: str = Field(min_length=1, max_length=4096, examples=["eyJhbGciOi..."])


class TokenPair(Schema):
    access_token: str = Field(examples=["eyJhbGciOi..."])
    refresh_token: str = Field(examples=["eyJhbGciOi..."])
    token_type: str = Field(default="bearer", examples=["bearer"])
    expires_in: int = Field(description="Seconds the access token lives.", examples=[900])
    refresh_expires_in: int = Field(examples=[604800])


class LogoutPublic(Schema):
    revoked: bool = Field(examples=[True])
    session_id: str | None = Field(default=None, description="The refresh family revoked.")
