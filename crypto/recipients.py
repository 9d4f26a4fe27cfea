"""Staff key pairs and per-reader wraps of case keys (requirement C4).

Recipient wrap, version 1 (sealed-box style, one fresh ephemeral X25519 key per wrap)::

    0    1    magic b"R"
    1    1    format version (1)
    2    1    suite id
    3    32   ephemeral X25519 public key
    35   12   nonce (random)
    47   n+16 AEAD_k(case key), aad = bytes 0..35 || caller aad
    k = HKDF_suite(ikm = X25519(eph, recipient) || eph_pub || recipient_pub, salt = none,
                   info = "whistle-portal/v1/recipient-wrap")

HKDF_suite is the HKDF of the suite named in the blob: HKDF-SHA256 for AES-256-GCM (id 1),
HKDF-SM3 for SM4-GCM (id 2). Every blob written before issue 13 named suite 1 (all callers
used the default), so reading the KDF from the suite id is unambiguous.

Sealed private key::

    by password (v2, peppered)           by recovery key
    0   1  magic b"P"                    0   1  magic b"P"
    1   1  version (2; 1 = legacy)       1   1  version (1)
    2   1  kind = 1                      2   1  kind = 2
    3   1  suite id                      3   1  suite id
    4   4  Argon2id memory (KiB)         4   16 salt
    8   4  Argon2id iterations           20  12 nonce
    12  1  Argon2id lanes                32  48 AEAD(private key)
    13  16 salt
    29  12 nonce
    41  48 AEAD(private key)

    v2 password key = HKDF_suite(ikm  = Argon2id(UTF-8 of NFC(password), salt, params),
                                 salt = PasswordPepper.seal_key(suite)   (keyring secret),
                                 info = "whistle-portal/v2/private-key-password-seal")
    v1 password key = Argon2id(UTF-8 of NFC(password), salt, params)   (read only: legacy)
    recovery key    = HKDF_suite(140-bit recovery value (18 bytes), salt,
                                 "whistle-portal/v1/recovery-key") -- the recovery key is a
                      uniformly random 140-bit secret, so no slow hash is needed.
    aad = every byte before the AEAD output.

A v2 seal cannot be opened, nor a password guess tested against it, without the keyring's
pepper (crypto.pepper). v1 seals are still opened (accounts that have not signed in since);
:func:`password_seal_is_current` tells the caller to replace them.
"""

from __future__ import annotations

import os
import secrets
import struct
import unicodedata
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

from crypto import params as _params
from crypto._wire import MAGIC_PRIVATE_KEY, MAGIC_RECIPIENT, check_aad, suite_kdf
from crypto.errors import DecryptionError, WrongPasswordError, WrongRecoveryKeyError
from crypto.params import Argon2Params, check_stored_params
from crypto.pepper import PasswordPepper
from crypto.suites import NONCE_SIZE, TAG_SIZE, Suite, aead_for, suite_by_id

__all__ = [
    "RECOVERY_KEY_BITS",
    "StaffKeys",
    "format_recovery_key",
    "generate_staff_keys",
    "normalize_recovery_key",
    "password_seal_is_current",
    "public_key_of",
    "reseal_private_key",
    "seal_with_new_recovery_key",
    "unlock_with_password",
    "unlock_with_recovery",
    "unwrap_for_recipient",
    "wrap_for_recipient",
]

_VERSION = 1
_PEPPERED_VERSION = 2
_KIND_PASSWORD = 1
_KIND_RECOVERY = 2
_WRAP_HEADER = struct.Struct(">cBB32s")
_PW_HEADER = struct.Struct(">cBBBIIB16s12s")
_RC_HEADER = struct.Struct(">cBBB16s12s")
_SEALED_KEY_LEN = 32 + TAG_SIZE
_WRAP_INFO = b"whistle-portal/v1/recipient-wrap"
_RECOVERY_INFO = b"whistle-portal/v1/recovery-key"
_PASSWORD_SEAL_INFO = b"whistle-portal/v2/private-key-password-seal"

