"""Known-answer tests for every primitive the package composes."""

from __future__ import annotations

import pytest
from argon2.low_level import ARGON2_VERSION, Type, core, ffi, lib
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.kdf.argon2 import Argon2id

from crypto import params, suites
from crypto._wire import hkdf_sha256
from crypto.errors import DecryptionError, SuiteUnavailableError
from crypto.recipients import public_key_of
from crypto.suites import Suite, aead_for, self_test, suite_by_name


def test_aes256gcm_nist_vector() -> None:
    kat = suites._AES_KAT
    aead = aead_for(Suite.AES256GCM, bytes.fromhex(kat["key"]))  # AES uses the key as is
    nonce, aad, pt = (bytes.fromhex(kat[k]) for k in ("nonce", "aad", "pt"))
    expected = bytes.fromhex(kat["ct"] + kat["tag"])
    assert aead.encrypt(nonce, pt, aad) == expected
    assert aead.decrypt(nonce, expected, aad) == pt
    # the recorded vector is the published one (McGrew-Viega test case 16)
    assert kat["tag"] == "76fc6ece0f4e1768cddf8853bb2d551b"


def test_aes256gcm_zero_vector() -> None:
    # McGrew-Viega test case 14: K = 0^256, P = 0^128, IV = 0^96.
    aead = aead_for(Suite.AES256GCM, bytes(32))
    assert aead.encrypt(bytes(12), bytes(16), b"").hex() == (
        "cea7403d4d606b6e074ec5d3baf39d18d0d1c8a799996bf0265b98b5d48ab919"
    )


def test_sm4_block_vector_gbt32907() -> None:
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    key = bytes.fromhex("0123456789abcdeffedcba9876543210")
    enc = Cipher(algorithms.SM4(key), modes.ECB()).encryptor()
    assert (enc.update(key) + enc.finalize()).hex() == "681edf34d206965e86b3e94f536e4246"


def test_sm4_gcm_rfc8998_vector() -> None:
    kat = suites._SM4_GCM_KAT
    aead = suites._Sm4Gcm(bytes.fromhex(kat["key"]))
    nonce, aad, pt = (bytes.fromhex(kat[k]) for k in ("nonce", "aad", "pt"))
    sealed = aead.encrypt(nonce, pt, aad)
    assert sealed[-16:].hex() == "83de3541e4c2b58177e065a9bf7b62ec"
    assert sealed[:-16].hex().startswith("17f399f08c67d5ee19d0dc9969c4bb7d")
    assert aead.decrypt(nonce, sealed, aad) == pt
    with pytest.raises(DecryptionError):
        aead.decrypt(nonce, sealed[:-1] + bytes([sealed[-1] ^ 1]), aad)


def test_x25519_rfc7748_vector() -> None:
    alice = bytes.fromhex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a")
    bob = bytes.fromhex("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb")
    alice_pub = public_key_of(alice)
    bob_pub = public_key_of(bob)
    assert alice_pub.hex() == "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"
    assert bob_pub.hex() == "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f"
    shared = X25519PrivateKey.from_private_bytes(alice).exchange(
        X25519PublicKey.from_public_bytes(bob_pub)
    )
    assert shared.hex() == "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742"


def test_hkdf_sha256_rfc5869_case1() -> None:
    okm = hkdf_sha256(
        b"\x0b" * 22,
        salt=bytes.fromhex("000102030405060708090a0b0c"),
        info=bytes.fromhex("f0f1f2f3f4f5f6f7f8f9"),
        length=42,
    )
    assert okm.hex() == (
        "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865"
    )


def test_hkdf_sha256_rfc5869_case3_no_salt_no_info() -> None:
    okm = hkdf_sha256(b"\x0b" * 22, salt=None, info=b"", length=42)
    assert okm.hex() == (
        "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8"
    )


RFC9106_TAG = "0d640df58d78766c08c037a34a8b53c9d01ef0452d75b65eb52520e96b01e659"


def test_argon2id_rfc9106_vector_libargon2() -> None:
    """RFC 9106 section 5.3, through libargon2 (the library derive_key calls)."""
    pwd, salt, secret, ad = b"\x01" * 32, b"\x02" * 16, b"\x03" * 8, b"\x04" * 12
    out = ffi.new("uint8_t[]", 32)
    c = {
        name: ffi.new("uint8_t[]", value)
        for name, value in (("pwd", pwd), ("salt", salt), ("secret", secret), ("ad", ad))
    }
    ctx = ffi.new(
        "argon2_context *",
        {
            "out": out,
            "outlen": 32,
            "pwd": c["pwd"],
            "pwdlen": len(pwd),
            "salt": c["salt"],
            "saltlen": len(salt),
            "secret": c["secret"],
            "secretlen": len(secret),
            "ad": c["ad"],
            "adlen": len(ad),
            "t_cost": 3,
            "m_cost": 32,
            "lanes": 4,
            "threads": 4,
            "version": ARGON2_VERSION,
            "allocate_cbk": ffi.NULL,
            "free_cbk": ffi.NULL,
            "flags": lib.ARGON2_DEFAULT_FLAGS,
        },
    )
    assert core(ctx, Type.ID.value) == lib.ARGON2_OK
    assert bytes(ffi.buffer(out, 32)).hex() == RFC9106_TAG


def test_argon2id_rfc9106_vector_openssl() -> None:
    kdf = Argon2id(
        salt=b"\x02" * 16,
        length=32,
        iterations=3,
        lanes=4,
        memory_cost=32,
        ad=b"\x04" * 12,
        secret=b"\x03" * 8,
    )
    assert kdf.derive(b"\x01" * 32).hex() == RFC9106_TAG


