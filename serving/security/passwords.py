"""Password hashing (bcrypt) and the strength policy.

bcrypt reads at most 72 bytes, so passwords are pre-hashed with SHA-256
(base64, no NUL bytes) first: long passphrases keep all their entropy and
never hit bcrypt 5's length error.
"""

from __future__ import annotations

import base64
import hashlib
import string

import bcrypt

from serving.exceptions import PasswordPolicyError

MIN_LENGTH = 10
PASSPHRASE_LENGTH = 16
MAX_LENGTH = 256

# The most common leaked passwords that pass the length rule; a short list
# is cheap to check and stops the guesses attackers try first.
COMMON = frozenset(
    {
        "password123", "password1234", "qwertyuiop", "1234567890", "123456789a",
        "iloveyou123", "qwerty12345", "abcdefghij", "letmein1234", "welcome123",
        "passw0rd123", "p@ssw0rd123", "administrator", "sonicforge1", "0987654321",
    }
)  # fmt: skip

_CLASSES = (
    ("lowercase letters", set(string.ascii_lowercase)),
    ("uppercase letters", set(string.ascii_uppercase)),
    ("digits", set(string.digits)),
)


def _prehash(password: str) -> bytes:
    return base64.b64encode(hashlib.sha256(password.encode()).digest())


def hash_password(password: str, *, rounds: int) -> str:
    return bcrypt.hashpw(_prehash(password), bcrypt.gensalt(rounds=rounds)).decode()


def verify_password(password: str, password_hash: str) -> bool:
    try:
        return bcrypt.checkpw(_prehash(password), password_hash.encode())
    except ValueError:  # a malformed stored hash never matches
        return False


def dummy_hash(rounds: int) -> str:
    """A hash to check against when the account does not exist, so a login
    for an unknown address takes as long as one for a known address."""
    return hash_password("not-a-real-password", rounds=rounds)


def check_password_policy(password: str, *, email: str | None = None) -> None:
    """Raise ``PasswordPolicyError`` naming every rule the password breaks."""
    problems: list[str] = []
    if len(password) < MIN_LENGTH:
        problems.append(f"it has {len(password)} characters; at least {MIN_LENGTH} are needed")
    if len(password) > MAX_LENGTH:
        problems.append(f"it has {len(password)} characters; at most {MAX_LENGTH} are allowed")
    if len(password) < PASSPHRASE_LENGTH:
        kinds = [name for name, chars in _CLASSES if chars & set(password)]
        if any(not c.isalnum() for c in password):
            kinds.append("symbols")
        if len(kinds) < 3:
            problems.append(
                "it mixes only "
                + (", ".join(kinds) or "nothing")
                + "; use three of lowercase, uppercase, digits and symbols"
                f" (or a passphrase of {PASSPHRASE_LENGTH}+ characters)"
            )
    lowered = password.lower()
    if lowered in COMMON or len(set(lowered)) <= 2:
        problems.append("it is a commonly used password")
    local = (email or "").split("@", 1)[0].lower()
    if len(local) >= 4 and local in lowered:
        problems.append("it contains the name part of your email address")
    if problems:
        raise PasswordPolicyError("password is too weak: " + "; ".join(problems))