#: Crockford base32 without check symbol: 28 symbols = 140 random bits, shown as 7 groups of 4.
RECOVERY_KEY_BITS = 140
_RECOVERY_SYMBOLS = RECOVERY_KEY_BITS // 5
_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_CROCKFORD_DECODE = {c: i for i, c in enumerate(_CROCKFORD)} | {"O": 0, "I": 1, "L": 1}
_RECOVERY_MAX_INPUT = 128
_SEPARATORS = frozenset("-_.\u2010\u2011\u2012\u2013\u2014\u2015\u2212\ufe58\ufe63\uff0d")


@dataclass(frozen=True)
class StaffKeys:
    """A staff member's key pair as stored: raw X25519 public key and two sealed copies of
    the private key."""

    public_key: bytes
    sealed_private_by_password: bytes
    sealed_private_by_recovery: bytes


def public_key_of(private_key: bytes) -> bytes:
    """Raw 32-byte X25519 public key of a raw private key."""
    return X25519PrivateKey.from_private_bytes(bytes(private_key)).public_key().public_bytes_raw()


# --- recipient wraps ----------------------------------------------------------------------


def _wrap_key(suite: Suite, shared: bytes, eph_pub: bytes, recipient_pub: bytes) -> bytes:
    return suite_kdf(suite, shared + eph_pub + recipient_pub, salt=None, info=_WRAP_INFO)


def wrap_for_recipient(
    public_key: bytes, case_key: bytes, aad: bytes, *, suite: Suite = Suite.AES256GCM
) -> bytes:
    """Wrap ``case_key`` so that only the holder of ``public_key``'s private key can open it."""
    aad = check_aad(aad)
    recipient = X25519PublicKey.from_public_bytes(bytes(public_key))
    recipient_pub = recipient.public_bytes_raw()
    ephemeral = X25519PrivateKey.generate()
    eph_pub = ephemeral.public_key().public_bytes_raw()
    try:
        shared = ephemeral.exchange(recipient)
    except ValueError:  # low-order point: all-zero shared secret
        raise ValueError("invalid recipient public key") from None
    header = _WRAP_HEADER.pack(MAGIC_RECIPIENT, _VERSION, suite.value, eph_pub)
    nonce = os.urandom(NONCE_SIZE)
    key = _wrap_key(suite, shared, eph_pub, recipient_pub)
    return header + nonce + aead_for(suite, key).encrypt(nonce, bytes(case_key), header + aad)


def unwrap_for_recipient(private_key: bytes, wrapped: bytes, aad: bytes) -> bytes:
    """The case key in ``wrapped``; DecryptionError if not for this key/aad or altered."""
    aad = check_aad(aad)
    prefix = _WRAP_HEADER.size + NONCE_SIZE
    if len(wrapped) < prefix + TAG_SIZE:
        raise DecryptionError("wrapped key too short")
    magic, version, suite_id, eph_pub = _WRAP_HEADER.unpack_from(wrapped)
    if magic != MAGIC_RECIPIENT or version != _VERSION:
        raise DecryptionError("not a recipient wrap of a supported version")
    suite = suite_by_id(suite_id)
    me = X25519PrivateKey.from_private_bytes(bytes(private_key))
    try:
        shared = me.exchange(X25519PublicKey.from_public_bytes(eph_pub))
    except ValueError:
        raise DecryptionError("invalid ephemeral key") from None
    key = _wrap_key(suite, shared, eph_pub, me.public_key().public_bytes_raw())
    nonce = bytes(wrapped[_WRAP_HEADER.size : prefix])
    header = bytes(wrapped[: _WRAP_HEADER.size])
    return aead_for(suite, key).decrypt(nonce, bytes(wrapped[prefix:]), header + aad)


# --- sealed private keys ------------------------------------------------------------------


def _password_bytes(password: str) -> bytes:
    if not isinstance(password, str) or not password:
        raise ValueError("password must be a non-empty str")
    return unicodedata.normalize("NFC", password).encode("utf-8")


def _password_seal_key(
    version: int,
    suite: Suite,
    password: str,
    salt: bytes,
    params: Argon2Params,
    pepper: PasswordPepper | None,
) -> bytes:
    stretched = _params.derive_key(_password_bytes(password), salt, 32, params)
    if version == _VERSION:
        return stretched
    if pepper is None:
        raise WrongPasswordError("this seal needs the installation's pepper")
    return suite_kdf(suite, stretched, salt=pepper.seal_key(suite), info=_PASSWORD_SEAL_INFO)


