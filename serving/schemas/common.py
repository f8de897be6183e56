"""Schemas shared by every resource: the error body, pages, id patterns."""

from __future__ import annotations

from typing import Annotated, Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field

T = TypeVar("T")

# Track ids are content hashes or similar stable strings; the pattern keeps
# anything odd (paths, quotes, control characters) out of lookups and logs.
TRACK_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$"
TrackId = Annotated[
    str, Field(pattern=TRACK_ID_PATTERN, max_length=64, examples=["t-3f9a2c1be07d4e11"])
]
GENRE_PATTERN = r"^[a-z0-9_]{1,64}$"


class Schema(BaseModel):
    model_config = ConfigDict(from_attributes=True, extra="forbid")


class ErrorIssue(BaseModel):
    """One problem with the request, e.g. one invalid field."""

    loc: list[str | int] = Field(examples=[["body", "stars"]])
    msg: str = Field(examples=["Input should be less than or equal to 5"])
    type: str = Field(examples=["less_than_equal"])


class ErrorDetail(BaseModel):
    code: str = Field(description="Stable machine-readable code.", examples=["not_found"])
    message: str = Field(examples=["no track 't-0000' in the lakehouse"])
    request_id: str | None = Field(
        default=None, description="Quote it when reporting a problem.", examples=["5f0c2a9d"]
    )
    details: list[ErrorIssue] = Field(default_factory=list)


class ErrorBody(BaseModel):
    """The body of every error response."""

    error: ErrorDetail


class Page(BaseModel, Generic[T]):
    items: list[T]
    total: int = Field(ge=0, examples=[42])
    limit: int = Field(ge=1, examples=[20])
    offset: int = Field(ge=0, examples=[0])


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for the error statuses a route can answer."""
    descriptions = {
        400: "Bad request",
        401: "Missing, invalid or expired credentials",
        403: "The caller lacks the permission this route needs",
        404: "Not found",
        409: "Conflict",
        416: "Range not satisfiable",
        422: "Invalid input",
        429: "Rate limited (see Retry-After)",
        502: "A service the API depends on failed",
        503: "A dependency is unavailable",
    }
    return {c: {"model": ErrorBody, "description": descriptions[c]} for c in codes}
