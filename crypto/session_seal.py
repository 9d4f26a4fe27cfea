"""Sealing of server-side session entries under a key only the client's cookie carries (C4).

A session entry holds what a signed-in person needs between requests: for staff the unlocked
X25519 private key, for a reporter the receipt-derived wrap key. The session store (process
memory, or Redis shared by instances) must never hold it in a form the store's holder can
open, even together with the installation keyring. So each entry is sealed under a key
derived from the session id itself, which exists only in the client's cookie:

    entry key = HKDF_suite(ikm = session id, salt = installation session secret,
                           info = "whistle-portal/v2/session-entry")
    file key  = HMAC-SHA256(installation id secret, session id)       (the store's key name)

The store sees only the file key (one-way) and the sealed blob. Someone with a dump of the
store and the keyring holds neither the session id nor anything derived from it, so they can
open nothing; the running process (which sees the cookie of each request) is out of scope.

Blob, version 2::

    0   1   version (2)
    1   1   suite id
    2   12  nonce (random)
    14  n+16 AEAD(entry key, value), aad = bytes 0..1 || file key (ASCII)
"""

from __future__ import annotations

import hashlib
import hmac
import os

from crypto._wire import suite_kdf
from crypto.errors import DecryptionError
from crypto.suites import NONCE_SIZE, TAG_SIZE, Suite, aead_for, suite_by_id

__all__ = ["SESSION_SEAL_VERSION", "file_key_for", "open_entry", "seal_entry"]

SESSION_SEAL_VERSION = 2
_INFO = b"whistle-portal/v2/session-entry"
_HEADER = 2


def file_key_for(id_secret: bytes, session_id: str) -> str:
    """The name an entry is filed under: HMAC(id secret, session id), hex."""
    return hmac.new(id_secret, session_id.encode("utf-8"), hashlib.sha256).hexdigest()


def _entry_key(suite: Suite, seal_secret: bytes, session_id: str) -> bytes:
    return suite_kdf(suite, session_id.encode("utf-8"), salt=seal_secret, info=_INFO, length=32)


def seal_entry(
    suite: Suite, seal_secret: bytes, session_id: str, file_key: str, value: bytes
) -> bytes:
    """The stored form of ``value`` for the session ``session_id``."""
    header = bytes((SESSION_SEAL_VERSION, suite.value))
    nonce = os.urandom(NONCE_SIZE)
    aead = aead_for(suite, _entry_key(suite, seal_secret, session_id))
    return header + nonce + aead.encrypt(nonce, value, header + file_key.encode("ascii"))


def open_entry(seal_secret: bytes, session_id: str, file_key: str, blob: bytes) -> bytes | None:
    """The value sealed in ``blob``, or None if it is not a version-2 entry for this session
    (wrong id, altered, older format)."""
    if len(blob) < _HEADER + NONCE_SIZE + TAG_SIZE or blob[0] != SESSION_SEAL_VERSION:
        return None
    try:
        suite = suite_by_id(blob[1])
    except (ValueError, DecryptionError):
        return None
    header, nonce, sealed = blob[:_HEADER], blob[_HEADER : _HEADER + NONCE_SIZE], blob[14:]
    aead = aead_for(suite, _entry_key(suite, seal_secret, session_id))
    try:
        return aead.decrypt(nonce, sealed, header + file_key.encode("ascii"))
    except DecryptionError:
        return None
