"""Dependencies of the routes, as ``Annotated`` aliases in one place.

``SessionDep`` opens one app-database session per request; the principal
dependencies resolve the caller from a JWT (verified once, by the rate-limit
middleware, and checked against its session here) or from an API key;
``RequirePermission`` is how a route declares what it needs.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

import anyio
from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from serving.addresses import client_address
from serving.context import AppContext
from serving.exceptions import AuthenticationError, PermissionDeniedError
from serving.security.apikeys import hash_key
from serving.security.credentials import Credential, Principal, read_credential
from serving.security.permissions import Permission
from serving.security.tokens import Claims
from serving.services.apikeys import principal_from_key

# Declared for OpenAPI (the "Authorize" button, schemathesis); the headers
# are read by ``read_credential`` so both forms behave the same.
bearer_scheme = HTTPBearer(
    auto_error=False,
    description="An access token from /api/v1/auth/login, or an API key (sfk_...).",
)
api_key_scheme = APIKeyHeader(
    name="X-API-Key", auto_error=False, description="An API key from /api/v1/api-keys."
)


def context_of(request: Request) -> AppContext:
    """The app's context; hot public reads call this instead of depending
    on ``ContextDep``, since solving a dependency costs more than they do."""
    ctx: AppContext = request.app.state.ctx
    return ctx


async def get_context(request: Request) -> AppContext:
    return context_of(request)


ContextDep = Annotated[AppContext, Depends(get_context)]


def get_session(ctx: ContextDep) -> Iterator[Session]:
    with ctx.db.session() as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]


async def get_optional_principal(
    request: Request,
    ctx: ContextDep,
    _bearer: Annotated[HTTPAuthorizationCredentials | None, Security(bearer_scheme)],
    _key: Annotated[str | None, Security(api_key_scheme)],
) -> Principal | None:
    """The caller, or ``None`` without credentials; bad credentials are a
    401 even where a route also serves anonymous callers.

    Resolved principals are kept for ``PRINCIPAL_CACHE_S`` per worker, so a
    busy client costs one database lookup a second, not one per request.
    This worker forgets them at once on logout, refresh reuse, role changes
    and key revocation; other workers within that second.
    """
    credential = read_credential(request.headers)
    if credential is None:
        return None
    claims: Claims | None = None
    if credential.kind == "jwt":
        state: Any = request.state
        error = getattr(state, "access_error", None)
        if error is not None:
            raise error
        claims = getattr(state, "access_claims", None)
        if claims is None:  # the rate limiter did not run (exempt path)
            claims = ctx.tokens.decode(credential.value, expected="access")
    return await resolve_principal(ctx, credential, claims)


async def resolve_principal(
    ctx: AppContext, credential: Credential, claims: Claims | None
) -> Principal:
    """The principal behind ``credential`` (its verified ``claims`` for a
    JWT), from this worker's cache or the database; the route's dependency
    and the hot vote path (``serving.hot``) share it."""
    if claims is None:
        key: tuple[str, ...] = ("key", hash_key(credential.value))
    else:
        key = ("jwt", claims.sid, claims.sub)
    principal = ctx.principals.get(key)
    if principal is not None:
        return principal

    def resolve() -> Principal:
        with ctx.db.session() as session:
            if claims is None:
                return principal_from_key(session, credential.value)
            return ctx.auth.principal_from_claims(session, claims)

    return ctx.principals.set(key, await anyio.to_thread.run_sync(resolve))


OptionalPrincipal = Annotated[Principal | None, Depends(get_optional_principal)]


async def get_principal(principal: OptionalPrincipal) -> Principal:
    if principal is None:
        raise AuthenticationError(
            "authentication required: send 'Authorization: Bearer <access token or API key>' "
            "or 'X-API-Key: <key>'"
        )
    return principal


CurrentPrincipal = Annotated[Principal, Depends(get_principal)]


def RequirePermission(permission: Permission) -> Any:
    """``Annotated[Principal, RequirePermission(Permission.X)]`` in a route."""

    async def check(principal: CurrentPrincipal) -> Principal:
        if not principal.can(permission):
            via = (
                "your API key's scopes"
                if principal.auth == "api_key"
                else f"role {principal.role!r}"
            )
            raise PermissionDeniedError(
                f"this needs the {permission.value!r} permission, which {via} lacks"
            )
        return principal

    return Depends(check)


async def client_ip(request: Request) -> str | None:
    """The client's IP address (from the trusted proxy's X-Forwarded-For,
    validated), ``None`` when it is not an address."""
    return client_address(request.scope)


ClientIP = Annotated[str | None, Depends(client_ip)]
