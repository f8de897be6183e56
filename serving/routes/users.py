"""Accounts, for moderators (read) and admins (roles, disabling)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Query
from sqlalchemy import func, select

from serving.db.models import User
from serving.db.types import utcnow
from serving.deps import ContextDep, RequirePermission, SessionDep
from serving.exceptions import ConflictError, NotFoundError
from serving.routing import ResourceRouter
from serving.schemas.auth import UserPublic, UserUpdate
from serving.schemas.common import Page, error_responses
from serving.security.credentials import Principal
from serving.security.permissions import Permission, Role

router = ResourceRouter(prefix="/users", tags=["users"])

UserId = Annotated[
    str, Path(pattern=r"^[0-9a-f-]{36}$", examples=["0192f5a0-6c1e-7b3a-9d5e-2f4a1c3b5d6e"])
]


@router.get(
    "",
    response_model=Page[UserPublic],
    responses=error_responses(401, 403, 422, 429),
    summary="List accounts",
)
def read_users(
    _: Annotated[Principal, RequirePermission(Permission.USERS_READ)],
    session: SessionDep,
    role: Role | None = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> Page[UserPublic]:
    stmt = select(User)
    count = select(func.count()).select_from(User)
    if role is not None:
        stmt, count = stmt.where(User.role == role.value), count.where(User.role == role.value)
    users = session.scalars(stmt.order_by(User.created_at, User.id).limit(limit).offset(offset))
    return Page[UserPublic](
        items=[UserPublic.model_validate(u) for u in users],
        total=session.scalar(count) or 0,
        limit=limit,
        offset=offset,
    )


@router.patch(
    "/{user_id}",
    response_model=UserPublic,
    responses=error_responses(401, 403, 404, 409, 422, 429),
    summary="Change an account's role or disable it",
)
def update_user(
    user_id: UserId,
    body: UserUpdate,
    principal: Annotated[Principal, RequirePermission(Permission.USERS_MANAGE)],
    session: SessionDep,
    ctx: ContextDep,
) -> UserPublic:
    user = session.get(User, user_id)
    if user is None:
        raise NotFoundError(f"no account {user_id!r}")
    if user.id == principal.user_id:
        # An admin locking themselves out would leave nobody to undo it.
        raise ConflictError("you cannot change your own role or disable your own account")
    if body.role is not None:
        user.role = body.role.value
    if body.is_active is not None:
        user.is_active = body.is_active
    user.updated_at = utcnow()
    session.commit()
    ctx.principals.clear()  # the change applies to this user's next request
    return UserPublic.model_validate(user)
