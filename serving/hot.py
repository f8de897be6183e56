"""The three hottest reads, rendered once here for both ways in, and the
hottest write, a vote.

Players poll ``/api/v1/stream/status``, charts ``/api/v1/top-tracks``, load
balancers ``/health``. Their FastAPI routes (which document them and serve
anything unusual) and ``HotPathMiddleware`` call the same functions below.
The middleware answers well-formed GETs of these paths directly, inside
the request-id, security-header and rate-limit middleware but before
FastAPI's routing and dependency solving, which cost more than the answer
itself. A request it does not fully understand (an unknown or repeated
query parameter, a value out of range) goes on to FastAPI unchanged and
gets the usual validation and 422.

``POST /api/v1/vote`` with an access token is cast here too: FastAPI's
dependency solving (security schemes, context, principal, permission)
cost more than half of a vote. The route stays the reference: any vote
the hot path is not sure of goes to it with its body, and is answered
there (API keys, 401, 403, 404, 422).

Stripe's ``POST /api/v1/webhooks/stripe`` with a JSON body is received
here too, through the route's own ``receive_webhook`` (the signature
verified by the stripe library, the event applied once by the group-commit
writer, its answers and errors alike): routing and dependency solving cost
twice what applying an event does. Any other media type goes to the route.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, get_args
from urllib.parse import parse_qsl

from pydantic import ValidationError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from serving.db.types import utcnow
from serving.exceptions import ServingError
from serving.middleware import raw_header
from serving.schemas.common import GENRE_PATTERN
from serving.schemas.health import HealthPublic
from serving.schemas.votes import Period, TopTracksPublic, VoteCreate
from serving.security.credentials import read_credential
from serving.security.permissions import Permission
from serving.services import votes
from serving.services.stream import StatusRenderer, read_station

if TYPE_CHECKING:
    from serving.context import AppContext

try:
    VERSION = version("sonicforge")
except PackageNotFoundError:  # running from a checkout that is not installed
    VERSION = "0.0.0"

PERIODS = frozenset(get_args(Period))
VOTE_PATH = "/api/v1/vote"
WEBHOOK_PATH = "/api/v1/webhooks/stripe"
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
            if scope["type"] == "http" and scope["method"] == "POST" and scope["path"] == VOTE_PATH:
                await self._vote(scope, receive, send)
                return
            if (
                scope["type"] == "http"
                and scope["method"] == "POST"
                and scope["path"] == WEBHOOK_PATH
            ):
                await self._webhook(scope, receive, send)
                return
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

    async def _vote(self, scope: Scope, receive: Receive, send: Send) -> None:
        """``POST /api/v1/vote`` with a JSON body and an access token that
        the rate limiter verified: the route's work (the same principal
        cache and check, the catalog, the vote writer, the answer once the
        vote is committed) without FastAPI's dependency solving. Anything
        else (an API key, a body that does not validate, a refused or
        unknown principal, a track not in the snapshot) goes on to the
        route, with the body as read, for its usual answer."""
        messages: list[Message] = []
        body = b""
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break
            body += message.get("body", b"")
            if not message.get("more_body", False):
                break
        answer = await self._cast(scope, body) if messages[-1]["type"] == "http.request" else None
        if answer is None:
            replay = iter(messages)

            async def receive_again() -> Message:
                return next(replay, None) or await receive()

            await self.app(scope, receive_again, send)
            return
        headers = [(b"content-length", str(len(answer)).encode()), JSON_HEADER]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": answer})

    async def _webhook(self, scope: Scope, receive: Receive, send: Send) -> None:
        """A Stripe delivery with a JSON body, as the route receives it
        (``serving.billing.endpoint.receive_webhook``) and with its answers,
        errors included, without FastAPI's routing and dependencies. Any
        other media type goes on to the route."""
        from serving.billing.endpoint import MAX_WEBHOOK_BYTES, receive_webhook
        from serving.errors import error_response

        media = (raw_header(scope, b"content-type") or "").partition(";")[0].strip().lower()
        if media != "application/json":
            await self.app(scope, receive, send)
            return
        messages: list[Message] = []
        body = b""
        while len(body) <= MAX_WEBHOOK_BYTES:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request" or not message.get("more_body", False):
                body += message.get("body", b"")
                break
            body += message.get("body", b"")
        if len(body) > MAX_WEBHOOK_BYTES:
            # Too large to be an event: the route reads the rest and refuses it.
            replay = iter(messages)

            async def receive_again() -> Message:
                return next(replay, None) or await receive()

            await self.app(scope, receive_again, send)
            return
        if messages[-1]["type"] != "http.request":
            return  # the client went away
        try:
            ack = await receive_webhook(
                self.context(), body, raw_header(scope, b"stripe-signature")
            )
        except ServingError as exc:
            refusal = error_response(
                exc.status_code,
                exc.code,
                exc.message,
                details=exc.details,
                headers=exc.headers or None,
            )
            await refusal(scope, receive, send)
            return
        answer = ack.model_dump_json().encode()
        headers = [(b"content-length", str(len(answer)).encode()), JSON_HEADER]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": answer})

    async def _cast(self, scope: Scope, body: bytes) -> bytes | None:
        from serving.deps import resolve_principal  # deps imports the app's context

        state = scope.get("state") or {}
        claims = state.get("access_claims")
        if claims is None or state.get("access_error") is not None:
            return None
        media = (raw_header(scope, b"content-type") or "").partition(";")[0].strip().lower()
        if media != "application/json":
            return None
        credential = read_credential(
            {"x-api-key": raw_header(scope, b"x-api-key"),
             "authorization": raw_header(scope, b"authorization")}
        )  # fmt: skip
        if credential is None or credential.kind != "jwt":
            return None
        try:
            vote = VoteCreate.model_validate(json.loads(body))
        except (ValueError, ValidationError):  # the route answers 422
            return None
        ctx = self.context()
        try:
            principal = await resolve_principal(ctx, credential, claims)
        except ServingError:  # the route answers 401
            return None
        if not principal.can(Permission.VOTES_WRITE):
            return None
        track = (await ctx.catalog.asnapshot()).tracks.get(vote.track_id)
        if track is None:  # the route looks further, or answers 404
            return None
        public = await votes.cast_vote(ctx.votes, user_id=principal.user_id, track=track, vote=vote)
        return public.model_dump_json().encode()
