from __future__ import annotations

import os

import pytest

from crypto import params
from crypto.envelope import bind_aad, new_case_key
from crypto.errors import DecryptionError, WrongPasswordError, WrongRecoveryKeyError
from crypto.params import TEST_ARGON2
from crypto.recipients import (
    RECOVERY_KEY_BITS,
    format_recovery_key,
    generate_staff_keys,
    normalize_recovery_key,
    public_key_of,
    reseal_private_key,
    unlock_with_password,
    unlock_with_recovery,
    unwrap_for_recipient,
    wrap_for_recipient,
)
from crypto.suites import Suite

AAD = bind_aad("recipient", "23050001", "user-42")


@pytest.fixture(scope="module")
def staff() -> tuple[object, str]:
    return generate_staff_keys("correct horse battery", TEST_ARGON2)


def test_generate_and_unlock(staff: tuple) -> None:
    keys, recovery = staff
    assert len(keys.public_key) == 32
    by_password = unlock_with_password(keys.sealed_private_by_password, "correct horse battery")
    by_recovery = unlock_with_recovery(keys.sealed_private_by_recovery, recovery)
    assert by_password == by_recovery
    assert public_key_of(by_password) == keys.public_key


def test_recovery_key_format(staff: tuple) -> None:
    _, recovery = staff
    groups = recovery.split("-")
    assert len(groups) == 7 and all(len(g) == 4 for g in groups)
    assert RECOVERY_KEY_BITS >= 128
    assert set(recovery.replace("-", "")) <= set("0123456789ABCDEFGHJKMNPQRSTVWXYZ")


def test_recovery_key_normalisation(staff: tuple) -> None:
    keys, recovery = staff
    expected = unlock_with_recovery(keys.sealed_private_by_recovery, recovery)
    compact = recovery.replace("-", "")
    variants = [
        compact.lower(),
        " ".join(recovery.split("-")),
        "  " + recovery.lower().replace("-", " - ") + " ",
        recovery.replace("0", "O").replace("1", "l"),
        recovery.translate({c: c + 0xFEE0 for c in range(0x21, 0x7F)}),  # full-width
        recovery.replace("-", "\u3000"),
    ]
    for variant in variants:
        assert unlock_with_recovery(keys.sealed_private_by_recovery, variant) == expected


def test_format_round_trip() -> None:
    for value in (0, 1, (1 << RECOVERY_KEY_BITS) - 1, 123456789 << 70):
        assert normalize_recovery_key(format_recovery_key(value)) == value


def test_wrong_password(staff: tuple) -> None:
    keys, _ = staff
    for wrong in ("correct horse batterY", "correct horse battery ", "x", ""):
        with pytest.raises(WrongPasswordError):
            unlock_with_password(keys.sealed_private_by_password, wrong)


def test_wrong_recovery_key(staff: tuple) -> None:
    keys, recovery = staff
    other = format_recovery_key(normalize_recovery_key(recovery) ^ 1)
    with pytest.raises(WrongRecoveryKeyError):
        unlock_with_recovery(keys.sealed_private_by_recovery, other)
    for malformed in (
        "",
        "ABCD",
        recovery + "A",
        recovery.replace(recovery[0], "U", 1),
        "!" * 28,
        "A" * 500,
    ):
        with pytest.raises(WrongRecoveryKeyError):
            unlock_with_recovery(keys.sealed_private_by_recovery, malformed)


def test_password_is_nfc_normalised() -> None:
    keys, _ = generate_staff_keys("caf\u00e9", TEST_ARGON2)
    assert unlock_with_password(keys.sealed_private_by_password, "cafe\u0301")


def test_password_blob_is_self_describing(monkeypatch: pytest.MonkeyPatch) -> None:
    p = params.Argon2Params(memory_kib=16, iterations=2, lanes=2)
    private = os.urandom(32)
    sealed = reseal_private_key(private, "pw", p)
    seen: list[params.Argon2Params] = []
    real = params.derive_key

    def spy(secret: bytes, salt: bytes, length: int, prm: params.Argon2Params) -> bytes:
        seen.append(prm)
        return real(secret, salt, length, prm)

    monkeypatch.setattr(params, "derive_key", spy)
    assert unlock_with_password(sealed, "pw") == private
    assert seen == [p]


