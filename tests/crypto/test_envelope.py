from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crypto.envelope import (
    _padded_length,
    bind_aad,
    field_aad,
    new_case_key,
    open_sealed,
    open_text,
    seal,
    seal_text,
    sealed_key_id,
    sealed_suite,
)
from crypto.errors import DecryptionError
from crypto.suites import Suite

KEY = bytes(range(32))
AAD = field_aad("23050001", "what_happened")


@given(
    plaintext=st.binary(max_size=3000),
    aad=st.binary(max_size=64),
    suite=st.sampled_from(list(Suite)),
)
@settings(max_examples=150, deadline=None)
def test_round_trip_any_bytes(plaintext: bytes, aad: bytes, suite: Suite) -> None:
    blob = seal(KEY, plaintext, aad, suite=suite)
    assert open_sealed(KEY, blob, aad) == plaintext
    assert sealed_suite(blob) is suite


@given(text=st.text(max_size=500))
@settings(max_examples=100, deadline=None)
def test_text_round_trip(text: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        with pytest.raises(UnicodeEncodeError):
            seal_text(KEY, text, AAD)
        return
    assert open_text(KEY, seal_text(KEY, text, AAD), AAD) == text


def test_layout_and_key_id() -> None:
    blob = seal(KEY, b"hi", AAD, key_id=7)
    assert blob[:3] == b"E\x01\x01"
    assert sealed_key_id(blob) == 7
    assert len(blob) == 19 + 32 + 16
    assert open_sealed(KEY, blob, AAD) == b"hi"


def test_fresh_nonce_each_time() -> None:
    assert seal(KEY, b"same", AAD) != seal(KEY, b"same", AAD)


@pytest.mark.parametrize("suite", list(Suite))
def test_every_bit_flip_detected(suite: Suite) -> None:
    blob = seal(KEY, b"reporter name", AAD, suite=suite, key_id=3)
    for i in range(len(blob)):
        for bit in (0x01, 0x80):
            tampered = bytearray(blob)
            tampered[i] ^= bit
            with pytest.raises(DecryptionError):
                open_sealed(KEY, bytes(tampered), AAD)


def test_truncation_and_extension_detected() -> None:
    blob = seal(KEY, b"x" * 40, AAD)
    for n in range(len(blob)):
        with pytest.raises(DecryptionError):
            open_sealed(KEY, blob[:n], AAD)
    with pytest.raises(DecryptionError):
        open_sealed(KEY, blob + b"\x00", AAD)


def test_wrong_key_aad_suite() -> None:
    blob = seal(KEY, b"secret", AAD)
    with pytest.raises(DecryptionError):
        open_sealed(new_case_key(), blob, AAD)
    with pytest.raises(DecryptionError):
        open_sealed(KEY, blob, field_aad("23050001", "where"))
    with pytest.raises(DecryptionError):
        open_sealed(KEY, blob, field_aad("23050002", "what_happened"))
    # suite id rewritten: authenticated, so it fails
    swapped = blob[:2] + bytes([Suite.SM4GCM.value]) + blob[3:]
    with pytest.raises(DecryptionError):
        open_sealed(KEY, swapped, AAD)
    with pytest.raises(DecryptionError):
        open_sealed(KEY, blob[:2] + b"\x09" + blob[3:], AAD)


def test_bad_key_length_is_a_programming_error() -> None:
    with pytest.raises(ValueError):
        seal(b"short", b"x", AAD)


@given(
    a=st.lists(st.text(max_size=8), max_size=4),
    b=st.lists(st.text(max_size=8), max_size=4),
    pa=st.text(max_size=6),
    pb=st.text(max_size=6),
)
@settings(max_examples=300, deadline=None)
def test_bind_aad_is_injective(a: list[str], b: list[str], pa: str, pb: str) -> None:
    try:
        ea, eb = bind_aad(pa, *a), bind_aad(pb, *b)
    except UnicodeEncodeError:
        return
    assert (ea == eb) == ((pa, a) == (pb, b))


def test_field_aad_unambiguous() -> None:
    assert field_aad("ab", "c") != field_aad("a", "bc")
    assert field_aad("1", "x") == field_aad("1", "x")


def test_padding_hides_short_lengths() -> None:
    lengths = {len(seal(KEY, b"x" * n, AAD)) for n in range(32)}
    assert lengths == {19 + 32 + 16}
    for n in range(1, 5000):
        p = _padded_length(n)
        assert p >= n and p >= 32 and p <= max(32, n * 1.125)
