"""Registration, login, token refresh, logout and the caller's profile."""

from __future__ import annotations

from functools import partial
from typing import Annotated

from anyio import from_thread
from fastapi import Header, status

from serving.addresses import UNKNOWN
from serving.db.models import User
from serving.deps import ClientIP, ContextDep, CurrentPrincipal, SessionDep
from serving.exceptions import InvalidTokenError, NotFoundError
from serving.ratelimit import raise_if_refused
from serving.routing import ResourceRouter
from serving.schemas.auth import (
    LoginRequest,
    LogoutPublic,
    MePublic,
    RefreshRequest,
    RegistrationAccepted,
    TokenPair,
    UserCreate,
    UserPublic,
)
from serving.schemas.common import error_responses
from serving.services.auth import ClientInfo, credentials_error

router = ResourceRouter(prefix="/auth", tags=["auth"])


@router.post(
    "/register",
    response_model=RegistrationAccepted,
    status_code=status.HTTP_202_ACCEPTED,
    responses=error_responses(422, 429),
    summary="Create a listener account",
)
def register_user(body: UserCreate, ctx: ContextDep, session: SessionDep) -> RegistrationAccepted:
    """Answers 202 with the same body whether the address is new or already
    has an account, so registering does not tell who has one. A new
    address can log in at once; an existing account is left as it was."""
    ctx.auth.register(session, body)
    return RegistrationAccepted(
        email=body.email.lower(),
        message="if this address can be registered, its account is ready: log in with it",
    )


@router.post(
    "/login",
    response_model=TokenPair,
    responses=error_responses(401, 403, 422, 429),
    summary="Exchange email and password for an access and a refresh token",
)
def login(
    body: LoginRequest,
    ctx: ContextDep,
    session: SessionDep,
    ip: ClientIP,
    user_agent: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> TokenPair:
    """Attempts are throttled per address (all attempts) and per account
    (failures, cleared by a success), so guessing is slow from one address
    and against one account from many. Every attempt is counted before the
    password is checked, so parallel guesses cannot all slip under the
    limit. While an account is throttled, a client (address) that has not
    failed against it in the window still gets one attempt, so a stranger's
    guesses cannot lock the owner out. The counts fail closed to this
    worker's memory when the shared store is unreachable."""
    limiter, limits = ctx.limiter, ctx.limits
    account, client = body.email.lower(), ip or UNKNOWN
    verdict = from_thread.run(
        partial(limiter.hit, limits.login_ip, "login-ip", client, strict=True)
    )
    raise_if_refused(verdict, "login attempts from this address")
    per_account = from_thread.run(
        partial(limiter.hit, limits.login_account, "login-account", account, strict=True)
    )
    per_client = from_thread.run(
        partial(limiter.hit, limits.login_client, "login-client", account, client, strict=True)
    )
    # While the account is throttled, only a client's first attempt goes on.
    throttled = per_account is not None and not per_account.allowed
    if throttled and (per_client is None or not per_client.allowed):
        raise_if_refused(per_account, "failed logins for this account")
    user = ctx.auth.check_password(session, account, body.password)
    if user is None:
        raise credentials_error()
    from_thread.run(limiter.clear, limits.login_account, "login-account", account)
    from_thread.run(limiter.clear, limits.login_client, "login-client", account, client)
    return ctx.auth.login(session, user, ClientInfo(ip=ip, user_agent=user_agent))


@router.post(
    "/refresh",
    response_model=TokenPair,
    responses=error_responses(401, 422, 429),
    summary="Rotate a refresh token into a new token pair",
)
def refresh_tokens(body: RefreshRequest, ctx: ContextDep, session: SessionDep) -> TokenPair:
    """Each refresh token works once. Presenting one that was already
    exchanged revokes the whole session (every token rotated from the same
    login), since a copy of it is in someone's hands."""
    try:
        return ctx.auth.refresh(session, body.refresh_token)
    except InvalidTokenError:
        ctx.principals.clear()  # a family may have just been revoked
        raise


@router.post(
    "/logout",
    response_model=LogoutPublic,
    responses=error_responses(401, 429),
    summary="Revoke the current session",
)
def logout(principal: CurrentPrincipal, ctx: ContextDep, session: SessionDep) -> LogoutPublic:
    """Revokes the refresh family behind the access token: its refresh
    token stops working and so do its access tokens, at once."""
    revoked = ctx.auth.logout(session, principal)
    ctx.principals.clear()
    return LogoutPublic(revoked=revoked, session_id=principal.session_id)


@router.get(
    "/me",
    response_model=MePublic,
    responses=error_responses(401, 429),
    summary="The caller's account and permissions",
)
def read_me(principal: CurrentPrincipal, session: SessionDep) -> MePublic:
    user = session.get(User, principal.user_id)
    if user is None:  # deleted between authentication and here
        raise NotFoundError("the account no longer exists")
    public = UserPublic.model_validate(user)
    return MePublic(
        **public.model_dump(),
        permissions=sorted(principal.permissions),
        auth=principal.auth,
    )
