"""investigator.domain.totp: codes, the replay rule, sealing and the QR image."""

from __future__ import annotations

import base64

import pyotp
import pytest

from crypto.errors import CryptoError
from investigator.domain import totp

NOW = 1_700_000_000.0


def _code(secret: str, step: int) -> str:
    return pyotp.TOTP(secret).generate_otp(step)


def test_secret_is_160_bits_base32() -> None:
    secret = totp.new_secret()
    assert len(secret) == 32 and len(base64.b32decode(secret)) == 20
    assert totp.new_secret() != secret


def test_current_and_adjacent_steps_are_accepted() -> None:
    secret = totp.new_secret()
    step = totp.current_step(NOW)
    for delta in (-1, 0, 1):
        assert totp.matching_step(secret, _code(secret, step + delta), last_step=0, now=NOW) == (
            step + delta
        )
    for delta in (-3, -2, 2, 3):
        assert totp.matching_step(secret, _code(secret, step + delta), last_step=0, now=NOW) is None


def test_a_code_is_never_accepted_twice() -> None:
    secret = totp.new_secret()
    step = totp.current_step(NOW)
    code = _code(secret, step)
    accepted = totp.matching_step(secret, code, last_step=0, now=NOW)
    assert accepted == step
    # same code again, even a second later within the same step: refused
    assert totp.matching_step(secret, code, last_step=accepted, now=NOW + 1) is None
    # an older code (previous step) is refused too once a later step was used
    assert totp.matching_step(secret, _code(secret, step - 1), last_step=accepted, now=NOW) is None
    # the next step's code is fine
    assert totp.matching_step(secret, _code(secret, step + 1), last_step=accepted, now=NOW) == (
        step + 1
    )


@pytest.mark.parametrize("code", ["", "12345", "1234567", "abcdef", "١٢٣٤٥٦", "12 34 5x"])
def test_malformed_codes(code: str) -> None:
    assert totp.normalise_code(code) is None
    assert totp.matching_step(totp.new_secret(), code, last_step=0, now=NOW) is None


def test_typed_spaces_are_ignored() -> None:
    secret = totp.new_secret()
    step = totp.current_step(NOW)
    code = _code(secret, step)
    assert totp.matching_step(secret, f"{code[:3]} {code[3:]}", last_step=0, now=NOW) == step


def test_sealed_secret_is_bound_to_its_user() -> None:
    key = bytes(range(32))
    secret = totp.new_secret()
    sealed = totp.seal_secret(key, "user-a", secret)
    assert secret.encode() not in sealed
    assert totp.open_secret(key, "user-a", sealed) == secret
    with pytest.raises(CryptoError):
        totp.open_secret(key, "user-b", sealed)
    with pytest.raises(CryptoError):
        totp.open_secret(bytes(32), "user-a", sealed)


def test_qr_is_an_svg_data_uri_without_style_or_script() -> None:
    uri = totp.provisioning_uri("JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP", "alice")
    assert uri.startswith("otpauth://totp/") and "alice" in uri
    data = totp.qr_data_uri(uri)
    prefix = "data:image/svg+xml;base64,"
    assert data.startswith(prefix)
    svg = base64.b64decode(data[len(prefix) :]).decode()
    assert svg.startswith("<svg") and "style" not in svg and "script" not in svg


def test_grouped() -> None:
    assert totp.grouped("ABCDEFGHIJ") == "ABCD EFGH IJ"
