"""The app database: SQLAlchemy 2 models, engines and Alembic migrations."""

from __future__ import annotations

from serving.db.models import ApiKey, Base, OutboxEvent, RefreshFamily, Share, User, Vote
from serving.db.session import Database, migrate

__all__ = [
    "ApiKey",
    "Base",
    "Database",
    "OutboxEvent",
    "RefreshFamily",
    "Share",
    "User",
    "Vote",
    "migrate",
]
