"""API keys: created and revoked by their owner, resolved on each request."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from serving.db.models import ApiKey, User
from serving.db.types import utcnow
from serving.exceptions import InvalidTokenError, NotFoundError, PermissionDeniedError
from serving.schemas.apikeys import ApiKeyCreate
from serving.security.apikeys import generate_key, hash_key
from serving.security.credentials import Principal
from serving.security.permissions import Permission, permissions_for

# last_used_at is a hint, not an audit log: writing it at most once a minute
# keeps a busy key from turning every read into a write.
LAST_USED_RESOLUTION = timedelta(seconds=60)
MAX_KEYS_PER_USER = 50


def create_key(session: Session, principal: Principal, data: ApiKeyCreate) -> tuple[ApiKey, str]:
    """A new key for the caller; returns the row and the key (shown once)."""
    if principal.auth != "jwt":
        # A leaked key must not be able to mint more keys.
        raise PermissionDeniedError("API keys are created with a login session, not with a key")
    beyond = sorted(set(data.scopes) - principal.permissions)
    if beyond:
        raise PermissionDeniedError(
            f"scopes beyond your role ({principal.role}): {', '.join(beyond)}; "
            f"allowed: {', '.join(sorted(principal.permissions))}"
        )
    active = session.scalars(
        select(ApiKey.id).where(ApiKey.user_id == principal.user_id, ApiKey.revoked_at.is_(None))
    ).all()
    if len(active) >= MAX_KEYS_PER_USER:
        raise PermissionDeniedError(f"at most {MAX_KEYS_PER_USER} active keys per account")
    new = generate_key()
    row = ApiKey(
        user_id=principal.user_id,
        name=data.name.strip(),
        prefix=new.prefix,
        key_hash=new.key_hash,
        scopes=sorted(set(data.scopes)),
        expires_at=utcnow() + timedelta(days=data.expires_in_days)
        if data.expires_in_days
        else None,
    )
    session.add(row)
    session.commit()
    return row, new.key


def list_keys(session: Session, user_id: str) -> list[ApiKey]:
    return list(
        session.scalars(
            select(ApiKey).where(ApiKey.user_id == user_id).order_by(ApiKey.created_at.desc())
        )
    )


def get_key(session: Session, user_id: str, key_id: str) -> ApiKey:
    """The caller's key; another user's key is "not found", not "forbidden",
    so ids cannot be probed."""
    row = session.get(ApiKey, key_id)
    if row is None or row.user_id != user_id:
        raise NotFoundError(f"no API key {key_id!r} among yours")
    return row


def revoke_key(session: Session, user_id: str, key_id: str) -> ApiKey:
    row = get_key(session, user_id, key_id)
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        session.commit()
    return row


def principal_from_key(session: Session, key: str) -> Principal:
    now = utcnow()
    found = session.execute(
        select(ApiKey, User.role, User.is_active)
        .join(User, User.id == ApiKey.user_id)
        .where(ApiKey.key_hash == hash_key(key))
    ).one_or_none()
    if found is None:
        raise InvalidTokenError("unknown API key")
    row, role, is_active = found
    if row.revoked_at is not None:
        raise InvalidTokenError("this API key was revoked")
    if row.expires_at is not None and row.expires_at <= now:
        raise InvalidTokenError("this API key has expired")
    if not is_active:
        raise InvalidTokenError("the account owning this API key is disabled")
    if row.last_used_at is None or now - row.last_used_at >= LAST_USED_RESOLUTION:
        session.execute(update(ApiKey).where(ApiKey.id == row.id).values(last_used_at=now))
        session.commit()
    scopes = frozenset(Permission(s) for s in row.scopes if s in Permission._value2member_map_)
    return Principal(
        user_id=row.user_id,
        role=role,
        permissions=scopes & permissions_for(role),
        auth="api_key",
        api_key_id=row.id,
        scopes=scopes,
    )
