"""Writers of one SQLite file take turns: a lock file beside the database.

SQLite allows one writer at a time; the group-commit writers of several API
workers (votes, analytics events) queue on this lock instead of spinning on
``database is locked``. Other databases need no turn-taking: a no-op there.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator

from sqlalchemy.engine import make_url

from serving.db.session import Database


class WriteTurn:
    """``with turn.hold():`` around a write transaction; ``close()`` when done."""

    def __init__(self, db: Database) -> None:
        self._fd: int | None = None
        database = make_url(db.url).database
        if db.backend == "sqlite" and database and database != ":memory:":
            self._fd = os.open(f"{database}.write-lock", os.O_RDWR | os.O_CREAT, 0o600)

    @contextlib.contextmanager
    def hold(self) -> Iterator[None]:
        if self._fd is None:
            yield
            return
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
