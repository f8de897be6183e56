"""Votes on tracks and the charts they make."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Query, Request, Response, status

from serving.deps import (
    ContextDep,
    OptionalPrincipal,
    RequirePermission,
    SessionDep,
    context_of,
)
from serving.hot import top_tracks_body
from serving.routing import ResourceRouter
from serving.schemas.common import GENRE_PATTERN, TRACK_ID_PATTERN, error_responses
from serving.schemas.votes import Period, TopTracksPublic, VoteAggregate, VoteCreate, VotePublic
from serving.security.credentials import Principal
from serving.security.permissions import Permission
from serving.services import votes

router = ResourceRouter(tags=["votes"])

Voter = Annotated[Principal, RequirePermission(Permission.VOTES_WRITE)]
TrackIdPath = Annotated[str, Path(pattern=TRACK_ID_PATTERN, examples=["trk_3f9a2c1be07d4e11a2b3"])]


@router.get(
    "/top-tracks",
    response_model=TopTracksPublic,
    responses=error_responses(422, 429),
    summary="The chart: tracks ranked by Bayesian average rating",
)
async def read_top_tracks(
    request: Request,
    genre: Annotated[str | None, Query(pattern=GENRE_PATTERN, examples=["house"])] = None,
    period: Period = "week",
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> Response:
    """Cached for a few seconds per worker (``top_tracks_cache_s``), served
    stale while it refreshes, and recomputed at once when the lakehouse's
    track tables move. Served by ``serving.hot`` in the common case."""
    body = await top_tracks_body(context_of(request), genre, period, limit)
    return Response(body, media_type="application/json")


@router.post(
    "/vote",
    response_model=VotePublic,
    responses=error_responses(401, 403, 404, 422, 429),
    summary="Vote on a track (stars and/or up or down); voting again replaces the vote",
)
async def create_vote(body: VoteCreate, principal: Voter, ctx: ContextDep) -> VotePublic:
    track = await ctx.catalog.arequire(body.track_id)
    return await votes.cast_vote(ctx.votes, user_id=principal.user_id, track=track, vote=body)


@router.get(
    "/vote/{track_id}",
    response_model=VoteAggregate,
    responses=error_responses(401, 404, 422, 429),
    summary="A track's vote counts and Bayesian score, and the caller's own vote",
)
def read_votes(
    track_id: TrackIdPath, ctx: ContextDep, session: SessionDep, principal: OptionalPrincipal
) -> VoteAggregate:
    ctx.catalog.require(track_id)
    return votes.aggregate(
        session,
        track_id,
        user_id=principal.user_id if principal else None,
        prior_votes=ctx.settings.top_tracks_prior_votes,
    )


@router.delete(
    "/vote/{track_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=error_responses(401, 403, 404, 422, 429),
    summary="Withdraw your vote on a track",
)
def delete_vote(track_id: TrackIdPath, principal: Voter, session: SessionDep) -> None:
    votes.withdraw_vote(session, principal.user_id, track_id)