@pytest.mark.parametrize("p", [params.TEST_ARGON2, params.Argon2Params(64, 2, 2)])
def test_derive_key_matches_independent_implementation(p: params.Argon2Params) -> None:
    secret, salt = b"correct horse", b"saltsaltsaltsalt"
    ours = params.derive_key(secret, salt, 32, p)
    theirs = Argon2id(
        salt=salt, length=32, iterations=p.iterations, lanes=p.lanes, memory_cost=p.memory_kib
    ).derive(secret)
    assert ours == theirs


def test_sm3_vector() -> None:
    from cryptography.hazmat.primitives import hashes

    h = hashes.Hash(hashes.SM3())
    h.update(b"abc")
    assert h.finalize().hex() == (
        "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"
    )


@pytest.mark.parametrize("suite", list(Suite))
def test_self_test_passes(suite: Suite) -> None:
    self_test(suite)


def test_self_test_reports_missing_sm4(monkeypatch: pytest.MonkeyPatch) -> None:
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives.ciphers import algorithms

    def no_sm4(key: bytes) -> object:
        raise UnsupportedAlgorithm("no SM4 in this build")

    monkeypatch.setattr(algorithms, "SM4", no_sm4)
    with pytest.raises(SuiteUnavailableError):
        self_test(Suite.SM4GCM)


def test_self_test_detects_wrong_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    bad = dict(suites._AES_KAT, tag="00" * 16)
    monkeypatch.setattr(suites, "_AES_KAT", bad)
    with pytest.raises(SuiteUnavailableError):
        self_test(Suite.AES256GCM)


def test_suite_by_name() -> None:
    assert suite_by_name("aes256gcm") is Suite.AES256GCM
    assert suite_by_name(" SM4GCM\n") is Suite.SM4GCM
    assert Suite.AES256GCM.value == 1 and Suite.SM4GCM.value == 2
    with pytest.raises(ValueError):
        suite_by_name("chacha20")


# --- the 国密 profile: HKDF-SM3, HMAC-SM3 and SM4-GCM under a derived key ---------------------

HKDF_SM3_OKM = (
    "c69fe91b7aaee2dd5718d72dcaee0cce93f1b8e41f792da51261b6a517e68b36ed2c595572b01dfa359b"
)


def test_hkdf_sm3_pinned_vector() -> None:
    """RFC 5869 test case 1's inputs under SM3: computed once with this library, pinned."""
    okm = suites.hkdf(
        Suite.SM4GCM,
        b"\x0b" * 22,
        salt=bytes.fromhex("000102030405060708090a0b0c"),
        info=bytes.fromhex("f0f1f2f3f4f5f6f7f8f9"),
        length=42,
    )
    assert okm.hex() == HKDF_SM3_OKM


def test_hkdf_sm3_matches_rfc5869_built_from_hmac_sm3() -> None:
    """The pinned value is RFC 5869 (extract, then expand) over HMAC-SM3, rebuilt by hand."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives import hmac as c_hmac

    def mac(key: bytes, data: bytes) -> bytes:
        h = c_hmac.HMAC(key, hashes.SM3())
        h.update(data)
        return h.finalize()

    prk = mac(bytes.fromhex("000102030405060708090a0b0c"), b"\x0b" * 22)
    info = bytes.fromhex("f0f1f2f3f4f5f6f7f8f9")
    t1 = mac(prk, info + b"\x01")
    t2 = mac(prk, t1 + info + b"\x02")
    assert (t1 + t2)[:42].hex() == HKDF_SM3_OKM


def test_hmac_sm3_pinned_vector() -> None:
    digest = suites.keyed_hash(
        Suite.SM4GCM, b"key", b"The quick brown fox jumps over the lazy dog"
    ).hex()
    assert digest == "bd4a34077888162b210645b8ebf74b9af357303789357a27c7fc457244ebd398"
    # and the AES suite's keyed hash is HMAC-SHA256 (RFC 4231-style check with hashlib)
    import hashlib
    import hmac

    assert (
        suites.keyed_hash(Suite.AES256GCM, b"key", b"abc")
        == hmac.new(b"key", b"abc", hashlib.sha256).digest()
    )


def test_sm4gcm_under_a_32_byte_key_pinned_vector() -> None:
    """aead_for(SM4GCM, key): SM4-GCM under HKDF-SM3(key) (suites module docstring); pinned."""
    aead = aead_for(Suite.SM4GCM, bytes(range(32)))
    sealed = aead.encrypt(bytes(range(12)), "国密 profile".encode(), b"whistle-portal")
    assert sealed.hex() == "d4ab23da3e778e0c2c582d28043479e17eae2158ce17c0a5dddd96f85a96"
    assert aead.decrypt(bytes(range(12)), sealed, b"whistle-portal") == "国密 profile".encode()


@pytest.mark.parametrize(("suite", "entry"), [(Suite.AES256GCM, "sha256"), (Suite.SM4GCM, "sm3")])
def test_self_test_checks_the_suite_hkdf(
    monkeypatch: pytest.MonkeyPatch, suite: Suite, entry: str
) -> None:
    bad = dict(suites._HKDF_KAT, **{entry: "00" * 42})
    monkeypatch.setattr(suites, "_HKDF_KAT", bad)
    with pytest.raises(SuiteUnavailableError, match="HKDF"):
        self_test(suite)
