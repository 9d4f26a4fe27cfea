"""Staff password hashes (peppered Argon2id) and a server-side strength check.

Stored hash, peppered form (written since issue 13)::

    $pepper1$<suite>$argon2id$v=19$m=...,t=...,p=...$<salt>$<hash>

    inner PHC string = Argon2id(HMAC_suite(hash key, UTF-8 of the password))
    hash key         = crypto.pepper.PasswordPepper.hash_key(suite): a keyring secret

``<suite>`` is ``aes256gcm`` (HMAC-SHA256) or ``sm4gcm`` (HMAC-SM3). Without the keyring, the
stored string cannot be tested against a single guess. The older form, a bare
``$argon2id$...`` PHC string of the password, is still verified (accounts that have not
signed in since), and :func:`hash_is_current` tells the caller to replace it.
"""

from __future__ import annotations

import re
import secrets
import string
import unicodedata

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from zxcvbn import zxcvbn
from zxcvbn.matching import spatial_match

from crypto.params import Argon2Params
from crypto.pepper import PasswordPepper
from crypto.suites import Suite, keyed_hash, suite_by_name

__all__ = [
    "ARGON2ID_PREFIX",
    "MAX_LENGTH",
    "MIN_LENGTH",
    "PEPPERED_PREFIX",
    "generate_password",
    "hash_is_current",
    "hash_password",
    "password_problems",
    "verify_password",
]

MIN_LENGTH = 12
MAX_LENGTH = 256
ARGON2ID_PREFIX = "$argon2id$"
PEPPERED_PREFIX = "$pepper1$"
_PEPPERED = re.compile(r"\$pepper1\$(aes256gcm|sm4gcm)(\$argon2id\$.*)", re.DOTALL)

# Reasons (msgids, translated by the web layer).
TOO_SHORT = "Use at least 12 characters."
TOO_LONG = "Use at most 256 characters."
TOO_EASY = "This password is too easy to guess."
HAS_USERNAME = "The password must not contain the user name."
HAS_NAME = "The password must not contain your name."
KEYBOARD_WALK = "Avoid keyboard patterns such as qwerty or 1qaz2wsx."
WORD_AND_DIGITS = (
    "Avoid a single name or word with only digits or symbols added, such as a name and a year."
)

#: zxcvbn score (0-4) a new password needs: 3 means about 10**8 guesses or more, before the
#: name-plus-digits and keyboard rules below, which zxcvbn alone does not catch for pinyin names.
MIN_SCORE = 3
# Shipped extras zxcvbn's English lists miss (compared case-insensitively).
_COMMON = frozenset(
    {
        "woaini1314520",
        "woaini5201314",
        "5201314woaini",
        "1qaz2wsx3edc",
        "1qaz2wsx3edc4rfv",
        "qazwsxedcrfv",
        "zaq12wsxcde3",
    }
)
# One run of letters with only digits and punctuation before or after it: "Zhang123456789",
# "Liming2024!!!", "2024wangwei".
_WORD_AND_DIGITS = re.compile(r"[\W\d_]*[^\W\d_]+[\W\d_]*")


def _hasher(params: Argon2Params) -> PasswordHasher:
    return PasswordHasher(
        time_cost=params.iterations, memory_cost=params.memory_kib, parallelism=params.lanes
    )


def _peppered_input(password: str, pepper: PasswordPepper, suite: Suite) -> bytes:
    return keyed_hash(suite, pepper.hash_key(suite), password.encode("utf-8"))


def hash_password(password: str, params: Argon2Params, pepper: PasswordPepper) -> str:
    """The peppered hash to store (suite of the installation, ``pepper.suite``)."""
    suite = pepper.suite
    inner = _hasher(params).hash(_peppered_input(password, pepper, suite))
    return f"{PEPPERED_PREFIX}{suite.label}{inner}"


