"""Reading credentials from a request and the principal they resolve to."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from serving.security.apikeys import hash_key, looks_like_key
from serving.security.permissions import Permission

CredentialKind = Literal["jwt", "api_key"]


@dataclass(frozen=True)
class Credential:
    kind: CredentialKind
    value: str

    def rate_identity(self) -> str:
        """A bucket name for per-key limits that needs no database lookup."""
        return "key:" + hash_key(self.value)[:32]


def read_credential(headers: Mapping[str, str | None]) -> Credential | None:
    """``X-API-Key: <key>``, or ``Authorization: Bearer <jwt or key>``."""
    key = headers.get("x-api-key")
    if key:
        return Credential("api_key", key.strip())
    auth = headers.get("authorization")
    if not auth:
        return None
    scheme, _, token = auth.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return None
    return Credential("api_key" if looks_like_key(token) else "jwt", token)


@dataclass(frozen=True)
class Principal:
    """Who is calling and what they may do with this credential."""

    user_id: str
    role: str
    permissions: frozenset[Permission]
    auth: CredentialKind
    session_id: str | None = None  # the refresh family, for JWTs
    api_key_id: str | None = None
    scopes: frozenset[Permission] = field(default_factory=frozenset)

    def can(self, permission: Permission) -> bool:
        return permission in self.permissions
