"""Schemas shared by every resource: the error body, pages, id patterns."""

from __future__ import annotations

import re
from typing import Annotated, Any, Generic, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from pydantic_core import PydanticCustomError

T = TypeVar("T")

# Track ids are content hashes or similar stable strings; the pattern keeps
# anything odd (paths, quotes, control characters) out of lookups and logs.
TRACK_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$"
TrackId = Annotated[
    str, Field(pattern=TRACK_ID_PATTERN, max_length=64, examples=["t-3f9a2c1be07d4e11"])
]
GENRE_PATTERN = r"^[a-z0-9_]{1,64}$"

# Free text (names, prompts) is stored and shown back, so characters that
# no one types and that break storage are refused: control characters
# (Unicode Cc: C0, DEL, C1 such as NUL or U+0085), which PostgreSQL refuses
# or logs and terminals interpret, and lone surrogates, which are not valid
# UTF-8. Leading and trailing whitespace is stripped, and what is left must
# not be empty. The same rule is the fields' ``pattern`` in the OpenAPI
# document, so a schema-driven client or fuzzer knows it.
_FORBIDDEN = r"\x00-\x1f\x7f-\x9f\ud800-\udfff"
# What str.strip() removes, beyond the control characters above.
_BLANK = r"\x20\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
TEXT_PATTERN = rf"^[^{_FORBIDDEN}]*[^{_FORBIDDEN}{_BLANK}][^{_FORBIDDEN}]*$"
PRINTABLE_PATTERN = rf"^[^{_FORBIDDEN}]*$"
_FORBIDDEN_CHAR = re.compile(rf"[{_FORBIDDEN}]")


def _forbidden_character(value: str) -> None:
    bad = _FORBIDDEN_CHAR.search(value)
    if bad is not None:
        raise PydanticCustomError(
            "control_character",
            "character U+{code} at position {position} is not allowed: text may not contain "
            "control characters (U+0000-U+001F, U+007F-U+009F) or lone surrogates",
            {"code": f"{ord(bad.group()):04X}", "position": bad.start()},
        )


def _clean_text(value: str) -> str:
    _forbidden_character(value)
    stripped = value.strip()
    if not stripped:
        raise PydanticCustomError(
            "blank_text", "must contain something besides whitespace (it is stripped)"
        )
    return stripped


def _printable(value: str) -> str:
    _forbidden_character(value)
    return value


# Free text: stripped, non-empty, no control characters; the length counts
# the text as sent. ``display_name: Name = Field(examples=["Ada"])``.
Name = Annotated[
    str,
    Field(min_length=1, max_length=80, json_schema_extra={"pattern": TEXT_PATTERN}),
    AfterValidator(_clean_text),
]
Prompt = Annotated[
    str,
    Field(min_length=1, max_length=500, json_schema_extra={"pattern": TEXT_PATTERN}),
    AfterValidator(_clean_text),
]
# Kept exactly as sent (tokens), but without control characters.
PRINTABLE = AfterValidator(_printable)


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
