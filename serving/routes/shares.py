"""Sharing tracks: codes and ready-made links for social networks."""

from __future__ import annotations

from typing import Annotated

from fastapi import Header, Path, Query, status

from serving.deps import ContextDep, OptionalPrincipal, RequirePermission, SessionDep
from serving.routing import ResourceRouter
from serving.schemas.common import error_responses
from serving.schemas.shares import ShareCreate, ShareDetail, SharePublic
from serving.security.credentials import Principal
from serving.security.permissions import Permission
from serving.services import shares

router = ResourceRouter(prefix="/share", tags=["sharing"])

Code = Annotated[str, Path(pattern=r"^[A-Za-z0-9_-]{8,24}$", examples=["q3Zt9LmX2bVw"])]


@router.post(
    "",
    response_model=SharePublic,
    status_code=status.HTTP_201_CREATED,
    responses=error_responses(401, 403, 404, 422, 429),
    summary="Create a share code for a track",
)
def create_share(
    body: ShareCreate,
    principal: Annotated[Principal, RequirePermission(Permission.SHARES_CREATE)],
    ctx: ContextDep,
    session: SessionDep,
) -> SharePublic:
    track = ctx.catalog.require(body.track_id)
    return shares.create_share(
        session, track, user_id=principal.user_id, web_base_url=ctx.settings.web_base_url
    )


@router.get(
    "/{code}",
    response_model=ShareDetail,
    responses=error_responses(401, 404, 422, 429),
    summary="Open a share: the track and links for X, Facebook, WhatsApp, Telegram, Reddit, "
    "LinkedIn and email",
)
def read_share(
    code: Code,
    ctx: ContextDep,
    session: SessionDep,
    principal: OptionalPrincipal,
    utm_source: Annotated[
        str | None,
        Query(max_length=32, pattern=r"^[a-z0-9_-]+$", description="Where the click came from."),
    ] = None,
    referer: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> ShareDetail:
    """Each call counts a click and records a ``share_click`` event."""
    return shares.open_share(
        session,
        code,
        ctx.catalog.snapshot().tracks,
        web_base_url=ctx.settings.web_base_url,
        source=utm_source,
        referrer=(referer or "")[:512] or None,
        user_id=principal.user_id if principal else None,
    )
