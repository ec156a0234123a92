"""Console passwords (issue 18): argon2id hashes through argon2-cffi, the only importer of argon2.
The store keeps the hash; nothing keeps a password.

``verify_user`` takes about as long for a name nobody has (it verifies against a dummy hash of
the same parameters) as for a wrong password, so a login's timing does not tell which names
exist."""

from __future__ import annotations

import functools
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

_HASHER = PasswordHasher()  # argon2id, the library's current RFC 9106 low-memory profile


def hash_password(pw: str) -> str:
    return _HASHER.hash(pw)


def verify(hashed: str, pw: str) -> bool:
    """Whether ``pw`` is the password of ``hashed``; False too for a malformed hash (never raises)."""
    try:
        return _HASHER.verify(hashed, pw)
    except (VerifyMismatchError, VerificationError, InvalidHashError, TypeError, ValueError):
        return False


def needs_rehash(hashed: str) -> bool:
    """Whether a hash was made with other parameters than today's (or is malformed): hash the
    password again after a successful login."""
    try:
        return _HASHER.check_needs_rehash(hashed)
    except (InvalidHashError, TypeError, ValueError):
        return True


@functools.cache
def _dummy() -> str:
    return _HASHER.hash("not a password anybody has")


def verify_user(row: dict[str, Any] | None, pw: str) -> bool:
    """A login check on ``store.user(name)``'s row: False for an unknown user after the same work
    as for a known one (a verification against a dummy hash)."""
    if row is None:
        verify(_dummy(), pw)
        return False
    return verify(str(row.get("password_hash") or ""), pw)
