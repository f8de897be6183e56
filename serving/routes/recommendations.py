"""Recommendations: for you, like this track, and what is trending."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Query, Request

from serving.deps import ContextDep, CurrentPrincipal
from serving.routing import ResourceRouter
from serving.schemas.common import GENRE_PATTERN, TRACK_ID_PATTERN, error_responses
from serving.schemas.recommendations import RecommendationList
from serving.services.recommend import RecommendationService

router = ResourceRouter(prefix="/recommendations", tags=["recommendations"])

Limit = Annotated[int, Query(ge=1, le=100, description="How many tracks (1-100).")]


def service_of(request: Request) -> RecommendationService:
    svc: RecommendationService = request.app.state.recommender
    return svc


@router.get(
    "/personalized",
    response_model=RecommendationList,
    responses=error_responses(401, 422, 429),
    summary="Tracks for the signed-in listener, each with why",
)
async def read_personalized(
    request: Request, principal: CurrentPrincipal, limit: Limit = 10
) -> RecommendationList:
    """From the champion model for listeners it knows; a listener it does not
    know yet gets what is trending in their favourite genre (from their
    votes), then what is trending overall."""
    import anyio

    svc = service_of(request)
    idx = await svc.aindex()
    model = idx.model
    if model is not None and model.artifact.user_index(principal.user_id) is not None:
        return svc.personalized(idx, principal.user_id, limit=limit)
    # The favourite genre is a database read: off the event loop.
    return await anyio.to_thread.run_sync(
        lambda: svc.cold_start(idx, principal.user_id, limit=limit)
    )


@router.get(
    "/similar/{track_id}",
    response_model=RecommendationList,
    responses=error_responses(404, 422, 429),
    summary="Tracks like this one (works for a track mastered a minute ago)",
)
async def read_similar(
    request: Request,
    ctx: ContextDep,
    track_id: Annotated[str, Path(pattern=TRACK_ID_PATTERN, examples=["trk_3f9a2c1be07d4e11a2b3"])],
    limit: Limit = 10,
) -> RecommendationList:
    track = await ctx.catalog.arequire(track_id)
    svc = service_of(request)
    return svc.similar(await svc.aindex(), track, limit=limit)


@router.get(
    "/trending",
    response_model=RecommendationList,
    responses=error_responses(422, 429),
    summary="What is trending on the station, optionally in one genre",
)
async def read_trending(
    request: Request,
    genre: Annotated[str | None, Query(pattern=GENRE_PATTERN, examples=["house"])] = None,
    limit: Limit = 10,
) -> RecommendationList:
    svc = service_of(request)
    return svc.trending(await svc.aindex(), limit=limit, genre=genre)
