"""Engines and sessions for the app database, and running its migrations.

SQLite (the embedded default) runs in WAL mode so readers never wait for the
writer and two API workers can share one file; PostgreSQL is the production
backend. The same models and migrations serve both.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

log = logging.getLogger("serving.db")

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cur = dbapi_connection.cursor()
    # WAL: readers do not block the writer; NORMAL sync is durable across
    # application crashes (only an OS crash may lose the last commits).
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    # Two workers write the same file: wait for the lock rather than fail.
    cur.execute("PRAGMA busy_timeout=5000")
    # Checkpoints (which fsync) are the background checkpointer's job; a
    # writer only checkpoints if the log grows past ~40 MB without one.
    cur.execute("PRAGMA wal_autocheckpoint=10000")
    cur.close()


def create_db_engine(url: str, *, schema: str | None = None) -> Engine:
    """An engine for ``url``; ``schema`` pins PostgreSQL's search_path."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            os.makedirs(os.path.dirname(os.path.abspath(parsed.database)), exist_ok=True)
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": 5.0},
            pool_size=8,
            max_overflow=8,
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    connect_args: dict[str, Any] = {}
    if schema:
        connect_args["options"] = f"-csearch_path={schema}"
    return create_engine(
        url, pool_size=10, max_overflow=10, pool_pre_ping=True, connect_args=connect_args
    )


class Database:
    """One engine and its session factory, owned by the app."""

    def __init__(self, url: str, *, schema: str | None = None) -> None:
        self.url = url
        self.schema = schema
        self.engine = create_db_engine(url, schema=schema)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._checkpointer: tuple[threading.Event, threading.Thread] | None = None

    @property
    def backend(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def session(self) -> Iterator[Session]:
        with self.sessions() as session:
            yield session

    def ping(self) -> None:
        with self.engine.connect() as conn:
            conn.execute(text("SELECT 1"))

    def start_checkpointer(self, interval_s: float = 1.0) -> None:
        """SQLite only: copy the write-ahead log into the database file every
        ``interval_s`` from a thread of its own (PASSIVE: writers go on), so
        no request waits for a checkpoint's fsync."""
        if self.backend != "sqlite" or self._checkpointer is not None:
            return
        stop = threading.Event()

        def run() -> None:
            while not stop.wait(interval_s):
                try:
                    with self.engine.connect() as conn:
                        conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")
                except Exception:  # busy or closing: the next round retries
                    log.debug("checkpoint skipped", exc_info=True)

        thread = threading.Thread(target=run, name="sqlite-checkpointer", daemon=True)
        thread.start()
        self._checkpointer = (stop, thread)

    def stop_checkpointer(self) -> None:
        if self._checkpointer is not None:
            stop, thread = self._checkpointer
            stop.set()
            thread.join(timeout=10)
            self._checkpointer = None

    def migrate(self) -> None:
        migrate(self.url, schema=self.schema, engine=self.engine)

    def dispose(self) -> None:
        self.stop_checkpointer()
        self.engine.dispose()


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    # ConfigParser interpolates "%": escape it in passwords and options.
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def migrate(
    url: str, *, schema: str | None = None, engine: Engine | None = None, revision: str = "head"
) -> None:
    """Upgrade the app database at ``url`` to ``revision`` (Alembic)."""
    engine = engine or create_db_engine(url, schema=schema)
    cfg = alembic_config(url)
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)
