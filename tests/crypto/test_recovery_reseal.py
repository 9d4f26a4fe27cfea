"""crypto.recipients.seal_with_new_recovery_key: a fresh recovery key for an existing key pair."""

from __future__ import annotations

import pytest

from crypto.errors import WrongRecoveryKeyError
from crypto.params import TEST_ARGON2
from crypto.recipients import (
    generate_staff_keys,
    seal_with_new_recovery_key,
    unlock_with_password,
    unlock_with_recovery,
)


def test_new_recovery_key_opens_the_same_private_key_and_the_old_one_does_not() -> None:
    keys, old_recovery = generate_staff_keys("a strong passphrase here", TEST_ARGON2)
    private = unlock_with_password(keys.sealed_private_by_password, "a strong passphrase here")
    sealed, recovery = seal_with_new_recovery_key(private)
    assert recovery != old_recovery
    assert unlock_with_recovery(sealed, recovery) == private
    with pytest.raises(WrongRecoveryKeyError):
        unlock_with_recovery(sealed, old_recovery)
    assert private not in sealed


def test_each_call_gives_a_different_key() -> None:
    keys, _ = generate_staff_keys("a strong passphrase here", TEST_ARGON2)
    private = unlock_with_password(keys.sealed_private_by_password, "a strong passphrase here")
    first = seal_with_new_recovery_key(private)
    second = seal_with_new_recovery_key(private)
    assert first[1] != second[1] and first[0] != second[0]
    assert len(first[1]) == 34  # 7 groups of 4 symbols, dashes between


def test_refuses_something_that_is_not_a_private_key() -> None:
    with pytest.raises(ValueError):
        seal_with_new_recovery_key(b"short")
