"""Votes: one per user and track, replaced when cast again; aggregates and
charts ranked by a Bayesian average.

The Bayesian average ``(C·m + Σ ratings) / (C + n)`` pulls a track with few
votes toward the mean ``m`` of all votes in scope, with the weight of ``C``
votes (``top_tracks_prior_votes``): one 5-star vote cannot top a chart that
tracks with many good votes are on. A vote's rating is its stars; a thumb
without stars counts as 5 (up) or 1 (down).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import ColumnElement, and_, case, delete, func, select
from sqlalchemy.orm import Session

from serving.db.models import Vote
from serving.db.types import utcnow
from serving.exceptions import NotFoundError
from serving.logs import request_id_var
from serving.schemas.tracks import TrackPublic
from serving.schemas.votes import (
    Direction,
    Period,
    TopTrack,
    VoteAggregate,
    VoteCreate,
    VotePublic,
)
from serving.services.outbox import record_event

if TYPE_CHECKING:
    from serving.services.vote_writer import VoteWriter


async def cast_vote(
    writer: VoteWriter, *, user_id: str, track: TrackPublic, vote: VoteCreate
) -> VotePublic:
    """Write ``vote`` through the worker's vote writer (group commit, with its
    event) and answer once it is committed: the route and the hot path both."""
    created_at, updated_at = await writer.submit(
        user_id=user_id,
        track_id=track.track_id,
        genre=track.genre,
        stars=vote.stars,
        direction=None if vote.direction is None else (1 if vote.direction == "up" else -1),
        properties={"stars": vote.stars, "direction": vote.direction},
        request_id=request_id_var.get(),
    )
    return VotePublic(
        track_id=track.track_id,
        stars=vote.stars,
        direction=vote.direction,
        created_at=created_at,
        updated_at=updated_at,
    )


PERIODS: dict[str, timedelta | None] = {
    "day": timedelta(days=1),
    "week": timedelta(days=7),
    "month": timedelta(days=30),
    "year": timedelta(days=365),
    "all": None,
}

_rating = case(
    (Vote.stars.is_not(None), Vote.stars),
    (Vote.direction == 1, 5),
    else_=1,
)
_ups = func.sum(case((Vote.direction == 1, 1), else_=0))
_downs = func.sum(case((Vote.direction == -1, 1), else_=0))


def _direction(value: int | None) -> Direction | None:
    return None if value is None else ("up" if value > 0 else "down")


def bayesian(prior_mean: float, prior_votes: float, total: float, count: int) -> float:
    return (prior_votes * prior_mean + total) / (prior_votes + count)


def withdraw_vote(session: Session, user_id: str, track_id: str) -> None:
    result = session.execute(delete(Vote).where(Vote.user_id == user_id, Vote.track_id == track_id))
    if not result.rowcount:  # type: ignore[attr-defined]
        session.rollback()
        raise NotFoundError(f"you have no vote on track {track_id!r}")
    record_event(session, "vote_withdrawn", user_id=user_id, track_id=track_id)
    session.commit()


def _prior_mean(session: Session, where: ColumnElement[bool] | None = None) -> float:
    stmt = select(func.avg(_rating))
    if where is not None:
        stmt = stmt.where(where)
    mean = session.scalar(stmt)
    return float(mean) if mean is not None else 3.0  # the scale's middle before any vote


def aggregate(
    session: Session, track_id: str, *, user_id: str | None, prior_votes: float
) -> VoteAggregate:
    row = session.execute(
        select(
            func.count(),
            func.count(Vote.stars),
            func.avg(Vote.stars),
            _ups,
            _downs,
            func.sum(_rating),
        ).where(Vote.track_id == track_id)
    ).one()
    votes, stars_count, stars_avg, ups, downs, total = row
    mine = None
    if user_id is not None:
        own = session.scalar(select(Vote).where(Vote.user_id == user_id, Vote.track_id == track_id))
        if own is not None:
            mine = VotePublic(
                track_id=own.track_id,
                stars=own.stars,
                direction=_direction(own.direction),
                created_at=own.created_at,
                updated_at=own.updated_at,
            )
    score = None
    if votes:
        score = round(bayesian(_prior_mean(session), prior_votes, float(total), int(votes)), 4)
    return VoteAggregate(
        track_id=track_id,
        votes=int(votes),
        stars_count=int(stars_count),
        stars_avg=round(float(stars_avg), 4) if stars_avg is not None else None,
        ups=int(ups or 0),
        downs=int(downs or 0),
        score=score,
        mine=mine,
    )


def top_tracks(
    session: Session,
    tracks: dict[str, TrackPublic],
    *,
    genre: str | None,
    period: Period,
    limit: int,
    prior_votes: float,
    now: datetime | None = None,
) -> tuple[float, list[TopTrack]]:
    """The chart for ``genre`` (all genres if ``None``) over ``period``;
    returns the prior mean used and the ranked tracks."""
    conditions = []
    if genre is not None:
        conditions.append(Vote.genre == genre)
    span = PERIODS[period]
    if span is not None:
        conditions.append(Vote.updated_at >= (now or utcnow()) - span)
    where = and_(*conditions) if conditions else None
    stmt = select(
        Vote.track_id, func.count(), func.sum(_rating), func.avg(Vote.stars), _ups, _downs
    ).group_by(Vote.track_id)
    if where is not None:
        stmt = stmt.where(where)
    rows = session.execute(stmt).all()
    prior = _prior_mean(session, where)
    ranked = []
    for track_id, count, total, stars_avg, ups, downs in rows:
        track = tracks.get(track_id)
        if track is None:  # no longer in the lakehouse: not on the chart
            continue
        score = bayesian(prior, prior_votes, float(total), int(count))
        ranked.append((score, int(count), track, stars_avg, int(ups or 0), int(downs or 0)))
    ranked.sort(key=lambda r: (-r[0], -r[1], r[2].track_id))
    return prior, [
        TopTrack(
            rank=i,
            track_id=track.track_id,
            genre=track.genre,
            bpm=track.bpm,
            duration_s=track.duration_s,
            votes=count,
            stars_avg=round(float(stars_avg), 4) if stars_avg is not None else None,
            ups=ups,
            downs=downs,
            score=round(score, 4),
        )
        for i, (score, count, track, stars_avg, ups, downs) in enumerate(ranked[:limit], start=1)
    ]