def reseal_private_key(
    private_key: bytes,
    new_password: str,
    params: Argon2Params,
    *,
    pepper: PasswordPepper | None = None,
    suite: Suite | None = None,
) -> bytes:
    """A new ``sealed_private_by_password`` (password change; no case key is touched).

    With ``pepper`` (what the portal always passes) the seal is version 2 and depends on the
    keyring; the suite defaults to ``pepper.suite``. Without it, a legacy version 1 seal.
    """
    private_key = bytes(private_key)
    X25519PrivateKey.from_private_bytes(private_key)  # validates length
    if suite is None:
        suite = pepper.suite if pepper is not None else Suite.AES256GCM
    version = _PEPPERED_VERSION if pepper is not None else _VERSION
    salt = os.urandom(16)
    nonce = os.urandom(NONCE_SIZE)
    header = _PW_HEADER.pack(
        MAGIC_PRIVATE_KEY,
        version,
        _KIND_PASSWORD,
        suite.value,
        params.memory_kib,
        params.iterations,
        params.lanes,
        salt,
        nonce,
    )
    key = _password_seal_key(version, suite, new_password, salt, params, pepper)
    return header + aead_for(suite, key).encrypt(nonce, private_key, header)


def _parse_password_seal(
    sealed: bytes,
) -> tuple[int, Suite, Argon2Params, bytes, bytes]:
    if len(sealed) != _PW_HEADER.size + _SEALED_KEY_LEN:
        raise DecryptionError("not a password-sealed private key")
    magic, version, kind, suite_id, memory, iterations, lanes, salt, nonce = _PW_HEADER.unpack_from(
        sealed
    )
    if (
        magic != MAGIC_PRIVATE_KEY
        or version not in (_VERSION, _PEPPERED_VERSION)
        or kind != _KIND_PASSWORD
    ):
        raise DecryptionError("not a password-sealed private key")
    suite = suite_by_id(suite_id)
    try:
        params = Argon2Params(memory_kib=memory, iterations=iterations, lanes=lanes)
        check_stored_params(params)
    except ValueError:
        raise DecryptionError("sealed private key has invalid Argon2 parameters") from None
    return version, suite, params, salt, nonce


def password_seal_is_current(sealed: bytes, pepper: PasswordPepper) -> bool:
    """True if ``sealed`` is a peppered (v2) seal in the installation's suite."""
    try:
        version, suite, _, _, _ = _parse_password_seal(sealed)
    except DecryptionError:
        return False
    return version == _PEPPERED_VERSION and suite is pepper.suite


def unlock_with_password(
    sealed: bytes, password: str, pepper: PasswordPepper | None = None
) -> bytes:
    """Raw X25519 private key. WrongPasswordError if ``password`` does not open ``sealed``
    (and for a peppered seal without the right ``pepper``)."""
    version, suite, params, salt, nonce = _parse_password_seal(sealed)
    if not isinstance(password, str) or not password:
        raise WrongPasswordError("wrong password")
    key = _password_seal_key(version, suite, password, salt, params, pepper)
    header = bytes(sealed[: _PW_HEADER.size])
    try:
        return aead_for(suite, key).decrypt(nonce, bytes(sealed[_PW_HEADER.size :]), header)
    except DecryptionError:
        raise WrongPasswordError("wrong password") from None


def format_recovery_key(value: int) -> str:
    """``XXXX-XXXX-...``: 7 groups of 4 Crockford base32 symbols."""
    symbols = "".join(
        _CROCKFORD[(value >> (5 * i)) & 31] for i in reversed(range(_RECOVERY_SYMBOLS))
    )
    return "-".join(symbols[i : i + 4] for i in range(0, _RECOVERY_SYMBOLS, 4))


