"""API keys of the caller: create (shown once), list, read, revoke."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, status

from serving.deps import ContextDep, RequirePermission, SessionDep
from serving.routing import ResourceRouter
from serving.schemas.apikeys import ApiKeyCreate, ApiKeyCreated, ApiKeyPublic
from serving.schemas.common import error_responses
from serving.security.credentials import Principal
from serving.security.permissions import Permission
from serving.services import apikeys

router = ResourceRouter(prefix="/api-keys", tags=["api keys"])

KeyOwner = Annotated[Principal, RequirePermission(Permission.KEYS_MANAGE)]
KeyId = Annotated[str, Path(pattern=r"^[0-9a-f-]{36}$")]


@router.post(
    "",
    response_model=ApiKeyCreated,
    status_code=status.HTTP_201_CREATED,
    responses=error_responses(401, 403, 422, 429),
    summary="Create an API key (the key is shown only in this response)",
)
def create_api_key(body: ApiKeyCreate, principal: KeyOwner, session: SessionDep) -> ApiKeyCreated:
    row, key = apikeys.create_key(session, principal, body)
    return ApiKeyCreated(**ApiKeyPublic.model_validate(row).model_dump(), key=key)


@router.get(
    "",
    response_model=list[ApiKeyPublic],
    responses=error_responses(401, 403, 429),
    summary="List your API keys",
)
def read_api_keys(principal: KeyOwner, session: SessionDep) -> list[ApiKeyPublic]:
    return [ApiKeyPublic.model_validate(k) for k in apikeys.list_keys(session, principal.user_id)]


@router.get(
    "/{key_id}",
    response_model=ApiKeyPublic,
    responses=error_responses(401, 403, 404, 422, 429),
    summary="Read one of your API keys",
)
def read_api_key(key_id: KeyId, principal: KeyOwner, session: SessionDep) -> ApiKeyPublic:
    return ApiKeyPublic.model_validate(apikeys.get_key(session, principal.user_id, key_id))


@router.delete(
    "/{key_id}",
    response_model=ApiKeyPublic,
    responses=error_responses(401, 403, 404, 422, 429),
    summary="Revoke one of your API keys",
)
def revoke_api_key(
    key_id: KeyId, principal: KeyOwner, session: SessionDep, ctx: ContextDep
) -> ApiKeyPublic:
    row = apikeys.revoke_key(session, principal.user_id, key_id)
    ctx.principals.clear()  # refused from the next request on
    return ApiKeyPublic.model_validate(row)
