"""The three hottest reads, rendered once here for both ways in.

Players poll ``/api/v1/stream/status``, charts ``/api/v1/top-tracks``, load
balancers ``/health``. Their FastAPI routes (which document them and serve
anything unusual) and ``HotPathMiddleware`` call the same functions below.
The middleware answers well-formed GETs of these paths directly, inside
the request-id, security-header and rate-limit middleware but before
FastAPI's routing and dependency solving, which cost more than the answer
itself. A request it does not fully understand (an unknown or repeated
query parameter, a value out of range) goes on to FastAPI unchanged and
gets the usual validation and 422.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, get_args
from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Receive, Scope, Send

from serving.db.types import utcnow
from serving.schemas.common import GENRE_PATTERN
from serving.schemas.health import HealthPublic
from serving.schemas.votes import Period, TopTracksPublic
from serving.services import votes
from serving.services.stream import StatusRenderer, read_station

if TYPE_CHECKING:
    from serving.context import AppContext

try:
    VERSION = version("sonicforge")
except PackageNotFoundError:  # running from a checkout that is not installed
    VERSION = "0.0.0"

PERIODS = frozenset(get_args(Period))
_GENRE = re.compile(GENRE_PATTERN)
JSON_HEADER = (b"content-type", b"application/json")


def health_body(ctx: AppContext) -> bytes:
    # Never changes in a process: built once.
    if ctx.health_body is None:
        health = HealthPublic(version=VERSION, environment=ctx.settings.environment)
        ctx.health_body = health.model_dump_json().encode()
    return ctx.health_body


_status = StatusRenderer()


async def stream_status_body(ctx: AppContext) -> bytes:
    # Re-read at most once a second, in the background while the last read
    # keeps serving; positions are extrapolated to now on every response.
    view = await ctx.status_cache.get("view", lambda: read_station(ctx.station))
    return _status.render(view)


async def top_tracks_body(ctx: AppContext, genre: str | None, period: Period, limit: int) -> bytes:
    """The rendered chart, from a cache that refreshes in the background
    and is keyed by the lakehouse's table versions."""
    snapshot = await ctx.catalog.asnapshot()

    def compute() -> bytes:
        with ctx.db.session() as session:
            prior, items = votes.top_tracks(
                session,
                snapshot.tracks,
                genre=genre,
                period=period,
                limit=limit,
                prior_votes=ctx.settings.top_tracks_prior_votes,
            )
        chart = TopTracksPublic(
            genre=genre,
            period=period,
            prior_mean=round(prior, 4),
            prior_votes=ctx.settings.top_tracks_prior_votes,
            items=items,
            generated_at=utcnow(),
        )
        return chart.model_dump_json().encode()

    return await ctx.top_cache.get((genre, period, limit, snapshot.versions), compute)


def chart_query(raw: bytes) -> tuple[str | None, Period, int] | None:
    """``genre``, ``period`` and ``limit`` if the query string is plainly
    valid (the same rules as the route's), else ``None``."""
    genre, period, limit = None, "week", 20
    seen: set[str] = set()
    for key, value in parse_qsl(raw.decode("latin-1"), keep_blank_values=True):
        if key in seen:
            return None
        seen.add(key)
        if key == "genre" and _GENRE.match(value):
            genre = value
        elif key == "period" and value in PERIODS:
            period = value
        elif key == "limit" and value.isdigit() and 1 <= int(value) <= 100:
            limit = int(value)
        else:
            return None
    return genre, period, limit  # type: ignore[return-value]


class HotPathMiddleware:
    def __init__(self, app: ASGIApp, *, context: Callable[[], AppContext]) -> None:
        self.app = app
        self.context = context

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "GET":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        body: bytes | None = None
        if path == "/health" or path == "/live":
            if not scope["query_string"]:
                body = health_body(self.context())
        elif path == "/api/v1/stream/status":
            if not scope["query_string"]:
                body = await stream_status_body(self.context())
        elif path == "/api/v1/top-tracks":
            query = chart_query(scope["query_string"])
            if query is not None:
                body = await top_tracks_body(self.context(), *query)
        if body is None:
            await self.app(scope, receive, send)
            return
        # What ``Response(body, media_type="application/json")`` sends, without building one.
        headers = [(b"content-length", str(len(body)).encode()), JSON_HEADER]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})
