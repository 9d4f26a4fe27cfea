"""Crypto-shredding (requirement C5).

Every ciphertext of a case is sealed under its case key, directly (fields, messages) or
through a random per-file key that is itself wrapped by the case key (evidence files). The
case key is never stored in clear: only its *wraps* exist, one per authorised staff member
(X25519) and one for the reporter (receipt-derived key). Destroying a case therefore means:

1. delete every wrap of its case key (all recipient wraps and the receipt wrap, and the
   receipt lookup token), in one transaction;
2. drop any in-memory copy (:func:`destroy_key` on mutable buffers, best effort).

From then on, the remaining ciphertexts (database rows, file store, backups) are
computationally unreadable: no remaining key - installation keyring, staff private keys,
other cases' keys, even the reporter's receipt code - leads to the case key.
Backups taken *before* destruction still contain the wraps: their retention must be bounded
(see docs/security.md).
"""

from __future__ import annotations

import ctypes

__all__ = ["destroy_key"]


def destroy_key(key: bytearray) -> None:
    """Overwrite a mutable key buffer with zeros, in place (best effort).

    Python may hold other copies (``bytes`` objects, freed memory), so this reduces, and does
    not eliminate, the time key material stays in process memory.
    """
    if not isinstance(key, bytearray):
        raise TypeError("destroy_key needs a bytearray (bytes objects are immutable)")
    length = len(key)
    if length:
        ctypes.memset((ctypes.c_char * length).from_buffer(key), 0, length)
