"""API keys: random, shown once, stored as SHA-256.

A key carries 256 random bits, so a fast hash is enough to make the stored
value useless to a thief (bcrypt's slowness protects low-entropy secrets and
would cost milliseconds on every request).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

KEY_PREFIX = "sfk_"
SHOWN_PREFIX_LENGTH = 12


@dataclass(frozen=True)
class NewKey:
    key: str
    prefix: str
    key_hash: str


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def generate_key() -> NewKey:
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    return NewKey(key=key, prefix=key[:SHOWN_PREFIX_LENGTH], key_hash=hash_key(key))


def looks_like_key(token: str) -> bool:
    return token.startswith(KEY_PREFIX)
