"""Receipt codes: generation, parsing and key derivation (requirements R6, R8, C3).

Format: 28 decimal digits = 27 uniformly random digits (log2(10**27) = 89.7 bits) followed by
one Damm check digit, shown as 7 groups of 4 (``1234 5678 ...``). The Damm check catches every
single-digit substitution and every transposition of adjacent digits, so typos are reported
before any lookup or key derivation.

Derivation (exactly one Argon2id evaluation, whatever the number of cases)::

    salt   = HMAC-SHA256(pepper, "whistle-portal/v1/receipt-argon2-salt")[:16]
    master = Argon2id(28 ASCII digits, salt, 32 bytes, params)
    lookup_token = HKDF_suite(master, salt = pepper, info = ".../receipt/lookup-token")
    wrap_key     = HKDF_suite(master, salt = pepper, info = ".../receipt/wrap-key")

HKDF_suite is HKDF-SHA256, or HKDF-SM3 on a 国密 (sm4gcm) installation. There the HKDF-SHA256
pair is derived too (``legacy_*``), from the same Argon2id output, so receipts issued before
issue 13 (when every installation used HKDF-SHA256) are still found and opened. The Argon2id
salt stays HMAC-SHA256: changing it would change every receipt's master secret.

The lookup token is stored (indexed) with the case; the wrap key opens the receipt wrap of
the case key. Without the pepper (kept in the keyring, outside the database) neither the salt
nor the tokens can be computed, so a stolen database alone does not allow testing guesses.

Receipt wrap, version 1::

    0    1    magic b"C"
    1    1    format version (1)
    2    1    suite id
    3    12   nonce (random)
    15   n+16 AEAD_wrap_key(case key), aad = bytes 0..3 || caller aad
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import struct
import unicodedata
from dataclasses import dataclass, field

from crypto import params as _params
from crypto._wire import MAGIC_RECEIPT, check_aad, check_key, hkdf_sha256, suite_kdf
from crypto.errors import DecryptionError, MalformedReceiptError
from crypto.params import Argon2Params
from crypto.suites import NONCE_SIZE, TAG_SIZE, Suite, aead_for, suite_by_id

__all__ = [
    "RECEIPT_DIGITS",
    "RECEIPT_MAX_INPUT",
    "ReceiptSecrets",
    "damm_check_digit",
    "damm_is_valid",
    "derive_receipt_secrets",
    "format_receipt",
    "generate_receipt",
    "normalize_receipt",
    "unwrap_with_receipt",
    "wrap_with_receipt",
]

#: Longest raw input accepted (characters), checked before any other work.
RECEIPT_MAX_INPUT = 64
RECEIPT_DIGITS = 28
_RANDOM_DIGITS = RECEIPT_DIGITS - 1
_GROUP = 4

_VERSION = 1
_HEADER = struct.Struct(">cBB")
_SALT_LABEL = b"whistle-portal/v1/receipt-argon2-salt"
_LOOKUP_INFO = b"whistle-portal/v1/receipt/lookup-token"
_WRAP_INFO = b"whistle-portal/v1/receipt/wrap-key"
_ASCII_DIGITS = frozenset("0123456789")
# Dashes people actually type, after NFKC (which already maps U+FF0D to "-" and U+3000 to " ").
_SEPARATORS = frozenset("-_.\u2010\u2011\u2012\u2013\u2014\u2015\u2212\u30fc\ufe58\ufe63")

# Damm's weakly totally anti-symmetric quasigroup of order 10 (H. M. Damm, 2004).
_DAMM = (
    (0, 3, 1, 7, 5, 9, 8, 6, 4, 2),
    (7, 0, 9, 2, 1, 5, 4, 8, 6, 3),
    (4, 2, 0, 6, 8, 7, 1, 3, 5, 9),
    (1, 7, 5, 0, 9, 8, 3, 4, 2, 6),
    (6, 1, 2, 3, 0, 4, 5, 9, 7, 8),
    (3, 6, 7, 4, 2, 0, 9, 5, 8, 1),
    (5, 8, 6, 9, 7, 2, 0, 1, 3, 4),
    (8, 9, 4, 5, 3, 6, 2, 0, 1, 7),
    (9, 4, 3, 8, 6, 1, 7, 2, 0, 5),
    (2, 5, 8, 1, 4, 3, 6, 7, 9, 0),
)


def _damm_interim(digits: str) -> int:
    interim = 0
    for ch in digits:
        interim = _DAMM[interim][ord(ch) - 48]
    return interim


def damm_check_digit(digits: str) -> str:
    """The Damm check digit of a string of ASCII digits."""
    if not digits or not set(digits) <= _ASCII_DIGITS:
        raise ValueError("digits expected")
    return str(_damm_interim(digits))


def damm_is_valid(digits: str) -> bool:
    """True if ``digits`` (check digit last) passes the Damm check."""
    return bool(digits) and set(digits) <= _ASCII_DIGITS and _damm_interim(digits) == 0


def generate_receipt() -> str:
    """A new receipt code from the OS CSPRNG, formatted for display."""
    body = f"{secrets.randbelow(10**_RANDOM_DIGITS):0{_RANDOM_DIGITS}d}"
    return format_receipt(body + damm_check_digit(body))


def normalize_receipt(raw: str) -> str:
    """The 28 ASCII digits of a typed receipt code.

    Accepts spaces, dashes, full-width digits, spaces and dashes. Raises MalformedReceiptError
    (message safe to display, never echoing the input) for over-long input (checked first,
    before any normalisation), other characters, a wrong number of digits or a typo caught by
    the check digit.
    """
    if not isinstance(raw, str) or len(raw) > RECEIPT_MAX_INPUT:
        raise MalformedReceiptError("The receipt code is too long.", "too_long")
    digits: list[str] = []
    for ch in unicodedata.normalize("NFKC", raw):
        if ch in _ASCII_DIGITS:
            digits.append(ch)
        elif not (ch.isspace() or ch in _SEPARATORS):
            raise MalformedReceiptError(
                "A receipt code contains only digits (spaces and dashes are ignored).",
                "invalid_character",
            )
    if len(digits) != RECEIPT_DIGITS:
        raise MalformedReceiptError(f"A receipt code has {RECEIPT_DIGITS} digits.", "wrong_length")
    code = "".join(digits)
    if _damm_interim(code) != 0:
        raise MalformedReceiptError(
            "This receipt code contains a typo; please check each digit.", "check_digit"
        )
    return code


def _check_normalized(normalized: str) -> None:
    if (
        not isinstance(normalized, str)
        or len(normalized) != RECEIPT_DIGITS
        or not damm_is_valid(normalized)
    ):
        raise MalformedReceiptError("Not a normalized receipt code.", "malformed")


def format_receipt(normalized: str) -> str:
    """``"1234 5678 ... 1234"``: 7 groups of 4 digits."""
    _check_normalized(normalized)
    return " ".join(normalized[i : i + _GROUP] for i in range(0, RECEIPT_DIGITS, _GROUP))


@dataclass(frozen=True)
class ReceiptSecrets:
    """Derived from a receipt code: the indexed lookup token and the wrap key.

    On a 国密 installation also the HKDF-SHA256 pair receipts issued before issue 13 carry
    (``legacy_*``); :meth:`lookup_tokens` lists every token to look up and :meth:`matching`
    gives the pair of the token found.
    """

    lookup_token: bytes = field(repr=False)
    wrap_key: bytes = field(repr=False)
    legacy_lookup_token: bytes | None = field(default=None, repr=False)
    legacy_wrap_key: bytes | None = field(default=None, repr=False)

    def lookup_tokens(self) -> list[bytes]:
        tokens = [self.lookup_token]
        if self.legacy_lookup_token is not None:
            tokens.append(self.legacy_lookup_token)
        return tokens

    def matching(self, lookup_token: bytes) -> ReceiptSecrets:
        """The (lookup token, wrap key) pair whose token is ``lookup_token``."""
        if (
            self.legacy_lookup_token is not None
            and self.legacy_wrap_key is not None
            and hmac.compare_digest(lookup_token, self.legacy_lookup_token)
        ):
            return ReceiptSecrets(self.legacy_lookup_token, self.legacy_wrap_key)
        return ReceiptSecrets(self.lookup_token, self.wrap_key)


def receipt_salt(pepper: bytes) -> bytes:
    """The installation-wide Argon2id salt for receipt codes."""
    pepper = check_key(pepper, "pepper")
    return hmac.new(pepper, _SALT_LABEL, hashlib.sha256).digest()[:16]


def derive_receipt_secrets(
    normalized: str, pepper: bytes, params: Argon2Params, *, suite: Suite = Suite.AES256GCM
) -> ReceiptSecrets:
    """Lookup token and wrap key of a normalized receipt code: exactly one Argon2id call.

    Synchronous and slow (by design): async callers run it in a worker thread.
    """
    _check_normalized(normalized)
    pepper = check_key(pepper, "pepper")
    master = _params.derive_key(normalized.encode("ascii"), receipt_salt(pepper), 32, params)
    legacy_lookup = hkdf_sha256(master, salt=pepper, info=_LOOKUP_INFO)
    legacy_wrap = hkdf_sha256(master, salt=pepper, info=_WRAP_INFO)
    if suite is Suite.AES256GCM:
        return ReceiptSecrets(lookup_token=legacy_lookup, wrap_key=legacy_wrap)
    return ReceiptSecrets(
        lookup_token=suite_kdf(suite, master, salt=pepper, info=_LOOKUP_INFO),
        wrap_key=suite_kdf(suite, master, salt=pepper, info=_WRAP_INFO),
        legacy_lookup_token=legacy_lookup,
        legacy_wrap_key=legacy_wrap,
    )


def wrap_with_receipt(
    secrets: ReceiptSecrets, case_key: bytes, aad: bytes, *, suite: Suite = Suite.AES256GCM
) -> bytes:
    """The reporter's wrap of ``case_key`` (store it next to ``secrets.lookup_token``)."""
    aad = check_aad(aad)
    header = _HEADER.pack(MAGIC_RECEIPT, _VERSION, suite.value)
    nonce = os.urandom(NONCE_SIZE)
    sealed = aead_for(suite, secrets.wrap_key).encrypt(nonce, bytes(case_key), header + aad)
    return header + nonce + sealed


