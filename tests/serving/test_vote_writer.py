"""The vote writer's group commit: concurrent votes share transactions,
every acknowledged vote is in the database with its event, and a bad vote
fails alone."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from serving.db.models import OutboxEvent, User, Vote
from serving.db.session import Database
from serving.services.vote_writer import VoteWriter


def _users(database: Database, n: int) -> list[str]:
    with database.session() as s:
        users = [
            User(email=f"w{i}@example.com", display_name="w", password_hash="x") for i in range(n)
        ]
        s.add_all(users)
        s.commit()
        return [u.id for u in users]


def _cast(database: Database, ids: list[str], *, bad: int | None) -> tuple[list[object], int]:
    """Submit one vote per user at once; returns the outcomes and commits."""
    writer = VoteWriter(database)
    writer.start()

    async def scenario() -> list[object]:
        votes = [
            writer.submit(
                user_id=uid,
                track_id=f"trk_{i % 5}",
                genre="house",
                stars=9 if i == bad else (i % 5) + 1,  # 9 breaks the stars check
                direction=None,
                properties={},
                request_id=f"r{i}",
            )
            for i, uid in enumerate(ids)
        ]
        return await asyncio.gather(*votes, return_exceptions=True)

    try:
        return asyncio.run(scenario()), writer.batches
    finally:
        writer.stop()


def test_concurrent_votes_share_commits(database: Database) -> None:
    results, batches = _cast(database, _users(database, 40), bad=None)
    assert [r for r in results if isinstance(r, BaseException)] == []
    assert batches < 20  # queued together, written together (usually one or two commits)
    with database.session() as s:
        assert s.scalar(select(func.count()).select_from(Vote)) == 40
        assert s.scalar(select(func.count()).where(OutboxEvent.type == "vote")) == 40


def test_a_bad_vote_fails_alone(database: Database) -> None:
    results, _ = _cast(database, _users(database, 40), bad=7)
    failures = [i for i, r in enumerate(results) if isinstance(r, BaseException)]
    assert failures == [7]
    assert isinstance(results[7], IntegrityError)
    with database.session() as s:
        assert s.scalar(select(func.count()).select_from(Vote)) == 39
        assert s.scalar(select(func.count()).where(OutboxEvent.type == "vote")) == 39
        assert sorted(s.scalars(select(OutboxEvent.request_id)).all()) == sorted(
            f"r{i}" for i in range(40) if i != 7
        )


def test_a_stopped_writer_refuses_votes(database: Database) -> None:
    writer = VoteWriter(database)

    async def scenario() -> None:
        await writer.submit(user_id="u", track_id="t", genre="g", stars=1, direction=None,
                            properties={}, request_id=None)  # fmt: skip

    with pytest.raises(RuntimeError, match="not running"):
        asyncio.run(scenario())
