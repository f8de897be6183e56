"""Pure ASGI middleware: request ids, access logs, security headers and a
last-resort error body (outermost), and rate limits (inside CORS).

Pure ASGI rather than ``BaseHTTPMiddleware``: no extra task and no body
buffering per request, which matters at thousands of requests a second.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import re
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from serving.addresses import client_address, client_identity
from serving.exceptions import InvalidTokenError
from serving.logs import AccessLog, request_id_var
from serving.ratelimit import Verdict
from serving.security.credentials import read_credential

if TYPE_CHECKING:
    from serving.context import AppContext

errors_log = logging.getLogger("serving.errors")

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
# Swagger UI and ReDoc load their bundles from jsDelivr and run an inline
# bootstrap script; only those pages get this wider policy.
DOCS_CSP = (
    "default-src 'none'; script-src 'self' https://cdn.jsdelivr.net 'unsafe-inline'; "
    "style-src 'self' https://cdn.jsdelivr.net 'unsafe-inline'; img-src 'self' data: "
    "https://fastapi.tiangolo.com; connect-src 'self'; worker-src blob:; frame-ancestors 'none'"
)
DOCS_PATHS = ("/docs", "/redoc")
MAX_BODY_BYTES = 64 * 1024
# Paths allowed a larger body than MAX_BODY_BYTES (the analytics batch: 1 MB).
BODY_LIMITS: dict[str, int] = {"/api/v1/analytics/track": 1024 * 1024}
BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
SECURITY_HEADERS = [
    (b"strict-transport-security", b"max-age=63072000; includeSubDomains"),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"strict-origin-when-cross-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=(), payment=(), usb=()"),
    (b"cross-origin-opener-policy", b"same-origin"),
]


def error_body(status: int, code: str, message: str, request_id: str | None) -> bytes:
    body: dict[str, Any] = {
        "error": {"code": code, "message": message, "request_id": request_id, "details": []}
    }
    return json.dumps(body, separators=(",", ":")).encode()


def raw_header(scope: Scope, name: bytes) -> str | None:
    """One request header (``name`` in lower case), without building a
    ``Headers`` object: this runs on every request."""
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


def body_refusal(scope: Scope) -> tuple[int, str, str] | None:
    """Request bodies are small JSON documents: one declared larger than
    ``MAX_BODY_BYTES``, or of undeclared length, is refused before it is
    read (413 / 411)."""
    length = raw_header(scope, b"content-length")
    if length is None:
        if raw_header(scope, b"transfer-encoding"):
            return 411, "length_required", "send a Content-Length with the request body"
        return None
    limit = BODY_LIMITS.get(scope["path"], MAX_BODY_BYTES)
    if not length.isdigit() or int(length) > limit:
        return 413, "payload_too_large", f"request bodies are limited to {limit} bytes"
    return None


def _logged_client(scope: Scope) -> str | None:
    # The validated address; anything else as given, cut short.
    client = scope.get("client")
    return client_address(scope) or (str(client[0])[:64] if client else None)


class RequestIds:
    """Request ids unique across workers and restarts: a random prefix per
    process and a counter (an id names a request; it guards nothing). The
    counter starts at a random point, so ids do not tell how many requests
    a worker has served."""

    def __init__(self) -> None:
        self.prefix = os.urandom(8).hex()
        self.counter = itertools.count(int.from_bytes(os.urandom(6), "big"))

    def next(self) -> str:
        return f"{self.prefix}{next(self.counter):016x}"  # 32 hex digits, as a UUID


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp, *, access_log: AccessLog | None = None) -> None:
        self.app = app
        self.access_log = access_log
        self.ids = RequestIds()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = raw_header(scope, b"x-request-id")
        request_id = given if given and _REQUEST_ID.match(given) else self.ids.next()
        token = request_id_var.set(request_id)
        path: str = scope["path"]
        csp = (DOCS_CSP if path.startswith(DOCS_PATHS) else API_CSP).encode()
        start = time.perf_counter()
        status = 0

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                raw = list(message.get("headers", []))
                raw.append((b"x-request-id", request_id.encode()))
                # A page that sets its own policy (serving.web) keeps it; one
                # that lets others frame it says so there, and gets no DENY.
                own = next((v for k, v in raw if k == b"content-security-policy"), None)
                if own is None:
                    raw.append((b"content-security-policy", csp))
                if own is None or b"frame-ancestors 'none'" in own:
                    raw.extend(SECURITY_HEADERS)
                else:
                    raw.extend(h for h in SECURITY_HEADERS if h[0] != b"x-frame-options")
                message["headers"] = raw
            await send(message)

        try:
            refusal = body_refusal(scope) if scope["method"] in BODY_METHODS else None
            if refusal is not None:
                status_code, code, message = refusal
                await send_wrapper(
                    {"type": "http.response.start", "status": status_code,
                     "headers": [(b"content-type", b"application/json")]}
                )  # fmt: skip
                await send({"type": "http.response.body",
                            "body": error_body(status_code, code, message, request_id)})  # fmt: skip
                return
            await self.app(scope, receive, send_wrapper)
        except Exception:
            # Logged here with the traceback; the client gets the uniform
            # body and the request id, never the stack trace.
            errors_log.exception("unhandled error", extra={"path": path})
            if status == 0:
                status = 500
                await send_wrapper(
                    {
                        "type": "http.response.start",
                        "status": 500,
                        "headers": [(b"content-type", b"application/json")],
                    }
                )
                await send(
                    {
                        "type": "http.response.body",
                        "body": error_body(
                            500,
                            "internal_error",
                            "an unexpected error occurred; quote the request id when reporting it",
                            request_id,
                        ),
                    }
                )
        finally:
            if self.access_log is not None:
                self.access_log.request(
                    request_id,
                    scope["method"],
                    path,
                    status,
                    round((time.perf_counter() - start) * 1000, 3),
                    _logged_client(scope),
                )
            request_id_var.reset(token)


class RateLimitMiddleware:
    """Per-IP limits on every request and per-user or per-key limits on
    authenticated ones, counted in the shared store.

    The access token is verified here (signature and claims only, no
    database) so a forged token cannot spend someone else's budget; the
    claims are handed on to the auth dependency in the request state.
    """

    # Stripe's webhooks come from a few addresses, in bursts after an
    # outage; each is authenticated by its signature (checked in the route).
    EXEMPT = frozenset({"/live", "/ready", "/api/v1/webhooks/stripe"})
    # Listener paths are not API calls: an HLS player fetches a playlist and
    # a segment every few seconds and many listeners share one address (NAT,
    # a CDN edge), so a per-address API budget would cut them off. Icecast
    # limits listeners by connection count, not by request rate; here the
    # streamer's hub bounds what one MP3 listener can hold.
    LISTENER_PREFIXES = ("/hls/", "/stream.mp3", "/viz/")

    def __init__(self, app: ASGIApp, *, context: Callable[[], AppContext]) -> None:
        self.app = app
        self.context = context

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if (
            scope["type"] != "http"
            or path in self.EXEMPT
            or path.startswith(self.LISTENER_PREFIXES)
        ):
            await self.app(scope, receive, send)
            return
        ctx = self.context()
        limiter, limits = ctx.limiter, ctx.limits
        buckets: list[tuple[Any, str, str]] = [(limits.ip, "ip", client_identity(scope))]
        credential = read_credential(
            {"x-api-key": raw_header(scope, b"x-api-key"),
             "authorization": raw_header(scope, b"authorization")}
        )  # fmt: skip
        if credential is not None:
            if credential.kind == "api_key":
                buckets.append((limits.principal, "principal", credential.rate_identity()))
            else:
                state = scope.setdefault("state", {})
                try:
                    claims = ctx.tokens.decode(credential.value, expected="access")
                    state["access_claims"] = claims
                    buckets.append((limits.principal, "principal", "user:" + claims.sub))
                except InvalidTokenError as exc:
                    state["access_error"] = exc
        verdicts = [await limiter.hit(item, kind, ident) for item, kind, ident in buckets]
        # Report the refused bucket if any, else the most specific one.
        index = next(
            (i for i, v in enumerate(verdicts) if v is not None and not v.allowed), len(buckets) - 1
        )
        verdict = verdicts[index]
        if verdict is not None and not verdict.allowed:
            await self._refuse(verdict, buckets[index][1], send)
            return
        if verdict is None:
            await self.app(scope, receive, send)
            return
        extra = [(k.lower().encode(), v.encode()) for k, v in verdict.headers().items()]

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                raw = message.setdefault("headers", [])
                # A route that refused on a stricter limit (login) set its own.
                if not any(name == b"retry-after" for name, _ in raw):
                    message["headers"] = [*raw, *extra]
            await send(message)

        await self.app(scope, receive, send_wrapper)

    @staticmethod
    async def _refuse(verdict: Verdict, kind: str, send: Send) -> None:
        who = "this address" if kind == "ip" else "this account or key"
        message = f"too many requests from {who}; retry in {verdict.retry_after_s} s"
        headers = [(b"content-type", b"application/json")]
        headers += [(k.lower().encode(), v.encode()) for k, v in verdict.headers().items()]
        await send({"type": "http.response.start", "status": 429, "headers": headers})
        await send(
            {
                "type": "http.response.body",
                "body": error_body(429, "rate_limited", message, request_id_var.get()),
            }
        )
