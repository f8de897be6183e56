"""Exception handlers: every error leaves the API as the same JSON body
(``ErrorBody``) with a stable code, a message and the request id."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from serving.exceptions import ServingError
from serving.logs import request_id_var
from sonicforge.errors import (
    QueueEntryNotFoundError,
    SonicForgeError,
    StationStateError,
    UnknownCommandError,
)

log = logging.getLogger("serving.errors")

HTTP_CODES = {
    400: "bad_request",
    401: "not_authenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
    416: "range_not_satisfiable",
    429: "rate_limited",
    500: "internal_error",
    502: "upstream_error",
    503: "unavailable",
    504: "upstream_timeout",
}


def error_response(
    status: int,
    code: str,
    message: str,
    *,
    details: Sequence[Mapping[str, Any]] = (),
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body = {
        "error": {
            "code": code,
            "message": message,
            "request_id": request_id_var.get(),
            "details": list(details),
        }
    }
    return JSONResponse(body, status_code=status, headers=headers)


def _issues(exc: RequestValidationError) -> list[dict[str, Any]]:
    # ``input`` and ``ctx`` are left out: they can echo a password back.
    return [
        {
            "loc": [p for p in e.get("loc", ()) if isinstance(p, (str, int))],
            "msg": e.get("msg", ""),
            "type": e.get("type", ""),
        }
        for e in exc.errors()
    ]


async def _serving_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ServingError)
    return error_response(
        exc.status_code, exc.code, exc.message, details=exc.details, headers=exc.headers or None
    )


async def _validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    issues = _issues(exc)
    first = issues[0] if issues else {"loc": [], "msg": "invalid request"}
    where = ".".join(str(p) for p in first["loc"]) or "request"
    message = f"{where}: {first['msg']}"
    if len(issues) > 1:
        message += f" (and {len(issues) - 1} more problem{'s' if len(issues) > 2 else ''})"
    return error_response(422, "invalid_request", message, details=issues)


def _path_templates(request: Request) -> list[tuple[int, re.Pattern[str], list[str]]]:
    """The documented paths as ``(parameters, pattern, methods)``, once per app."""
    state = request.app.state
    cached: list[tuple[int, re.Pattern[str], list[str]]] | None = getattr(
        state, "path_templates", None
    )
    if cached is None:
        cached = []
        for template, item in request.app.openapi().get("paths", {}).items():
            parts = re.split(r"(\{[^}]+\})", template)
            pattern = "".join("[^/]+" if p.startswith("{") else re.escape(p) for p in parts)
            methods = sorted(m.upper() for m in item if m.upper() in _METHODS)
            if "GET" in methods:
                methods = sorted({*methods, "HEAD"})
            cached.append((template.count("{"), re.compile(pattern + "$"), methods))
        cached.sort(key=lambda t: t[0])
        state.path_templates = cached
    return cached


_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"})


def allowed_methods(request: Request) -> str | None:
    """The methods of the documented path that ``request.url.path`` names.

    The router reports the methods of the first route whose pattern the path
    fits, which for ``/stream/queue/order`` is ``/stream/queue/{entry_id}``
    (DELETE); a path written out beats one with parameters."""
    path = request.url.path
    for _, pattern, methods in _path_templates(request):
        if pattern.match(path):
            return ", ".join(methods)
    return None


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = HTTP_CODES.get(exc.status_code, "error")
    message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
    headers = dict(getattr(exc, "headers", None) or {})
    if exc.status_code == 404 and message == "Not Found":
        message = "no such endpoint; see /docs for the API"
    if exc.status_code == 405:
        allow = allowed_methods(request) or headers.get("Allow")
        if allow:
            headers["Allow"] = allow
            message = f"{request.method} is not allowed here; allowed: {allow}"
    return error_response(exc.status_code, code, message, headers=headers or None)


async def _station_error(_request: Request, exc: Exception) -> JSONResponse:
    if isinstance(exc, QueueEntryNotFoundError):
        return error_response(404, "not_found", str(exc))
    if isinstance(exc, UnknownCommandError):
        return error_response(422, "invalid_request", str(exc))
    return error_response(409, "conflict", str(exc))


async def _core_error(_request: Request, exc: Exception) -> JSONResponse:
    # Core errors say what failed in the lakehouse or storage; the client
    # gets a plain 503, the log gets the details.
    log.error("core error", exc_info=exc)
    return error_response(503, "unavailable", "a data store the API needs failed; try again")


async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
    log.error("unhandled error", exc_info=exc)
    return error_response(
        500,
        "internal_error",
        "an unexpected error occurred; quote the request id when reporting it",
    )


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ServingError, _serving_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(StationStateError, _station_error)
    app.add_exception_handler(SonicForgeError, _core_error)
    app.add_exception_handler(Exception, _unexpected)
