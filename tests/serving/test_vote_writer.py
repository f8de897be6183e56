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


def test_concurrent_votes_commit_together_and_a_bad_one_fails_alone(database: Database) -> None:
    ids = _users(database, 40)
    writer = VoteWriter(database)
    writer.start()

    async def scenario() -> list[object]:
        votes = [
            writer.submit(
                user_id=uid,
                track_id=f"trk_{i % 5}",
                genre="house",
                stars=9 if i == 7 else (i % 5) + 1,  # 9 breaks the stars check
                direction=None,
                properties={},
                request_id=f"r{i}",
            )
            for i, uid in enumerate(ids)
        ]
        return await asyncio.gather(*votes, return_exceptions=True)

    try:
        results = asyncio.run(scenario())
    finally:
        writer.stop()
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
