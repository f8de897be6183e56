"""The app database: migrations match the models on both backends, SQLite
runs in WAL mode, and the schema enforces what the code relies on."""

from __future__ import annotations

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.exc import IntegrityError

from serving.db.models import Base, User, Vote
from serving.db.session import Database, alembic_config
from serving.db.types import utcnow, uuid7


def test_migrations_match_the_models(database: Database) -> None:
    with database.engine.connect() as conn:
        diff = compare_metadata(
            MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata
        )
    assert diff == []
    tables = set(inspect(database.engine).get_table_names())
    assert {"users", "refresh_families", "api_keys", "votes", "shares", "event_outbox"} <= tables


def test_downgrade_and_upgrade_again(database: Database) -> None:
    cfg = alembic_config(database.url)
    with database.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "base")
    assert "users" not in inspect(database.engine).get_table_names()
    database.migrate()
    assert "users" in inspect(database.engine).get_table_names()


def test_sqlite_runs_in_wal_mode(database: Database) -> None:
    if database.backend != "sqlite":
        pytest.skip("WAL is SQLite's")
    with database.engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1


def test_a_vote_needs_stars_or_a_direction_and_is_unique(database: Database) -> None:
    with database.session() as s:
        user = User(email="v@example.com", display_name="V", password_hash="x")
        s.add(user)
        s.commit()
        s.add(Vote(user_id=user.id, track_id="trk_1", genre="house"))
        with pytest.raises(IntegrityError):
            s.commit()
        s.rollback()
        s.add(Vote(user_id=user.id, track_id="trk_1", genre="house", stars=3))
        s.commit()
        s.add(Vote(user_id=user.id, track_id="trk_1", genre="house", stars=4))
        with pytest.raises(IntegrityError):
            s.commit()


def test_datetimes_come_back_aware_in_utc(database: Database) -> None:
    with database.session() as s:
        user = User(email="t@example.com", display_name="T", password_hash="x")
        s.add(user)
        s.commit()
        s.expire_all()
        loaded = s.get(User, user.id)
        assert loaded is not None
        assert loaded.created_at.utcoffset() is not None
        assert abs((utcnow() - loaded.created_at).total_seconds()) < 60


def test_ids_are_time_ordered_uuid7() -> None:
    ids = [uuid7() for _ in range(50)]
    assert all(i[14] == "7" for i in ids)
    assert [i[:13] for i in ids] == sorted(i[:13] for i in ids)
