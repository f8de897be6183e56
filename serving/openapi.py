"""The OpenAPI document: tags, and one error schema for every error status
(FastAPI documents 422 with its own shape; ours is ``ErrorBody``)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

TAGS = [
    {"name": "auth", "description": "Accounts, login, token refresh and logout."},
    {"name": "users", "description": "Accounts, for moderators and admins."},
    {"name": "api keys", "description": "Keys for scripts and integrations, shown once."},
    {"name": "stream", "description": "Now playing, listeners, control and the queue."},
    {"name": "votes", "description": "Stars and thumbs, and the charts they make."},
    {"name": "tracks", "description": "Tracks from the lakehouse, and their audio."},
    {"name": "sharing", "description": "Share codes and links for social networks."},
    {
        "name": "recommendations",
        "description": "For you, like this track, and trending; each with why.",
    },
    {"name": "pipeline", "description": "Generation runs in Dagster and benchmark figures."},
    {"name": "billing", "description": "Plans, credit packs, Stripe Checkout and webhooks."},
    {"name": "requests", "description": "Listeners' track requests, from prompt to air."},
    {"name": "health", "description": "Health, readiness and liveness."},
]

ERROR_REF = {"$ref": "#/components/schemas/ErrorBody"}
COMMON = {
    "429": "Rate limited; see Retry-After and X-RateLimit-*",
    "500": "Unexpected error (no details are exposed; quote the request id)",
}


def custom_openapi(app: FastAPI) -> dict[str, Any]:
    schema = get_openapi(
        title=app.title,
        version=app.version,
        description=app.description,
        routes=app.routes,
        tags=app.openapi_tags,
    )
    for path_item in schema.get("paths", {}).values():
        for operation in path_item.values():
            responses = operation.setdefault("responses", {})
            if "422" in responses:
                responses["422"] = {
                    "description": "Invalid input; details name each invalid field",
                    "content": {"application/json": {"schema": ERROR_REF}},
                }
            if "requestBody" in operation:
                responses.setdefault(
                    "400",
                    {
                        "description": "The body could not be parsed (not JSON, not UTF-8)",
                        "content": {"application/json": {"schema": ERROR_REF}},
                    },
                )
            for status, description in COMMON.items():
                responses.setdefault(
                    status,
                    {
                        "description": description,
                        "content": {"application/json": {"schema": ERROR_REF}},
                    },
                )
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        components.pop(name, None)
    return schema
