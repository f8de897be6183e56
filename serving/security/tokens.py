"""JWT access and refresh tokens.

The algorithm is pinned (HS256): a token whose header names another one,
``none`` included, is refused before its signature is looked at. Every
token must carry ``exp``, ``iat``, ``iss``, ``aud``, ``jti``, ``sub`` and our
``typ``; an access token presented as a refresh token (or the reverse) is
refused. ``sid`` names the refresh family (the login session), so logging
out or detecting refresh reuse ends the access tokens of that session too.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import jwt

from serving.exceptions import InvalidTokenError

ALGORITHM = "HS256"
REQUIRED = ["exp", "iat", "iss", "aud", "jti", "sub", "typ", "sid"]
# Clock skew tolerated between API replicas.
LEEWAY_S = 5
# Access tokens whose signature and claims this worker has verified, by
# their exact text; the oldest are forgotten past this many.
MAX_VERIFIED = 20_000

TokenType = Literal["access", "refresh"]
Clock = Callable[[], datetime]


@dataclass(frozen=True)
class Claims:
    sub: str
    sid: str
    jti: str
    typ: TokenType
    role: str | None
    exp: datetime
    iat: datetime


@dataclass(frozen=True)
class IssuedToken:
    token: str
    claims: Claims


def _now() -> datetime:
    return datetime.now(UTC)


class TokenService:
    def __init__(
        self,
        secret: str,
        *,
        issuer: str,
        audience: str,
        access_ttl_s: int,
        refresh_ttl_s: int,
        clock: Clock = _now,
    ) -> None:
        if len(secret) < 32:
            raise ValueError("the JWT secret must have at least 32 characters")
        self._secret = secret
        self.issuer = issuer
        self.audience = audience
        self.access_ttl_s = access_ttl_s
        self.refresh_ttl_s = refresh_ttl_s
        self._clock = clock
        self._verified: dict[str, Claims] = {}

    def issue(
        self, typ: TokenType, *, sub: str, sid: str, role: str | None = None, jti: str | None = None
    ) -> IssuedToken:
        now = self._clock().replace(microsecond=0)
        ttl = self.access_ttl_s if typ == "access" else self.refresh_ttl_s
        claims = Claims(
            sub=sub,
            sid=sid,
            jti=jti or str(uuid.uuid4()),
            typ=typ,
            role=role,
            exp=now + timedelta(seconds=ttl),
            iat=now,
        )
        payload: dict[str, Any] = {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": claims.sub,
            "sid": claims.sid,
            "jti": claims.jti,
            "typ": claims.typ,
            "iat": int(now.timestamp()),
            "exp": int(claims.exp.timestamp()),
        }
        if role is not None:
            payload["role"] = role
        return IssuedToken(jwt.encode(payload, self._secret, algorithm=ALGORITHM), claims)

    def decode(self, token: str, *, expected: TokenType) -> Claims:
        """The token's claims, or ``InvalidTokenError`` saying what is wrong.

        A client sends the same access token with every request for its 15
        minutes, and checking it in full (pyjwt's strict base64 checks, the
        HMAC, the claims) costs about a tenth of a millisecond. An access
        token verified once is remembered by its exact text, so a changed
        byte is a different token checked in full, and only its expiry is
        checked again. Revocation is not a property of the token: the
        caller's session is looked up separately (``AuthService``).
        """
        known = self._verified.get(token)
        if known is not None:
            if known.typ != expected:
                raise InvalidTokenError(_wrong_type(known.typ, expected))
            if known.exp.timestamp() <= time.time() - LEEWAY_S:  # as pyjwt decides
                self._verified.pop(token, None)
                raise InvalidTokenError(f"the {expected} token has expired")
            return known
        claims = self._verify(token, expected)
        if claims.typ == "access":
            if len(self._verified) >= MAX_VERIFIED:
                # Dicts keep insertion order: drop the oldest tenth.
                for old in list(self._verified)[: MAX_VERIFIED // 10]:
                    self._verified.pop(old, None)
            self._verified[token] = claims
        return claims

    def _verify(self, token: str, expected: TokenType) -> Claims:
        try:
            # ``algorithms`` pins HS256: any other header alg, "none" included,
            # is refused before the signature is checked.
            payload = jwt.decode(
                token,
                self._secret,
                algorithms=[ALGORITHM],
                audience=self.audience,
                issuer=self.issuer,
                leeway=LEEWAY_S,
                options={"require": REQUIRED, "verify_iat": True},
            )
        except (jwt.InvalidAlgorithmError, jwt.DecodeError) as exc:
            raise InvalidTokenError(_malformed(token, exc)) from None
        except jwt.ExpiredSignatureError:
            raise InvalidTokenError(f"the {expected} token has expired") from None
        except jwt.InvalidAudienceError:
            raise InvalidTokenError("the token is for another audience") from None
        except jwt.InvalidIssuerError:
            raise InvalidTokenError("the token is from another issuer") from None
        except jwt.MissingRequiredClaimError as exc:
            raise InvalidTokenError(f"the token lacks the {exc.claim!r} claim") from None
        except jwt.PyJWTError:
            raise InvalidTokenError("the token's signature or claims are invalid") from None
        if payload.get("typ") != expected:
            raise InvalidTokenError(_wrong_type(payload.get("typ"), expected))
        iat = datetime.fromtimestamp(payload["iat"], UTC)
        if iat > self._clock() + timedelta(seconds=LEEWAY_S):
            raise InvalidTokenError("the token was issued in the future")
        return Claims(
            sub=str(payload["sub"]),
            sid=str(payload["sid"]),
            jti=str(payload["jti"]),
            typ=expected,
            role=payload.get("role"),
            exp=datetime.fromtimestamp(payload["exp"], UTC),
            iat=iat,
        )


def _wrong_type(given: object, expected: TokenType) -> str:
    def named(typ: object) -> str:
        return f"an {typ} token" if str(typ)[:1] in ("a", "e", "i", "o", "u") else f"a {typ} token"

    return f"{named(given)} was given where {named(expected)} is needed"


def _malformed(token: str, exc: Exception) -> str:
    """Say which algorithm was refused, or that the token is not a JWT."""
    try:
        alg = jwt.get_unverified_header(token).get("alg")
    except jwt.PyJWTError:
        return "the token is not a well-formed JWT"
    if alg != ALGORITHM:
        return f"token algorithm {alg!r} is not accepted"
    return "the token's signature or claims are invalid"
