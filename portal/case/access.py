"""What a signed-in reporter holds, and the reach of a receipt into its cases."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from crypto.envelope import field_aad, open_sealed
from crypto.errors import CryptoError
from crypto.receipts import ReceiptSecrets, unwrap_with_receipt
from portal.case.sealing import wrap_aad
from portal.kernel.db.models import Case, KeyWrap


class NotYours(Exception):
    """The reporter's receipt does not open this case."""


@dataclass(frozen=True)
class ReporterAccess:
    """What a signed-in reporter holds: the receipt row and the key its code derives."""

    receipt_id: str
    wrap_key: bytes
    lookup_token: bytes

    def secrets(self) -> ReceiptSecrets:
        return ReceiptSecrets(lookup_token=self.lookup_token, wrap_key=self.wrap_key)


async def reporter_case_keys(session: AsyncSession, access: ReporterAccess) -> dict[str, bytes]:
    wraps = (
        await session.execute(
            select(KeyWrap).where(KeyWrap.receipt_id == access.receipt_id, KeyWrap.scope == "case")
        )
    ).scalars()
    keys: dict[str, bytes] = {}
    for w in wraps:
        try:
            keys[w.case_id] = unwrap_with_receipt(
                access.secrets(), w.wrapped, wrap_aad(w.case_id, "case", access.receipt_id)
            )
        except CryptoError:
            continue
    # a case split from one of them at triage (W3): its key is sealed under the original's
    # key, with the same receipt (investigator.domain.split)
    split = (
        await session.execute(
            select(KeyWrap, Case.linked_case_id)
            .join(Case, Case.id == KeyWrap.case_id)
            .where(KeyWrap.receipt_id == access.receipt_id, KeyWrap.scope == "split")
        )
    ).all()
    for w, parent in split:
        if parent not in keys:
            continue
        try:
            keys[w.case_id] = open_sealed(
                keys[parent], w.wrapped, field_aad(w.case_id, f"split-from:{parent}")
            )
        except CryptoError:
            continue
    return keys
