"""Internal encoding helpers shared by the blob formats (not part of the public API)."""

from __future__ import annotations

import struct

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from crypto.suites import Suite, hkdf

# First byte of every blob: identifies the format (domain separation: the header, which
# includes this byte, is always part of the AEAD associated data).
MAGIC_ENVELOPE = b"E"
MAGIC_STREAM = b"S"
MAGIC_RECIPIENT = b"R"
MAGIC_PRIVATE_KEY = b"P"
MAGIC_RECEIPT = b"C"

_U32 = struct.Struct(">I")


def length_prefixed(*parts: bytes) -> bytes:
    """Concatenation of ``u32be(len(part)) || part``: injective for any sequence of parts."""
    out = bytearray()
    for part in parts:
        if len(part) > 0xFFFFFFFF:
            raise ValueError("part too long")
        out += _U32.pack(len(part))
        out += part
    return bytes(out)


def hkdf_sha256(ikm: bytes, *, salt: bytes | None, info: bytes, length: int = 32) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=salt, info=info).derive(ikm)


def suite_kdf(
    suite: Suite, ikm: bytes, *, salt: bytes | None, info: bytes, length: int = 32
) -> bytes:
    """HKDF with the suite's hash: SHA-256 for AES-256-GCM, SM3 for the 国密 suite."""
    return hkdf(suite, ikm, salt=salt, info=info, length=length)


def check_key(key: bytes, what: str = "key") -> bytes:
    if not isinstance(key, bytes | bytearray) or len(key) != 32:
        raise ValueError(f"{what} must be 32 bytes")
    return bytes(key)


def check_aad(aad: bytes) -> bytes:
    if not isinstance(aad, bytes | bytearray):
        raise TypeError("aad must be bytes")
    return bytes(aad)