def unwrap_with_receipt(secrets: ReceiptSecrets, wrapped: bytes, aad: bytes) -> bytes:
    """The case key; DecryptionError if the wrap was not made with these secrets and aad."""
    aad = check_aad(aad)
    prefix = _HEADER.size + NONCE_SIZE
    if len(wrapped) < prefix + TAG_SIZE:
        raise DecryptionError("receipt wrap too short")
    magic, version, suite_id = _HEADER.unpack_from(wrapped)
    if magic != MAGIC_RECEIPT or version != _VERSION:
        raise DecryptionError("not a receipt wrap of a supported version")
    suite = suite_by_id(suite_id)
    nonce = bytes(wrapped[_HEADER.size : prefix])
    header = bytes(wrapped[: _HEADER.size])
    return aead_for(suite, secrets.wrap_key).decrypt(nonce, bytes(wrapped[prefix:]), header + aad)


_REPLY_INFO = b"whistle-portal/v1/receipt/reply-key/"


def receipt_reply_private_key(
    wrap_key: bytes, label: str, *, suite: Suite = Suite.AES256GCM
) -> bytes:
    """An X25519 private key that only the receipt's holder can compute, one per ``label``
    (a rights request id): ``HKDF_suite(wrap key, salt = none, info = ".../receipt/reply-key/"
    || label)``. Its public key (``crypto.recipients.public_key_of``) is stored with the
    request, so a staff member who holds no key of the case can still seal an answer that
    nobody but the reporter opens (``wrap_for_recipient``)."""
    return suite_kdf(suite, check_key(wrap_key), salt=None, info=_REPLY_INFO + label.encode())
