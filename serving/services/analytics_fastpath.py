"""``POST /api/v1/analytics/track`` without FastAPI's routing and
dependency solving, as ``serving.hot`` does for votes.

The middleware sits inside the request-id, security-header and rate-limit
middleware, which verified any access token. It answers a request with no
credentials (anonymous events) or a valid access token (the user id is the
token's subject) itself, with the route's own function
(``analytics_ingest.accept``); anything else (an API key, a refused token,
an unexpected media type) goes on to the route with the body as read.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from serving.logs import request_id_var
from serving.middleware import raw_header
from serving.security.credentials import read_credential
from serving.services.analytics_ingest import IngestError, accept

if TYPE_CHECKING:
    from serving.context import AppContext
    from serving.services.analytics import AnalyticsState

TRACK_PATH = "/api/v1/analytics/track"
JSON_HEADER = (b"content-type", b"application/json")
# sendBeacon and CORS-simple requests send text/plain; the body is JSON either way.
MEDIA_TYPES = frozenset({"application/json", "text/plain"})


def error_json(status: int, code: str, message: str, details: list[dict[str, object]]) -> bytes:
    body = {"error": {"code": code, "message": message, "request_id": request_id_var.get(),
                      "details": details}}  # fmt: skip
    return json.dumps(body, separators=(",", ":")).encode()


class AnalyticsFastPath:
    def __init__(
        self,
        app: ASGIApp,
        *,
        context: Callable[[], AppContext],
        analytics: Callable[[], AnalyticsState],
    ) -> None:
        self.app = app
        self.context = context
        self.analytics = analytics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not (
            scope["type"] == "http" and scope["method"] == "POST" and scope["path"] == TRACK_PATH
        ):
            await self.app(scope, receive, send)
            return
        messages: list[Message] = []
        chunks: list[bytes] = []
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        user_id = self._user(scope) if messages[-1]["type"] == "http.request" else False
        if user_id is False:
            replay = iter(messages)

            async def receive_again() -> Message:
                return next(replay, None) or await receive()

            await self.app(scope, receive_again, send)
            return
        ctx = self.context()
        try:
            answer = await accept(
                self.analytics().writer,
                b"".join(chunks),
                user_id=user_id,  # type: ignore[arg-type]
                max_skew_s=ctx.settings.analytics_max_clock_skew_s,
                request_id=request_id_var.get(),
            )
        except IngestError as exc:
            body, status = error_json(exc.status, exc.code, exc.message, exc.details), exc.status
        else:
            body, status = answer.model_dump_json().encode(), 202
        headers = [(b"content-length", str(len(body)).encode()), JSON_HEADER]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    @staticmethod
    def _user(scope: Scope) -> str | bool | None:
        """The caller's user id, ``None`` (anonymous), or ``False``: the
        route should answer (API key, refused token, odd media type)."""
        media = (raw_header(scope, b"content-type") or "").partition(";")[0].strip().lower()
        if media not in MEDIA_TYPES:
            return False
        credential = read_credential(
            {"x-api-key": raw_header(scope, b"x-api-key"),
             "authorization": raw_header(scope, b"authorization")}
        )  # fmt: skip
        if credential is None:
            return None
        if credential.kind != "jwt":
            return False
        state = scope.get("state") or {}
        claims = state.get("access_claims")
        if claims is None or state.get("access_error") is not None:
            return False
        return str(claims.sub)