def normalize_recovery_key(raw: str) -> int:
    """Value of a typed recovery key: ignores case, spaces and dashes, reads O as 0 and I/L
    as 1, accepts full-width forms. WrongRecoveryKeyError if malformed."""
    if not isinstance(raw, str) or len(raw) > _RECOVERY_MAX_INPUT:
        raise WrongRecoveryKeyError("malformed recovery key")
    value = 0
    count = 0
    for ch in unicodedata.normalize("NFKC", raw).upper():
        if ch.isspace() or ch in _SEPARATORS:
            continue
        digit = _CROCKFORD_DECODE.get(ch)
        if digit is None:
            raise WrongRecoveryKeyError("malformed recovery key")
        value = (value << 5) | digit
        count += 1
    if count != _RECOVERY_SYMBOLS:
        raise WrongRecoveryKeyError("malformed recovery key")
    return value


def _recovery_aead_key(suite: Suite, value: int, salt: bytes) -> bytes:
    return suite_kdf(suite, value.to_bytes(18, "big"), salt=salt, info=_RECOVERY_INFO)


def _seal_with_recovery(private_key: bytes, value: int, suite: Suite) -> bytes:
    salt = os.urandom(16)
    nonce = os.urandom(NONCE_SIZE)
    header = _RC_HEADER.pack(MAGIC_PRIVATE_KEY, _VERSION, _KIND_RECOVERY, suite.value, salt, nonce)
    key = _recovery_aead_key(suite, value, salt)
    return header + aead_for(suite, key).encrypt(nonce, private_key, header)


def unlock_with_recovery(sealed: bytes, recovery_key: str) -> bytes:
    """Raw X25519 private key. WrongRecoveryKeyError if the key is malformed or wrong."""
    value = normalize_recovery_key(recovery_key)
    if len(sealed) != _RC_HEADER.size + _SEALED_KEY_LEN:
        raise DecryptionError("not a recovery-sealed private key")
    magic, version, kind, suite_id, salt, nonce = _RC_HEADER.unpack_from(sealed)
    if magic != MAGIC_PRIVATE_KEY or version != _VERSION or kind != _KIND_RECOVERY:
        raise DecryptionError("not a recovery-sealed private key")
    suite = suite_by_id(suite_id)
    header = bytes(sealed[: _RC_HEADER.size])
    key = _recovery_aead_key(suite, value, salt)
    try:
        return aead_for(suite, key).decrypt(nonce, bytes(sealed[_RC_HEADER.size :]), header)
    except DecryptionError:
        raise WrongRecoveryKeyError("wrong recovery key") from None


def seal_with_new_recovery_key(
    private_key: bytes, *, suite: Suite = Suite.AES256GCM
) -> tuple[bytes, str]:
    """A fresh recovery key for an existing key pair (after the old one was used or lost).

    Returns the new ``sealed_private_by_recovery`` and the recovery key text to show once.
    Storing the new blob in place of the old one retires the old recovery key.
    """
    private_key = bytes(private_key)
    X25519PrivateKey.from_private_bytes(private_key)  # ValueError unless a 32-byte key
    value = secrets.randbits(RECOVERY_KEY_BITS)
    return _seal_with_recovery(private_key, value, suite), format_recovery_key(value)


def generate_staff_keys(
    password: str,
    params: Argon2Params,
    *,
    pepper: PasswordPepper | None = None,
    suite: Suite | None = None,
) -> tuple[StaffKeys, str]:
    """A new key pair sealed by ``password`` and by a one-time recovery key.

    With ``pepper`` (what the portal always passes) the password seal is peppered (v2) and
    both seals use ``pepper.suite`` unless ``suite`` says otherwise.

    Returns the keys and the recovery key text (140 bits, ``XXXX-XXXX-...``), to be shown to
    the staff member once and never stored.
    """
    if suite is None:
        suite = pepper.suite if pepper is not None else Suite.AES256GCM
    private = X25519PrivateKey.generate()
    private_raw = private.private_bytes_raw()
    recovery_value = secrets.randbits(RECOVERY_KEY_BITS)
    keys = StaffKeys(
        public_key=private.public_key().public_bytes_raw(),
        sealed_private_by_password=reseal_private_key(
            private_raw, password, params, pepper=pepper, suite=suite
        ),
        sealed_private_by_recovery=_seal_with_recovery(private_raw, recovery_value, suite),
    )
    return keys, format_recovery_key(recovery_value)
