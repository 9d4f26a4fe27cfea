"""Envelope encryption of the text fields of a case (requirement C2).

Blob layout (version 1), all integers big-endian::

    offset  size  field
    0       1     magic  b"E"
    1       1     format version (1)
    2       1     suite id (1 = AES-256-GCM, 2 = SM4-GCM)
    3       4     key id (u32; lets callers rotate keys, e.g. the keyring server key)
    7       12    nonce (random)
    19      n+16  AEAD ciphertext and tag of pad(plaintext)

Associated data = bytes 0..7 of the blob || caller ``aad``; the header therefore cannot be
altered (version, suite and key id are authenticated) and the blob is bound to its row and
column by the caller's ``aad`` (use :func:`field_aad`).

``pad`` hides exact lengths: ``plaintext || 0x80 || 0x00...`` up to at least 32 bytes, then
to the Padmé length (at most 12 % overhead, leaks O(log log n) bits of the length).

Random 96-bit nonces: keep well below 2**32 seals per key (a case key seals a few hundred
fields at most).
"""

from __future__ import annotations

import os
import struct

from crypto._wire import MAGIC_ENVELOPE, check_aad, check_key, length_prefixed
from crypto.errors import DecryptionError
from crypto.suites import NONCE_SIZE, TAG_SIZE, Suite, aead_for, suite_by_id

__all__ = [
    "ENVELOPE_VERSION",
    "bind_aad",
    "field_aad",
    "new_case_key",
    "open_sealed",
    "open_text",
    "seal",
    "seal_text",
    "sealed_key_id",
    "sealed_suite",
]

ENVELOPE_VERSION = 1
_HEADER = struct.Struct(">cBBI")
_PREFIX = _HEADER.size + NONCE_SIZE
_MIN_BUCKET = 32
_AAD_LABEL = b"whistle-portal/aad/v1"


def new_case_key() -> bytes:
    """A fresh random 32-byte case key (for the SM4 suite the SM4 key is derived from it)."""
    return os.urandom(32)


def bind_aad(purpose: str, *parts: str) -> bytes:
    """Canonical associated data: label, purpose and parts, each UTF-8 and length-prefixed.

    Injective: two different ``(purpose, parts)`` tuples never give the same bytes.
    """
    encoded = [purpose.encode("utf-8"), *(p.encode("utf-8") for p in parts)]
    return _AAD_LABEL + length_prefixed(*encoded)


def field_aad(case_id: str, field: str) -> bytes:
    """Associated data that binds a sealed value to one case (row) and one field (column)."""
    return bind_aad("field", case_id, field)


def _padded_length(n: int) -> int:
    """Padmé (Nikitin et al., PURBs) with a floor of 32 bytes; ``n`` includes the 0x80 byte."""
    if n <= _MIN_BUCKET:
        return _MIN_BUCKET
    e = n.bit_length() - 1
    s = e.bit_length()
    mask = (1 << (e - s)) - 1
    return (n + mask) & ~mask


def _pad(plaintext: bytes) -> bytes:
    target = _padded_length(len(plaintext) + 1)
    return plaintext + b"\x80" + bytes(target - len(plaintext) - 1)


def _unpad(padded: bytes) -> bytes:
    stripped = padded.rstrip(b"\x00")
    if not stripped or stripped[-1] != 0x80:
        raise DecryptionError("malformed padding")
    return stripped[:-1]


def seal(
    key: bytes,
    plaintext: bytes,
    aad: bytes,
    *,
    suite: Suite = Suite.AES256GCM,
    key_id: int = 0,
) -> bytes:
    """Encrypt and authenticate ``plaintext`` under ``key`` (32 bytes), bound to ``aad``."""
    key = check_key(key)
    aad = check_aad(aad)
    if not isinstance(plaintext, bytes | bytearray):
        raise TypeError("plaintext must be bytes")
    if not 0 <= key_id <= 0xFFFFFFFF:
        raise ValueError("key_id must fit in 32 bits")
    header = _HEADER.pack(MAGIC_ENVELOPE, ENVELOPE_VERSION, suite.value, key_id)
    nonce = os.urandom(NONCE_SIZE)
    sealed = aead_for(suite, key).encrypt(nonce, _pad(bytes(plaintext)), header + aad)
    return header + nonce + sealed


def _parse(blob: bytes) -> tuple[bytes, Suite, int]:
    if len(blob) < _PREFIX + TAG_SIZE + _MIN_BUCKET:
        raise DecryptionError("sealed value too short")
    magic, version, suite_id, key_id = _HEADER.unpack_from(blob)
    if magic != MAGIC_ENVELOPE or version != ENVELOPE_VERSION:
        raise DecryptionError("not a sealed value of a supported version")
    return bytes(blob[: _HEADER.size]), suite_by_id(suite_id), key_id


def sealed_key_id(blob: bytes) -> int:
    """The (not yet authenticated) key id of a sealed value, to pick the key to open it with."""
    return _parse(blob)[2]


def sealed_suite(blob: bytes) -> Suite:
    """The (not yet authenticated) suite of a sealed value."""
    return _parse(blob)[1]


def open_sealed(key: bytes, blob: bytes, aad: bytes) -> bytes:
    """Plaintext of ``blob``; DecryptionError if anything is wrong (key, aad, any byte)."""
    key = check_key(key)
    aad = check_aad(aad)
    header, suite, _ = _parse(blob)
    nonce = bytes(blob[_HEADER.size : _PREFIX])
    padded = aead_for(suite, key).decrypt(nonce, bytes(blob[_PREFIX:]), header + aad)
    return _unpad(padded)


def seal_text(key: bytes, text: str, aad: bytes, *, suite: Suite = Suite.AES256GCM) -> bytes:
    """:func:`seal` of ``text`` encoded as UTF-8 (lone surrogates are refused)."""
    return seal(key, text.encode("utf-8"), aad, suite=suite)


def open_text(key: bytes, blob: bytes, aad: bytes) -> str:
    """Inverse of :func:`seal_text`."""
    try:
        return open_sealed(key, blob, aad).decode("utf-8")
    except UnicodeDecodeError:
        raise DecryptionError("sealed value is not UTF-8 text") from None
