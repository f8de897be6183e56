"""The serving package's exceptions; each maps to one HTTP status and one
stable error code in the uniform error body (``serving.errors``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sonicforge.errors import SonicForgeError


class ServingError(SonicForgeError):
    """Base class: ``message`` is shown to the client, so it names the problem
    and what is allowed, and never carries internals."""

    status_code = 500
    code = "internal_error"

    def __init__(
        self,
        message: str,
        *,
        headers: Mapping[str, str] | None = None,
        details: Sequence[Mapping[str, Any]] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.headers = dict(headers or {})
        self.details = list(details or [])


class BadRequestError(ServingError):
    status_code = 400
    code = "bad_request"


class AuthenticationError(ServingError):
    """No credentials, or credentials that do not identify anyone."""

    status_code = 401
    code = "not_authenticated"

    def __init__(self, message: str, **kwargs: Any) -> None:
        kwargs.setdefault("headers", {"WWW-Authenticate": "Bearer"})
        super().__init__(message, **kwargs)


class InvalidTokenError(AuthenticationError):
    code = "invalid_token"


class InvalidCredentialsError(AuthenticationError):
    code = "invalid_credentials"


class PermissionDeniedError(ServingError):
    status_code = 403
    code = "forbidden"


class NotFoundError(ServingError):
    status_code = 404
    code = "not_found"


class ConflictError(ServingError):
    status_code = 409
    code = "conflict"


class RangeNotSatisfiableError(ServingError):
    status_code = 416
    code = "range_not_satisfiable"


class PasswordPolicyError(ServingError):
    status_code = 422
    code = "weak_password"


class RateLimitedError(ServingError):
    status_code = 429
    code = "rate_limited"


class UpstreamError(ServingError):
    """A service the API depends on (Dagster, the lakehouse) failed."""

    status_code = 502
    code = "upstream_error"


class UnavailableError(ServingError):
    status_code = 503
    code = "unavailable"
