"""What the reporter side and the workspace share about a reporter's rights requests and
identity corrections (issue 18): the request kinds and the associated data of their seals.
The reporter side files requests and corrections (``portal.reporter.rights``); the workspace
decides and reads them (``investigator.domain.rights``)."""

from __future__ import annotations

from crypto.envelope import bind_aad, field_aad

REQUEST_KINDS = ("withdraw_report", "withdraw_identity")


def decision_aad(case_id: str, request_id: str) -> bytes:
    """Of the decision's reason, sealed under the request's reply key."""
    return field_aad(case_id, f"rights-decision:{request_id}")


def reply_key_aad(case_id: str, request_id: str) -> bytes:
    """Of the reply key's recipient wrap to the request's receipt-derived public key."""
    return bind_aad("rights-reply", case_id, request_id)


def correction_aad(case_id: str, correction_id: str) -> bytes:
    """Of an identity correction record, sealed under the identity key."""
    return field_aad(case_id, f"identity-correction:{correction_id}")
