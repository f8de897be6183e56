"""Roles and the permission matrix, in one place.

Endpoints declare the permission they need (``RequirePermission`` in
``serving.deps``); nothing else looks at role names. An API key acts with
its scopes intersected with its owner's current permissions, so demoting a
user also narrows every key they made.
"""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    LISTENER = "listener"
    SUBSCRIBER = "subscriber"
    CREATOR = "creator"
    MODERATOR = "moderator"
    ANALYST = "analyst"
    OPERATOR = "operator"
    ADMIN = "admin"


class Permission(StrEnum):
    VOTES_WRITE = "votes:write"
    SHARES_CREATE = "shares:create"
    KEYS_MANAGE = "keys:manage"
    TRACKS_DOWNLOAD = "tracks:download"
    PIPELINE_READ = "pipeline:read"
    PIPELINE_RUN = "pipeline:run"
    STREAM_CONTROL = "stream:control"
    QUEUE_MANAGE = "queue:manage"
    HEALTH_DETAILED = "health:detailed"
    USERS_READ = "users:read"
    USERS_MANAGE = "users:manage"
    ANALYTICS_READ = "analytics:read"
    ANALYTICS_DASHBOARD = "analytics:dashboard"


P = Permission
_EVERYONE = frozenset({P.VOTES_WRITE, P.SHARES_CREATE, P.KEYS_MANAGE})
_PAYING = _EVERYONE | {P.TRACKS_DOWNLOAD}

MATRIX: dict[Role, frozenset[Permission]] = {
    Role.LISTENER: _EVERYONE,
    Role.SUBSCRIBER: _PAYING,
    Role.CREATOR: _PAYING | {P.PIPELINE_READ, P.PIPELINE_RUN},
    Role.MODERATOR: _PAYING | {P.USERS_READ},
    Role.ANALYST: _PAYING | {P.PIPELINE_READ, P.HEALTH_DETAILED},
    Role.OPERATOR: _PAYING
    | {P.PIPELINE_READ, P.PIPELINE_RUN, P.STREAM_CONTROL, P.QUEUE_MANAGE, P.HEALTH_DETAILED},
    Role.ADMIN: frozenset(Permission),
}
# Analytics: analysts read the events and the dashboard, operators the dashboard.
MATRIX[Role.ANALYST] = MATRIX[Role.ANALYST] | {P.ANALYTICS_READ, P.ANALYTICS_DASHBOARD}
MATRIX[Role.OPERATOR] = MATRIX[Role.OPERATOR] | {P.ANALYTICS_DASHBOARD}


def permissions_for(role: str) -> frozenset[Permission]:
    """The permissions of ``role``; an unknown role has none."""
    try:
        return MATRIX[Role(role)]
    except ValueError:
        return frozenset()
