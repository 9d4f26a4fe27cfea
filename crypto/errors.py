"""Exception hierarchy of the crypto package.

Every error raised on purpose by this package derives from :class:`CryptoError`.
Messages never contain key material, plaintext or (for receipts) the user's input.
"""

from __future__ import annotations

__all__ = [
    "CryptoError",
    "DecryptionError",
    "KeyringError",
    "MalformedReceiptError",
    "NeedMoreDataError",
    "SuiteUnavailableError",
    "TruncatedStreamError",
    "WrongPasswordError",
    "WrongRecoveryKeyError",
]


class CryptoError(Exception):
    """Base class of every error this package raises on purpose."""


class DecryptionError(CryptoError):
    """Authentication failed: tampering, wrong key, wrong associated data or malformed blob.

    Deliberately carries no detail that would help an attacker tell these cases apart.
    """


class TruncatedStreamError(DecryptionError):
    """A file stream ended before its authenticated final chunk."""


class NeedMoreDataError(CryptoError):
    """:func:`crypto.stream.read_header` was given too short a prefix.

    ``needed`` is the total number of bytes from the start of the stream that are required.
    """

    def __init__(self, needed: int) -> None:
        super().__init__(f"need at least {needed} bytes of the stream to read its header")
        self.needed = needed


class WrongPasswordError(CryptoError):
    """The password does not open this sealed private key."""


class WrongRecoveryKeyError(CryptoError):
    """The recovery key is malformed or does not open this sealed private key."""


class MalformedReceiptError(CryptoError):
    """A receipt code is malformed. The message is safe to show to the user (no echo).

    ``reason`` is a stable machine-readable key for translated UI messages: one of
    ``"too_long"``, ``"invalid_character"``, ``"wrong_length"``, ``"check_digit"``.
    """

    def __init__(self, message: str, reason: str = "malformed") -> None:
        super().__init__(message)
        self.reason = reason


class KeyringError(CryptoError):
    """The installation keyring is missing, unreadable, malformed or too permissive."""


class SuiteUnavailableError(CryptoError):
    """The requested cipher suite is not available or failed its known-answer tests."""
