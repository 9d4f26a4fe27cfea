"""Crypto-shredding (C5): once every wrap of a case key is deleted, nothing that remains opens
the case's ciphertexts."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from crypto import (
    TEST_ARGON2,
    DecryptionError,
    FileHeader,
    bind_aad,
    create_keyring,
    decrypt_iter,
    derive_receipt_secrets,
    destroy_key,
    encrypt_iter,
    field_aad,
    generate_receipt,
    generate_staff_keys,
    new_case_key,
    normalize_receipt,
    open_sealed,
    seal_text,
    unlock_with_password,
    unwrap_for_recipient,
    unwrap_with_receipt,
    wrap_for_recipient,
    wrap_with_receipt,
)


@dataclass
class Store:
    """What a database + file store (+ backups taken after destruction) would contain."""

    fields: dict[tuple[str, str], bytes] = field(default_factory=dict)
    files: dict[str, bytes] = field(default_factory=dict)
    recipient_wraps: dict[tuple[str, str], bytes] = field(default_factory=dict)
    receipt_wraps: dict[bytes, tuple[str, bytes]] = field(default_factory=dict)


def test_destroy_key_zeroises_in_place() -> None:
    key = bytearray(os.urandom(32))
    address = id(key)
    destroy_key(key)
    assert key == bytearray(32) and id(key) == address
    destroy_key(bytearray())
    with pytest.raises(TypeError):
        destroy_key(b"immutable")  # type: ignore[arg-type]


def test_destroyed_case_is_unreadable_by_everything_that_remains(tmp_path: Path) -> None:
    keyring = create_keyring(tmp_path / "keys")
    alice, _ = generate_staff_keys("alice pw", TEST_ARGON2)
    bob, _ = generate_staff_keys("bob pw", TEST_ARGON2)
    staff = {"alice": alice, "bob": bob}
    store = Store()
    receipts: dict[str, str] = {}
    case_keys: dict[str, bytearray] = {}

    for case_id in ("23050001", "23050002"):
        case_key = bytearray(new_case_key())
        case_keys[case_id] = case_key
        store.fields[(case_id, "what_happened")] = seal_text(
            bytes(case_key), f"report text of {case_id}", field_aad(case_id, "what_happened")
        )
        store.files[case_id] = b"".join(
            encrypt_iter(
                bytes(case_key),
                bind_aad("file", case_id, "1"),
                FileHeader("scan.jpg", "image/jpeg"),
                [os.urandom(3000)],
            )
        )
        for user, keys in staff.items():
            store.recipient_wraps[(case_id, user)] = wrap_for_recipient(
                keys.public_key, bytes(case_key), bind_aad("recipient", case_id, user)
            )
        code = normalize_receipt(generate_receipt())
        receipts[case_id] = code
        secrets = derive_receipt_secrets(code, keyring.pepper, TEST_ARGON2)
        store.receipt_wraps[secrets.lookup_token] = (
            case_id,
            wrap_with_receipt(secrets, bytes(case_key), bind_aad("receipt", case_id)),
        )

    # Destroy case 23050001: delete every wrap of its key, zeroise the in-memory copy.
    victim = "23050001"
    for key in [k for k in store.recipient_wraps if k[0] == victim]:
        del store.recipient_wraps[key]
    for token in [t for t, (c, _) in store.receipt_wraps.items() if c == victim]:
        del store.receipt_wraps[token]
    destroy_key(case_keys.pop(victim))

    # Everything an attacker could still hold: the store, the keyring, every staff private
    # key, the other case's key (from its wraps), and even the victim's receipt code.
    private_keys = {
        u: unlock_with_password(k.sealed_private_by_password, f"{u} pw") for u, k in staff.items()
    }
    candidate_keys: list[bytes] = [keyring.pepper, keyring.server_key]
    for (case_id, user), wrapped in store.recipient_wraps.items():
        candidate_keys.append(
            unwrap_for_recipient(private_keys[user], wrapped, bind_aad("recipient", case_id, user))
        )
    victim_secrets = derive_receipt_secrets(receipts[victim], keyring.pepper, TEST_ARGON2)
    candidate_keys += [victim_secrets.wrap_key, victim_secrets.lookup_token]
    candidate_keys += list(private_keys.values())

    # The receipt code no longer finds anything.
    assert victim_secrets.lookup_token not in store.receipt_wraps
    # Remaining wraps (other case) never yield the victim's ciphertexts' key, whatever
    # private key or aad they are tried with.
    for (case_id, user), wrapped in store.recipient_wraps.items():
        assert case_id != victim
        for private in private_keys.values():
            with pytest.raises(DecryptionError):
                unwrap_for_recipient(private, wrapped, bind_aad("recipient", victim, user))
    for token, (case_id, wrapped) in store.receipt_wraps.items():
        with pytest.raises(DecryptionError):
            unwrap_with_receipt(victim_secrets, wrapped, bind_aad("receipt", case_id))

    for key in candidate_keys:
        with pytest.raises(DecryptionError):
            open_sealed(
                key, store.fields[(victim, "what_happened")], field_aad(victim, "what_happened")
            )
        with pytest.raises(DecryptionError):
            b"".join(decrypt_iter(key, bind_aad("file", victim, "1"), [store.files[victim]]))

    # The other case is intact.
    survivor = "23050002"
    recovered = unwrap_for_recipient(
        private_keys["bob"],
        store.recipient_wraps[(survivor, "bob")],
        bind_aad("recipient", survivor, "bob"),
    )
    assert recovered == bytes(case_keys[survivor])
    assert (
        open_sealed(
            recovered,
            store.fields[(survivor, "what_happened")],
            field_aad(survivor, "what_happened"),
        )
        == b"report text of 23050002"
    )
