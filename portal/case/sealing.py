"""Sealing helpers of the case core: JSON under a case key, server sub-keys, wraps for staff."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from crypto.envelope import field_aad, open_sealed, seal
from crypto.recipients import wrap_for_recipient
from crypto.suites import Suite, suite_by_id
from portal.kernel.db.models import (
    Case,
    KeyWrap,
    User,
)
from portal.kernel.services import Services


def seal_json(key: bytes, obj: Any, aad: bytes, services: Services) -> bytes:
    data = json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()
    return seal(key, data, aad, suite=services.keyring.suite)


def open_json(key: bytes, blob: bytes, aad: bytes) -> Any:
    return json.loads(open_sealed(key, blob, aad))


def server_subkey(services: Services, label: str) -> bytes:
    return hmac.new(services.keyring.server_key, label.encode(), hashlib.sha256).digest()


def wrap_aad(case_id: str, scope: str, reader: str) -> bytes:
    return field_aad(case_id, f"wrap:{scope}:{reader}")


def case_suite(case: Case) -> Suite:
    """The suite a case was sealed under (the installation's at arrival): its wraps follow it."""
    return suite_by_id(case.suite)


async def case_suite_of(session: AsyncSession, case_id: str) -> Suite:
    suite_id = (await session.execute(select(Case.suite).where(Case.id == case_id))).scalar_one()
    return suite_by_id(suite_id)


def grant_user(
    session: AsyncSession, case_id: str, scope: str, key: bytes, user: User, suite: Suite
) -> None:
    """Add ``user``'s wrap of ``key`` (``suite``: the installation's, ``keyring.suite``)."""
    session.add(
        KeyWrap(
            case_id=case_id,
            scope=scope,
            user_id=user.id,
            wrapped=wrap_for_recipient(
                user.public_key, key, wrap_aad(case_id, scope, user.id), suite=suite
            ),
        )
    )


def reward_claim_aad(case_id: str, reward_id: str) -> bytes:
    """AAD of a reporter's reward claim (sealed for the reward officers only, W11)."""
    return field_aad(case_id, f"reward-claim:{reward_id}")
