"""Fixtures for the scale tests: the serving ones (app context, accounts, an
in-process Dagster webserver), with the app database on PostgreSQL only:
these tests are about the production stores."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import text

from serving.db.models import Base
from serving.db.session import Database
from tests.core.test_s3_lakehouse import s3_server  # noqa: F401 - moto's S3 on loopback
from tests.serving.conftest import (  # noqa: F401 - fixtures, registered by import
    client,
    ctx,
    dagster_webserver,
    make_context,
    pg_schema,
    serving_settings,
    station,
    users,
)


@pytest.fixture
def database(postgres_url: str, request: pytest.FixtureRequest) -> Iterator[Database]:
    url, schema = request.getfixturevalue("pg_schema")
    db = Database(url, schema=schema)
    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with db.engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    yield db
    db.dispose()
