"""C4: staff password hashes and password seals depend on a keyring secret (crypto.pepper).

What a database or backup thief holds (the stored hash, the sealed private key) and the right
password are not enough: without the keyring's pepper neither verifies nor opens, so not a
single guess can be tested offline. The older unpeppered forms still verify (accounts move
over at their next sign-in) and are reported as not current.
"""

from __future__ import annotations

import hashlib
import hmac
import os

import pytest
from argon2 import PasswordHasher
from argon2.exceptions import VerifyMismatchError
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import hmac as c_hmac
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from crypto.errors import DecryptionError, WrongPasswordError
from crypto.params import TEST_ARGON2
from crypto.passwords import hash_is_current, hash_password, verify_password
from crypto.pepper import PasswordPepper
from crypto.receipts import receipt_salt
from crypto.recipients import (
    generate_staff_keys,
    password_seal_is_current,
    reseal_private_key,
    unlock_with_password,
    unlock_with_recovery,
)
from crypto.suites import Suite

PASSWORD = "violet tractor 47 harbour"


def _pepper(suite: Suite = Suite.AES256GCM) -> PasswordPepper:
    return PasswordPepper(os.urandom(32), suite)


@pytest.mark.parametrize("suite", list(Suite))
def test_hash_verifies_only_with_the_pepper(suite: Suite) -> None:
    pepper = _pepper(suite)
    stored = hash_password(PASSWORD, TEST_ARGON2, pepper)
    assert stored.startswith(f"$pepper1${suite.label}$argon2id$v=19$")
    assert PASSWORD not in stored
    assert verify_password(stored, PASSWORD, TEST_ARGON2, pepper)
    assert not verify_password(stored, PASSWORD + "!", TEST_ARGON2, pepper)
    # a database thief: the stored string and the right password, no keyring
    assert not verify_password(stored, PASSWORD, TEST_ARGON2, None)
    assert not verify_password(stored, PASSWORD, TEST_ARGON2, _pepper(suite))
    inner = stored.removeprefix(f"$pepper1${suite.label}")
    with pytest.raises(VerifyMismatchError):
        PasswordHasher().verify(inner, PASSWORD)
    assert hash_is_current(stored, pepper)
    assert not hash_is_current(stored, PasswordPepper(pepper.secret, _other(suite)))


def _other(suite: Suite) -> Suite:
    return Suite.SM4GCM if suite is Suite.AES256GCM else Suite.AES256GCM


def test_the_inner_hash_is_of_the_suite_hmac() -> None:
    """The documented construction, rebuilt independently: HMAC-SHA256 / HMAC-SM3."""
    for suite, digest in ((Suite.AES256GCM, hashes.SHA256()), (Suite.SM4GCM, hashes.SM3())):
        pepper = _pepper(suite)
        stored = hash_password(PASSWORD, TEST_ARGON2, pepper)
        mac = c_hmac.HMAC(pepper.hash_key(suite), digest)
        mac.update(PASSWORD.encode())
        inner = stored.removeprefix(f"$pepper1${suite.label}")
        assert PasswordHasher().verify(inner, mac.finalize())


def test_legacy_hash_still_verifies_and_is_not_current() -> None:
    pepper = _pepper()
    legacy = PasswordHasher(memory_cost=8 * 1024, time_cost=1, parallelism=1).hash(PASSWORD)
    assert verify_password(legacy, PASSWORD, TEST_ARGON2, pepper)
    assert not verify_password(legacy, "something else entirely", TEST_ARGON2, pepper)
    assert not hash_is_current(legacy, pepper)


