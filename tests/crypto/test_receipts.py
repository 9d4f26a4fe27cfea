from __future__ import annotations

import os
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crypto import params
from crypto.envelope import bind_aad, new_case_key
from crypto.errors import DecryptionError, MalformedReceiptError
from crypto.params import TEST_ARGON2
from crypto.receipts import (
    RECEIPT_MAX_INPUT,
    ReceiptSecrets,
    damm_check_digit,
    damm_is_valid,
    derive_receipt_secrets,
    format_receipt,
    generate_receipt,
    normalize_receipt,
    unwrap_with_receipt,
    wrap_with_receipt,
)

PEPPER = bytes(range(32))
AAD = bind_aad("receipt", "23050001")


def test_damm_reference_example() -> None:
    assert damm_check_digit("572") == "4"
    assert damm_is_valid("5724") and not damm_is_valid("5723")


def test_generated_format() -> None:
    for _ in range(50):
        shown = generate_receipt()
        assert re.fullmatch(r"\d{4}( \d{4}){6}", shown)
        digits = shown.replace(" ", "")
        assert len(digits) == 28 and damm_is_valid(digits)
        assert normalize_receipt(shown) == digits
        assert format_receipt(digits) == shown


def test_generation_is_random() -> None:
    codes = {generate_receipt() for _ in range(200)}
    assert len(codes) == 200


def _every_typo(code: str) -> list[str]:
    typos = []
    for i, ch in enumerate(code):
        typos += [code[:i] + d + code[i + 1 :] for d in "0123456789" if d != ch]
    for i in range(len(code) - 1):
        if code[i] != code[i + 1]:
            typos.append(code[:i] + code[i + 1] + code[i] + code[i + 2 :])
    return typos


def test_every_single_substitution_and_adjacent_transposition_caught() -> None:
    for _ in range(20):
        code = normalize_receipt(generate_receipt())
        typos = _every_typo(code)
        assert len(typos) >= 28 * 9
        for typo in typos:
            with pytest.raises(MalformedReceiptError) as info:
                normalize_receipt(typo)
            assert info.value.reason == "check_digit"


@given(st.text(alphabet="0123456789", min_size=27, max_size=27))
@settings(max_examples=200, deadline=None)
def test_damm_property(body: str) -> None:
    code = body + damm_check_digit(body)
    for typo in _every_typo(code):
        assert not damm_is_valid(typo)


def test_accepted_spellings() -> None:
    code = normalize_receipt(generate_receipt())
    groups = [code[i : i + 4] for i in range(0, 28, 4)]
    fullwidth = code.translate({ord(d): 0xFF10 + int(d) for d in "0123456789"})
    for spelling in (
        code,
        " ".join(groups),
        "-".join(groups),
        "  " + "  ".join(groups) + "\n",
        "\u3000".join(groups),  # ideographic space
        "\uff0d".join(groups),  # full-width hyphen-minus
        "\u2014".join(groups),  # em dash
        fullwidth,
        " ".join(fullwidth[i : i + 4] for i in range(0, 28, 4)),
    ):
        assert normalize_receipt(spelling) == code


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("", "wrong_length"),
        ("1234 5678", "wrong_length"),
        ("1" * 29, "wrong_length"),
        ("1234 5678 abcd", "invalid_character"),
        ("١٢٣٤٥٦٧٨٩٠١٢٣٤٥٦٧٨٩٠١٢٣٤٥٦٧٨", "invalid_character"),  # Arabic-Indic digits
        ("1" * (RECEIPT_MAX_INPUT + 1), "too_long"),
        (" " * 65, "too_long"),
    ],
)
def test_malformed_input(raw: str, reason: str) -> None:
    with pytest.raises(MalformedReceiptError) as info:
        normalize_receipt(raw)
    assert info.value.reason == reason
    assert raw.strip() == "" or raw not in str(info.value)  # never echoes the input


def test_overlong_input_never_reaches_derivation(monkeypatch: pytest.MonkeyPatch) -> None:
    def forbidden(*args: object, **kwargs: object) -> bytes:
        raise AssertionError("derive_key must not be called")

    monkeypatch.setattr(params, "derive_key", forbidden)
    code = normalize_receipt(generate_receipt())
    for raw in (code + " " * 60, code * 3, "9" * 10_000):
        with pytest.raises(MalformedReceiptError):
            derive_receipt_secrets(normalize_receipt(raw), PEPPER, TEST_ARGON2)
    for not_normalized in (code[:-1], code + "0", format_receipt(code), "x" * 28):
        with pytest.raises(MalformedReceiptError):
            derive_receipt_secrets(not_normalized, PEPPER, TEST_ARGON2)


def test_exactly_one_derivation(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    real = params.derive_key

    def counting(*args: object) -> bytes:
        calls.append(args)
        return real(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(params, "derive_key", counting)
    derive_receipt_secrets(normalize_receipt(generate_receipt()), PEPPER, TEST_ARGON2)
    assert len(calls) == 1


def test_derivation_properties() -> None:
    code = normalize_receipt(generate_receipt())
    a = derive_receipt_secrets(code, PEPPER, TEST_ARGON2)
    assert a == derive_receipt_secrets(code, PEPPER, TEST_ARGON2)
    assert len(a.lookup_token) == 32 and len(a.wrap_key) == 32
    assert a.lookup_token != a.wrap_key
    other_pepper = derive_receipt_secrets(code, os.urandom(32), TEST_ARGON2)
    assert other_pepper.lookup_token != a.lookup_token
    assert other_pepper.wrap_key != a.wrap_key
    other_code = derive_receipt_secrets(normalize_receipt(generate_receipt()), PEPPER, TEST_ARGON2)
    assert other_code.lookup_token != a.lookup_token
    assert a.lookup_token.hex() not in repr(a) and a.wrap_key.hex() not in repr(a)


def test_wrap_round_trip_and_failures() -> None:
    code = normalize_receipt(generate_receipt())
    secrets = derive_receipt_secrets(code, PEPPER, TEST_ARGON2)
    case_key = new_case_key()
    wrapped = wrap_with_receipt(secrets, case_key, AAD)
    assert unwrap_with_receipt(secrets, wrapped, AAD) == case_key
    wrong = ReceiptSecrets(lookup_token=secrets.lookup_token, wrap_key=os.urandom(32))
    with pytest.raises(DecryptionError):
        unwrap_with_receipt(wrong, wrapped, AAD)
    with pytest.raises(DecryptionError):
        unwrap_with_receipt(secrets, wrapped, bind_aad("receipt", "23050002"))
    for i in range(len(wrapped)):
        tampered = bytearray(wrapped)
        tampered[i] ^= 0x04
        with pytest.raises(DecryptionError):
            unwrap_with_receipt(secrets, bytes(tampered), AAD)
    for n in range(len(wrapped)):
        with pytest.raises(DecryptionError):
            unwrap_with_receipt(secrets, wrapped[:n], AAD)
