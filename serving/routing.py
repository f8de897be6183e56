"""Routers that decline requests outside their prefix at once.

FastAPI (0.165) tries every route of every included router in turn, at a
few microseconds each, before it finds the one that matches; with some
forty routes that was a third of a hot request. A ``ResourceRouter`` knows
the full path it is mounted at and answers "no match" for any other path
without trying its routes. Everything else (OpenAPI, dependencies, 405s
for a known path with another method) is FastAPI's own behaviour.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, FastAPI
from starlette._utils import get_route_path
from starlette.routing import Match
from starlette.types import Scope


class ResourceRouter(APIRouter):
    mounted_at: str = ""

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if self.mounted_at and not get_route_path(scope).startswith(self.mounted_at):
            return Match.NONE, {}
        return super().matches(scope)


def include(parent: FastAPI | ResourceRouter, router: ResourceRouter, **kwargs: Any) -> None:
    """``parent.include_router(router)``, recording where ``router`` lands."""
    base = parent.mounted_at if isinstance(parent, ResourceRouter) else ""
    router.mounted_at = base + kwargs.get("prefix", "") + router.prefix
    parent.include_router(router, **kwargs)
