"""The installation secret that staff password hashes and password seals depend on (C4).

A copy of the database (or of a backup) alone must not let anyone test a single password guess.
Both things a password opens therefore also depend on a secret kept in the keyring, outside the
database: a dedicated sub-key per purpose, derived from ``pepper.key`` with the suite's HKDF
(HKDF-SHA256, or HKDF-SM3 for the 国密 suite) and its own info label::

    hash key = HKDF_suite(pepper.key, salt = none,
                          info = "whistle-portal/v2/pepper/password-hash")
    seal key = HKDF_suite(pepper.key, salt = none,
                          info = "whistle-portal/v2/pepper/private-key-seal")

``pepper.key`` is also the receipt-code pepper, which uses it only as an HMAC key over its own
label and as an HKDF salt; the labels above are used nowhere else, so no derived key serves
two purposes. The sub-key is derived for the suite a blob names, so a reader never guesses.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from crypto.suites import Suite, hkdf

__all__ = ["PasswordPepper"]

_HASH_INFO = b"whistle-portal/v2/pepper/password-hash"
_SEAL_INFO = b"whistle-portal/v2/pepper/private-key-seal"


@dataclass(frozen=True)
class PasswordPepper:
    """The keyring secret for staff passwords, and the suite new hashes and seals use."""

    secret: bytes = field(repr=False)
    suite: Suite

    def __post_init__(self) -> None:
        if not isinstance(self.secret, bytes) or len(self.secret) != 32:
            raise ValueError("the password pepper is 32 bytes")

    def hash_key(self, suite: Suite) -> bytes:
        """Key of the HMAC applied to a password before it is hashed with Argon2id."""
        return hkdf(suite, self.secret, salt=None, info=_HASH_INFO)

    def seal_key(self, suite: Suite) -> bytes:
        """HKDF salt that binds a password seal of a private key to the installation."""
        return hkdf(suite, self.secret, salt=None, info=_SEAL_INFO)
