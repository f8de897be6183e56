"""Accounts, logins and sessions (refresh-token families)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import NoReturn

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from serving.db.models import RefreshFamily, User
from serving.db.types import utcnow
from serving.exceptions import (
    InvalidCredentialsError,
    InvalidTokenError,
    PermissionDeniedError,
)
from serving.schemas.auth import TokenPair, UserCreate
from serving.security.credentials import Principal
from serving.security.passwords import (
    check_password_policy,
    dummy_hash,
    hash_password,
    verify_password,
)
from serving.security.permissions import permissions_for
from serving.security.tokens import Claims, TokenService
from serving.services.outbox import record_event


@dataclass(frozen=True)
class ClientInfo:
    ip: str | None
    user_agent: str | None


class AuthService:
    def __init__(self, tokens: TokenService, *, bcrypt_rounds: int) -> None:
        self.tokens = tokens
        self.bcrypt_rounds = bcrypt_rounds
        self._dummy = dummy_hash(bcrypt_rounds)

    # -- accounts ---------------------------------------------------------
    def register(self, session: Session, data: UserCreate) -> User | None:
        """The new account, or ``None`` if the address already has one.

        Both ways cost the same (the password is hashed either way) and the
        route answers both alike, so neither the answer nor its timing tells
        whether an address is registered."""
        email = data.email.lower()
        check_password_policy(data.password, email=email)
        user = User(
            email=email,
            display_name=data.display_name,
            password_hash=hash_password(data.password, rounds=self.bcrypt_rounds),
        )
        session.add(user)
        try:
            session.flush()
        except IntegrityError:  # the address has an account: left as it was
            session.rollback()
            return None
        record_event(session, "user_registered", user_id=user.id)
        session.commit()
        return user

    # -- sessions ---------------------------------------------------------
    def check_password(self, session: Session, email: str, password: str) -> User | None:
        """The user if ``password`` is theirs; the same work is done for an
        unknown email so timing does not tell which accounts exist."""
        user = session.scalar(select(User).where(User.email == email.lower()))
        ok = verify_password(password, user.password_hash if user else self._dummy)
        return user if ok and user is not None else None

    def login(self, session: Session, user: User, client: ClientInfo) -> TokenPair:
        if not user.is_active:
            raise PermissionDeniedError("this account is disabled")
        family = RefreshFamily(
            user_id=user.id,
            current_jti=str(uuid.uuid4()),
            user_agent=_printable(client.user_agent or "")[:256] or None,
            ip=client.ip,
        )
        session.add(family)
        record_event(session, "user_logged_in", user_id=user.id)
        session.commit()
        return self._pair(user, family.id, family.current_jti)

    def _pair(self, user: User, family_id: str, refresh_jti: str) -> TokenPair:
        access = self.tokens.issue("access", sub=user.id, sid=family_id, role=user.role)
        refresh = self.tokens.issue("refresh", sub=user.id, sid=family_id, jti=refresh_jti)
        return TokenPair(
            access_token=access.token,
            refresh_token=refresh.token,
            expires_in=self.tokens.access_ttl_s,
            refresh_expires_in=self.tokens.refresh_ttl_s,
        )

    def refresh(self, session: Session, token: str) -> TokenPair:
        """Exchange a refresh token for a new pair; the old one is spent.

        The swap is one conditional UPDATE, so two concurrent uses of the
        same token cannot both win. Presenting a spent token revokes the
        family: either the client or a thief holds a copy, and we cannot
        tell which.
        """
        claims = self.tokens.decode(token, expected="refresh")
        new_jti = str(uuid.uuid4())
        now = utcnow()
        swapped = session.execute(
            update(RefreshFamily)
            .where(
                RefreshFamily.id == claims.sid,
                RefreshFamily.user_id == claims.sub,
                RefreshFamily.current_jti == claims.jti,
                RefreshFamily.revoked_at.is_(None),
            )
            .values(current_jti=new_jti, last_used_at=now, rotations=RefreshFamily.rotations + 1)
        )
        if swapped.rowcount != 1:  # type: ignore[attr-defined]
            session.rollback()
            self._refuse_refresh(session, claims)
        user = session.get(User, claims.sub)
        if user is None or not user.is_active:
            session.rollback()
            raise InvalidTokenError("the account of this session is disabled")
        session.commit()
        return self._pair(user, claims.sid, new_jti)

    def _refuse_refresh(self, session: Session, claims: Claims) -> NoReturn:
        family = session.get(RefreshFamily, claims.sid)
        if family is None or family.user_id != claims.sub:
            raise InvalidTokenError("the refresh token belongs to no session")
        if family.revoked_at is not None:
            raise InvalidTokenError(f"the session was revoked ({family.revoked_reason})")
        family.revoked_at = utcnow()
        family.revoked_reason = "reuse"
        record_event(
            session, "refresh_reuse_detected", user_id=family.user_id, properties={"sid": family.id}
        )
        session.commit()
        raise InvalidTokenError(
            "this refresh token was already used; the session has been revoked, log in again"
        )

    def logout(self, session: Session, principal: Principal) -> bool:
        if principal.session_id is None:
            return False
        result = session.execute(
            update(RefreshFamily)
            .where(RefreshFamily.id == principal.session_id, RefreshFamily.revoked_at.is_(None))
            .values(revoked_at=utcnow(), revoked_reason="logout")
        )
        session.commit()
        return bool(result.rowcount)  # type: ignore[attr-defined]

    # -- resolving access tokens -----------------------------------------
    def principal_from_claims(self, session: Session, claims: Claims) -> Principal:
        """Check the session and account behind a valid access token: one
        indexed query, so logout, reuse detection, disabling an account and
        role changes take effect on the very next request."""
        row = session.execute(
            select(User.role, User.is_active, RefreshFamily.revoked_at)
            .join(RefreshFamily, RefreshFamily.user_id == User.id)
            .where(RefreshFamily.id == claims.sid, User.id == claims.sub)
        ).one_or_none()
        if row is None:
            raise InvalidTokenError("the token's session does not exist")
        role, is_active, revoked_at = row
        if revoked_at is not None:
            raise InvalidTokenError("the token's session was revoked; log in again")
        if not is_active:
            raise InvalidTokenError("this account is disabled")
        return Principal(
            user_id=claims.sub,
            role=role,
            permissions=permissions_for(role),
            auth="jwt",
            session_id=claims.sid,
        )


def _printable(text: str) -> str:
    # Headers arrive as latin-1: C1 control characters can be among them.
    return "".join(c for c in text if c.isprintable())


def credentials_error() -> InvalidCredentialsError:
    return InvalidCredentialsError("the email or the password is wrong")
