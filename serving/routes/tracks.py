"""Tracks from the lakehouse: list, detail and MP3 download."""

from __future__ import annotations

import os
from functools import partial
from typing import Annotated, Literal

import anyio
from fastapi import Path, Query, Request
from fastapi.responses import Response

from serving.audio import bytes_range_response, file_range_response
from serving.deps import ContextDep, OptionalPrincipal, RequirePermission, SessionDep
from serving.exceptions import NotFoundError, UnavailableError
from serving.routing import ResourceRouter
from serving.schemas.common import GENRE_PATTERN, TRACK_ID_PATTERN, Page, error_responses
from serving.schemas.tracks import TrackDetail, TrackPublic
from serving.security.credentials import Principal
from serving.security.permissions import Permission
from serving.services import votes
from sonicforge.errors import StorageError

router = ResourceRouter(prefix="/tracks", tags=["tracks"])

TrackIdPath = Annotated[str, Path(pattern=TRACK_ID_PATTERN, examples=["trk_3f9a2c1be07d4e11a2b3"])]
Order = Literal["newest", "quality", "plays"]


@router.get(
    "",
    response_model=Page[TrackPublic],
    responses=error_responses(422, 429),
    summary="List tracks with their scores, masters and play counts",
)
async def read_tracks(
    ctx: ContextDep,
    genre: Annotated[str | None, Query(pattern=GENRE_PATTERN, examples=["house"])] = None,
    on_air: bool | None = None,
    passed: Annotated[
        bool | None, Query(description="Only tracks that passed (or failed) the quality gate.")
    ] = None,
    order: Order = "newest",
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> Page[TrackPublic]:
    snapshot = await ctx.catalog.asnapshot()
    items = snapshot.ordered
    if genre is not None:
        items = [t for t in items if t.genre == genre]
    if on_air is not None:
        items = [t for t in items if t.on_air == on_air]
    if passed is not None:
        items = [t for t in items if t.score is not None and t.score.passed == passed]
    if order == "quality":
        items = sorted(items, key=lambda t: -(t.score.quality_score if t.score else -1.0))
    elif order == "plays":
        items = sorted(items, key=lambda t: -t.plays)
    return Page[TrackPublic](
        items=items[offset : offset + limit], total=len(items), limit=limit, offset=offset
    )


@router.get(
    "/{track_id}",
    response_model=TrackDetail,
    responses=error_responses(401, 404, 422, 429),
    summary="One track, with its vote counts",
)
def read_track(
    track_id: TrackIdPath, ctx: ContextDep, session: SessionDep, principal: OptionalPrincipal
) -> TrackDetail:
    track = ctx.catalog.require(track_id)
    aggregate = votes.aggregate(
        session,
        track_id,
        user_id=principal.user_id if principal else None,
        prior_votes=ctx.settings.top_tracks_prior_votes,
    )
    return TrackDetail(**track.model_dump(), votes=aggregate)


@router.get(
    "/{track_id}/audio",
    response_class=Response,
    responses={
        200: {"content": {"audio/mpeg": {}}, "description": "The whole MP3 rendition"},
        206: {"content": {"audio/mpeg": {}}, "description": "The requested byte range"},
        **error_responses(401, 403, 404, 416, 422, 429, 503),
    },
    summary="Download the MP3 rendition (byte ranges supported)",
)
async def download_track_audio(
    track_id: TrackIdPath,
    request: Request,
    ctx: ContextDep,
    _: Annotated[Principal, RequirePermission(Permission.TRACKS_DOWNLOAD)],
) -> Response:
    snapshot = await ctx.catalog.asnapshot()
    uri = snapshot.mp3_uris.get(track_id)
    if uri is None:
        raise NotFoundError(f"track {track_id!r} has no MP3 rendition (not mastered yet?)")
    filename = f"{track_id}.mp3"
    if "://" not in uri or uri.startswith("file://"):
        path = uri.removeprefix("file://")
        if not await anyio.to_thread.run_sync(os.path.isfile, path):
            raise UnavailableError(f"the audio of track {track_id!r} is missing from the store")
        return await anyio.to_thread.run_sync(
            partial(
                file_range_response,
                path,
                request.headers.get("range"),
                media_type="audio/mpeg",
                filename=filename,
            )
        )
    try:
        data = await anyio.to_thread.run_sync(ctx.lakehouse.audio.get, uri)
    except StorageError:
        raise UnavailableError(f"the audio of track {track_id!r} could not be read") from None
    return bytes_range_response(
        data, request.headers.get("range"), media_type="audio/mpeg", filename=filename
    )