def test_a_tampered_marker_does_not_verify() -> None:
    pepper = _pepper()
    stored = hash_password(PASSWORD, TEST_ARGON2, pepper)
    # claims the other suite: HMAC-SM3 input instead of HMAC-SHA256, so no match
    swapped = stored.replace("$pepper1$aes256gcm", "$pepper1$sm4gcm", 1)
    assert not verify_password(swapped, PASSWORD, TEST_ARGON2, pepper)
    # the marker stripped: the inner hash is not a hash of the password
    assert not verify_password(
        stored.removeprefix("$pepper1$aes256gcm"), PASSWORD, TEST_ARGON2, pepper
    )
    assert not verify_password("$pepper1$chacha$argon2id$x", PASSWORD, TEST_ARGON2, pepper)


@pytest.mark.parametrize("suite", list(Suite))
def test_password_seal_opens_only_with_the_pepper(suite: Suite) -> None:
    pepper = _pepper(suite)
    private = X25519PrivateKey.generate().private_bytes_raw()
    sealed = reseal_private_key(private, PASSWORD, TEST_ARGON2, pepper=pepper)
    assert sealed[:4] == bytes([ord("P"), 2, 1, suite.value])
    assert password_seal_is_current(sealed, pepper)
    assert unlock_with_password(sealed, PASSWORD, pepper) == private
    with pytest.raises(WrongPasswordError):
        unlock_with_password(sealed, PASSWORD)  # a database thief: no keyring
    with pytest.raises(WrongPasswordError):
        unlock_with_password(sealed, PASSWORD, _pepper(suite))
    with pytest.raises(WrongPasswordError):
        unlock_with_password(sealed, PASSWORD + "x", pepper)
    tampered = bytearray(sealed)
    tampered[3] = _other(suite).value  # the suite byte is authenticated
    with pytest.raises(WrongPasswordError):
        unlock_with_password(bytes(tampered), PASSWORD, pepper)


def test_legacy_v1_seal_still_opens_and_is_not_current() -> None:
    pepper = _pepper()
    private = X25519PrivateKey.generate().private_bytes_raw()
    legacy = reseal_private_key(private, PASSWORD, TEST_ARGON2)
    assert legacy[:2] == b"P\x01"
    assert unlock_with_password(legacy, PASSWORD, pepper) == private
    assert unlock_with_password(legacy, PASSWORD) == private
    assert not password_seal_is_current(legacy, pepper)
    # a v2 header on a v1 body (downgrade/upgrade by editing the version byte) does not open
    forged = bytearray(legacy)
    forged[1] = 2
    with pytest.raises(WrongPasswordError):
        unlock_with_password(bytes(forged), PASSWORD, pepper)
    with pytest.raises(DecryptionError):
        unlock_with_password(b"P\x03" + legacy[2:], PASSWORD, pepper)


def test_generated_keys_follow_the_pepper_suite() -> None:
    pepper = _pepper(Suite.SM4GCM)
    keys, recovery = generate_staff_keys(PASSWORD, TEST_ARGON2, pepper=pepper)
    assert keys.sealed_private_by_password[:4] == b"P\x02\x01\x02"
    assert keys.sealed_private_by_recovery[:4] == b"P\x01\x02\x02"
    private = unlock_with_password(keys.sealed_private_by_password, PASSWORD, pepper)
    assert unlock_with_recovery(keys.sealed_private_by_recovery, recovery) == private


def test_sub_keys_are_distinct_per_purpose_and_suite() -> None:
    pepper = _pepper()
    derived = {
        pepper.hash_key(Suite.AES256GCM),
        pepper.seal_key(Suite.AES256GCM),
        pepper.hash_key(Suite.SM4GCM),
        pepper.seal_key(Suite.SM4GCM),
        pepper.secret,
        receipt_salt(pepper.secret),  # the receipt code's use of the same file
        hmac.new(pepper.secret, b"whistle-portal/v1/receipt-argon2-salt", hashlib.sha256).digest(),
    }
    assert len(derived) == 7
    assert "secret" not in repr(pepper) or pepper.secret.hex() not in repr(pepper)
    with pytest.raises(ValueError):
        PasswordPepper(b"short", Suite.AES256GCM)
