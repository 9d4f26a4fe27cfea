"""The receipt's reply key (issue 18): a staff member seals the reason of a decision to a
public key derived from the reporter's receipt; only the receipt's holder derives the private
key (crypto.receipts.receipt_reply_private_key; docs/security.md, "Reporter rights")."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from crypto.errors import DecryptionError
from crypto.receipts import receipt_reply_private_key
from crypto.recipients import public_key_of, unwrap_for_recipient, wrap_for_recipient
from crypto.suites import Suite

WRAP_KEY = bytes(range(32))
LABEL = "0123456789abcdef0123456789abcdef"


def test_known_answer_hkdf_sha256_built_by_hand() -> None:
    """RFC 5869 with an empty salt, computed here from HMAC-SHA256 alone."""
    info = b"whistle-portal/v1/receipt/reply-key/" + LABEL.encode()
    prk = hmac.new(b"\x00" * 32, WRAP_KEY, hashlib.sha256).digest()
    okm = hmac.new(prk, info + b"\x01", hashlib.sha256).digest()
    assert receipt_reply_private_key(WRAP_KEY, LABEL) == okm
    assert okm.hex() == "580490dc77ce37655c0456b30a7068b00a946f4ed1f825772afcd009af3abdea"


def test_sm3_suite_pinned() -> None:
    key = receipt_reply_private_key(WRAP_KEY, LABEL, suite=Suite.SM4GCM)
    assert key.hex() == "ceef29844eec96ae39bf72a1e123e15cebdd968587b65faa4a80a492989554e1"


@pytest.mark.parametrize("suite", [Suite.AES256GCM, Suite.SM4GCM])
def test_only_the_same_receipt_and_request_open_the_answer(suite: Suite) -> None:
    private = receipt_reply_private_key(WRAP_KEY, LABEL, suite=suite)
    secret = bytes(32)
    wrapped = wrap_for_recipient(public_key_of(private), secret, b"aad", suite=suite)
    assert unwrap_for_recipient(private, wrapped, b"aad") == secret
    for other in (
        receipt_reply_private_key(bytes(32), LABEL, suite=suite),  # another receipt
        receipt_reply_private_key(WRAP_KEY, "f" * 32, suite=suite),  # another request
    ):
        with pytest.raises(DecryptionError):
            unwrap_for_recipient(other, wrapped, b"aad")
    with pytest.raises(ValueError):
        receipt_reply_private_key(b"short", LABEL)
