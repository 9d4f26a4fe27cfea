from __future__ import annotations

import pytest

from crypto.params import (
    MIN_PRODUCTION_ARGON2,
    PRODUCTION_ARGON2,
    TEST_ARGON2,
    Argon2Params,
    derive_key,
)


def test_production_parameters_meet_documented_minimums() -> None:
    # docs/security.md: at least 64 MiB and 3 passes (RFC 9106, second recommended option).
    assert PRODUCTION_ARGON2.memory_kib >= 64 * 1024
    assert PRODUCTION_ARGON2.iterations >= 3
    assert PRODUCTION_ARGON2.lanes >= 1
    assert PRODUCTION_ARGON2.memory_kib >= MIN_PRODUCTION_ARGON2.memory_kib
    assert PRODUCTION_ARGON2.iterations >= MIN_PRODUCTION_ARGON2.iterations


def test_test_parameters_are_tiny() -> None:
    assert TEST_ARGON2.memory_kib <= 8 * 1024 and TEST_ARGON2.iterations == 1


def test_derive_key_is_deterministic_and_salted() -> None:
    a = derive_key(b"secret", b"0123456789abcdef", 32, TEST_ARGON2)
    assert a == derive_key(b"secret", b"0123456789abcdef", 32, TEST_ARGON2)
    assert a != derive_key(b"secret", b"0123456789abcdeF", 32, TEST_ARGON2)
    assert a != derive_key(b"secreT", b"0123456789abcdef", 32, TEST_ARGON2)
    assert len(derive_key(b"secret", b"0123456789abcdef", 64, TEST_ARGON2)) == 64


def test_derive_key_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError):
        derive_key(b"secret", b"short", 32, TEST_ARGON2)
    with pytest.raises(ValueError):
        derive_key(b"secret", b"0123456789abcdef", 2, TEST_ARGON2)
    with pytest.raises(TypeError):
        derive_key("secret", b"0123456789abcdef", 32, TEST_ARGON2)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"memory_kib": 7, "iterations": 1, "lanes": 1},
        {"memory_kib": 64, "iterations": 0, "lanes": 1},
        {"memory_kib": 64, "iterations": 1, "lanes": 0},
    ],
)
def test_params_validation(kwargs: dict[str, int]) -> None:
    with pytest.raises(ValueError):
        Argon2Params(**kwargs)