def test_reseal_changes_password_only(staff: tuple) -> None:
    keys, _recovery = staff
    private = unlock_with_password(keys.sealed_private_by_password, "correct horse battery")
    resealed = reseal_private_key(private, "new password", TEST_ARGON2)
    assert unlock_with_password(resealed, "new password") == private
    with pytest.raises(WrongPasswordError):
        unlock_with_password(resealed, "correct horse battery")
    # wraps made before the change still open
    wrapped = wrap_for_recipient(keys.public_key, b"k" * 32, AAD)
    assert (
        unwrap_for_recipient(unlock_with_password(resealed, "new password"), wrapped, AAD)
        == b"k" * 32
    )


@pytest.mark.parametrize("suite", list(Suite))
def test_sealed_private_key_tampering(suite: Suite) -> None:
    keys, recovery = generate_staff_keys("pw", TEST_ARGON2, suite=suite)
    for blob, opener, secret in (
        (keys.sealed_private_by_password, unlock_with_password, "pw"),
        (keys.sealed_private_by_recovery, unlock_with_recovery, recovery),
    ):
        assert opener(blob, secret)
        for i in range(len(blob)):
            if blob is keys.sealed_private_by_password and 4 <= i < 13:
                continue  # Argon2 parameters: test_tampered_argon2_parameters
            tampered = bytearray(blob)
            tampered[i] ^= 0x01
            with pytest.raises((DecryptionError, WrongPasswordError, WrongRecoveryKeyError)):
                opener(bytes(tampered), secret)
        for n in range(len(blob)):
            with pytest.raises((DecryptionError, WrongPasswordError, WrongRecoveryKeyError)):
                opener(blob[:n], secret)


def test_tampered_argon2_parameters() -> None:
    keys, _ = generate_staff_keys("pw", TEST_ARGON2)
    blob = keys.sealed_private_by_password
    for i in range(4, 13):  # memory, iterations, lanes: bounded first, then authenticated
        tampered = bytearray(blob)
        tampered[i] ^= 0x01
        with pytest.raises((DecryptionError, WrongPasswordError)):
            unlock_with_password(bytes(tampered), "pw")
    huge = bytearray(blob)
    huge[4:8] = (0xFFFFFFFF).to_bytes(4, "big")  # 4 TiB: refused before any derivation
    with pytest.raises(DecryptionError):
        unlock_with_password(bytes(huge), "pw")


def test_wrap_round_trip_and_failures() -> None:
    private = os.urandom(32)
    public = public_key_of(private)
    case_key = new_case_key()
    for suite in Suite:
        wrapped = wrap_for_recipient(public, case_key, AAD, suite=suite)
        assert wrapped[:3] == bytes([ord("R"), 1, suite.value])
        assert unwrap_for_recipient(private, wrapped, AAD) == case_key
        with pytest.raises(DecryptionError):
            unwrap_for_recipient(os.urandom(32), wrapped, AAD)
        with pytest.raises(DecryptionError):
            unwrap_for_recipient(private, wrapped, bind_aad("recipient", "23050001", "user-43"))
        for i in range(len(wrapped)):
            tampered = bytearray(wrapped)
            tampered[i] ^= 0x80
            with pytest.raises(DecryptionError):
                unwrap_for_recipient(private, bytes(tampered), AAD)
        for n in range(len(wrapped)):
            with pytest.raises(DecryptionError):
                unwrap_for_recipient(private, wrapped[:n], AAD)
    assert wrap_for_recipient(public, case_key, AAD) != wrap_for_recipient(public, case_key, AAD)


def test_low_order_public_key_refused() -> None:
    with pytest.raises(ValueError):
        wrap_for_recipient(bytes(32), new_case_key(), AAD)
