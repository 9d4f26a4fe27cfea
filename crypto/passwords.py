"""Staff password hashes (Argon2id, PHC strings) and a server-side strength check."""

from __future__ import annotations

import secrets
import string

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from crypto.params import Argon2Params

MIN_LENGTH = 12
MAX_LENGTH = 256
_COMMON = frozenset(
    {
        "password1234",
        "123456789012",
        "qwertyuiop12",
        "administrator",
        "passw0rd1234",
        "iloveyou1234",
        "welcome12345",
        "abc123456789",
        "1qaz2wsx3edc",
        "woaini1314520",
    }
)


def _hasher(params: Argon2Params) -> PasswordHasher:
    return PasswordHasher(
        time_cost=params.iterations, memory_cost=params.memory_kib, parallelism=params.lanes
    )


def hash_password(password: str, params: Argon2Params) -> str:
    return _hasher(params).hash(password)


ARGON2ID_PREFIX = "$argon2id$"


def verify_password(stored: str, password: str, params: Argon2Params) -> bool:
    """Constant work whether or not it matches; False on any mismatch or bad hash.

    Only Argon2id hashes are accepted (A4): argon2-cffi would also verify an ``$argon2i$`` or
    ``$argon2d$`` hash, so a hash of another scheme written into the column must not sign in.
    """
    if not stored.startswith(ARGON2ID_PREFIX):
        return False
    try:
        return _hasher(params).verify(stored, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def password_problems(password: str, *, username: str = "") -> list[str]:
    """Reasons a new password is refused (empty list: acceptable). Messages are msgids."""
    problems: list[str] = []
    if len(password) < MIN_LENGTH:
        problems.append("Use at least 12 characters.")
    if len(password) > MAX_LENGTH:
        problems.append("Use at most 256 characters.")
    low = password.lower()
    if low in _COMMON or len(set(password)) < 5:
        problems.append("This password is too easy to guess.")
    if username and username.lower() in low:
        problems.append("The password must not contain the user name.")
    return problems


def generate_password(length: int = 20) -> str:
    """A one-time password for new accounts (shown once, must be changed at first sign-in)."""
    alphabet = string.ascii_letters + string.digits
    while True:
        pw = "".join(secrets.choice(alphabet) for _ in range(length))
        if not password_problems(pw):
            return pw