def hash_is_current(stored: str, pepper: PasswordPepper) -> bool:
    """True if ``stored`` is in the peppered form of the installation's suite (no upgrade)."""
    return stored.startswith(f"{PEPPERED_PREFIX}{pepper.suite.label}$")


def verify_password(
    stored: str, password: str, params: Argon2Params, pepper: PasswordPepper | None
) -> bool:
    """Constant work whether or not it matches; False on any mismatch or bad hash.

    Only Argon2id hashes are accepted (A4): argon2-cffi would also verify an ``$argon2i$`` or
    ``$argon2d$`` hash, so a hash of another scheme written into the column must not sign in.
    A peppered hash never verifies without the pepper. ``params`` is unused: the parameters are
    read from the stored string (kept for the callers' symmetry with :func:`hash_password`).
    """
    del params
    peppered = _PEPPERED.fullmatch(stored)
    if peppered is not None:
        if pepper is None:
            return False
        suite = suite_by_name(peppered[1])
        inner: str = peppered[2]
        secret: str | bytes = _peppered_input(password, pepper, suite)
    elif stored.startswith(ARGON2ID_PREFIX):
        inner, secret = stored, password
    else:
        return False
    try:
        return PasswordHasher().verify(inner, secret)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def _names(username: str, display_name: str) -> list[str]:
    """Parts of the user's names worth refusing inside a password (3 letters or more)."""
    parts = re.split(r"[\s._\-]+", unicodedata.normalize("NFKC", f"{username} {display_name}"))
    return sorted({p.casefold() for p in parts if len(p) >= 3}, key=len, reverse=True)


def _keyboard_walk(password: str) -> bool:
    """True if runs of adjacent keys on a QWERTY keyboard cover at least half of the password:
    letter walks of 3 keys or more (``qwerty``, ``1qaz``, ``2wsx``, ``zxcvbn``), and with one
    of them, digit-row runs of 4 or more (``Qwerty123456``)."""
    letters: set[int] = set()
    digits: set[int] = set()
    for match in spatial_match(password):
        token = str(match["token"])
        if match["graph"] != "qwerty" or len(token) < 3:
            continue
        span = range(int(match["i"]), int(match["j"]) + 1)
        if any(c.isalpha() for c in token):
            letters.update(span)
        elif len(token) >= 4:
            digits.update(span)
    return bool(letters) and len(letters | digits) * 2 >= len(password)


def password_problems(password: str, *, username: str = "", display_name: str = "") -> list[str]:
    """Reasons a new password is refused (empty list: acceptable). Messages are msgids.

    Refuses short and over-long passwords, passwords a strength estimator (zxcvbn) rates
    below :data:`MIN_SCORE`, keyboard walks, a single name or word with digits or symbols
    added, and passwords containing the user name or a part of the display name.
    """
    problems: list[str] = []
    if len(password) < MIN_LENGTH:
        problems.append(TOO_SHORT)
    if len(password) > MAX_LENGTH:
        problems.append(TOO_LONG)
    if problems:
        return problems
    low = unicodedata.normalize("NFKC", password).casefold()
    names = _names(username, display_name)
    result = zxcvbn(password, user_inputs=names)
    if username and username.casefold() in low:
        problems.append(HAS_USERNAME)
    elif any(name in low for name in names):
        problems.append(HAS_NAME)
    if _keyboard_walk(password):
        problems.append(KEYBOARD_WALK)
    elif _WORD_AND_DIGITS.fullmatch(password) and not password.isalpha():
        problems.append(WORD_AND_DIGITS)
    if (low in _COMMON or len(set(password)) < 5 or int(result["score"]) < MIN_SCORE) and not (
        problems
    ):
        problems.append(TOO_EASY)
    return problems


def generate_password(length: int = 20) -> str:
    """A one-time password for new accounts (shown once, must be changed at first sign-in)."""
    alphabet = string.ascii_letters + string.digits
    while True:
        pw = "".join(secrets.choice(alphabet) for _ in range(length))
        if not password_problems(pw):
            return pw
