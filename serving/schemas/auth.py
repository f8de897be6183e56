"""Accounts and tokens."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import ConfigDict, EmailStr, Field

from serving.schemas.common import PRINTABLE, PRINTABLE_PATTERN, Name, Schema
from serving.security.passwords import MAX_LENGTH, MIN_LENGTH, PASSPHRASE_LENGTH
from serving.security.permissions import Permission, Role

# The schema states the password policy (minLength, maxLength, pattern);
# the service checks it and names every rule a password breaks at once,
# so the schema's minLength is not enforced separately here.
Password = Annotated[
    str,
    Field(
        min_length=1,
        max_length=MAX_LENGTH,
        description=f"{MIN_LENGTH} to {MAX_LENGTH} characters, no control characters, mixing "
        "three of lowercase, uppercase, digits and symbols, or a passphrase of "
        f"{PASSPHRASE_LENGTH} or more characters; not a commonly used password (nor one "
        "character repeated), and not containing the name part of the email address.",
        json_schema_extra={"minLength": MIN_LENGTH, "pattern": PRINTABLE_PATTERN},
    ),
    PRINTABLE,
]


class UserCreate(Schema):
    email: EmailStr = Field(max_length=320, examples=["ada@example.com"])
    display_name: Name = Field(
        description="Shown to others; leading and trailing spaces are stripped.",
        examples=["Ada"],
    )
    password: Password = Field(examples=["Tempo-Rubato-42"])
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


class UserPublic(Schema):
    # Output fields are not re-validated against the input rules: a row
    # stored under older rules must still be listed.
    email: str = Field(examples=["ada@example.com"])
    display_name: str = Field(examples=["Ada"])
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
    refresh_token: str = Field(
        min_length=1,
        max_length=4096,
        pattern=r"^[A-Za-z0-9_.=-]+$",
        description="A JWT: base64url segments joined by dots.",
        examples=["eyJhbGciOi..."],
    )


class RegistrationAccepted(Schema):
    """The same answer whether or not the address already has an account,
    so registering cannot be used to find out who has one."""

    status: Literal["accepted"] = "accepted"
    email: str = Field(examples=["ada@example.com"])
    message: str = Field(
        examples=["if this address can be registered, its account is ready: log in with it"]
    )


class TokenPair(Schema):
    access_token: str = Field(examples=["eyJhbGciOi..."])
    refresh_token: str = Field(examples=["eyJhbGciOi..."])
    token_type: str = Field(default="bearer", examples=["bearer"])
    expires_in: int = Field(description="Seconds the access token lives.", examples=[900])
    refresh_expires_in: int = Field(examples=[604800])


class LogoutPublic(Schema):
    revoked: bool = Field(examples=[True])
    session_id: str | None = Field(default=None, description="The refresh family revoked.")
