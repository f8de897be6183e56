"""An app database for the drain tests: SQLite, and PostgreSQL (a schema
of its own, dropped afterwards) when CI gives its URL."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from serving.db.session import Database
from serving.services.outbox import db_time, dumps, insert_sql
from sonicforge import ids


@pytest.fixture(params=["sqlite", "postgresql"])
def app_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    if request.param == "sqlite":
        db = Database(f"sqlite:///{tmp_path / 'app.db'}")
        db.migrate()
        yield db
        db.dispose()
        return
    url = request.getfixturevalue("postgres_url")
    schema = f"sf_analytics_{secrets.token_hex(4)}"
    admin = create_engine(url)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    db = Database(url, schema=schema)
    db.migrate()
    try:
        yield db
    finally:
        db.dispose()
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def outbox_rows(
    n: int,
    *,
    dialect: str,
    start: datetime | None = None,
    step_s: float = 1.0,
    type_: str = "track",
    event: str | None = "heartbeat",
    properties: dict[str, Any] | None = None,
) -> list[tuple[Any, ...]]:
    start = start or datetime.now(UTC) - timedelta(hours=1)
    out = []
    for i in range(n):
        ts = start + timedelta(seconds=i * step_s)
        out.append(
            (ids.uuid7(ts), type_, event, None, f"anon-{i % 50}", f"t-{i % 7}",
             dumps(properties or {"seconds": 5, "output": "hls"}), None, None, None,
             db_time(ts, dialect), db_time(ts, dialect), db_time(ts, dialect), 0.0, None, None)
        )  # fmt: skip
    return out


def insert(db: Database, rows: list[tuple[Any, ...]]) -> None:
    with db.engine.begin() as conn:
        conn.exec_driver_sql(insert_sql(db.backend), rows)  # type: ignore[arg-type]
