"""What a signed-in reporter holds, and the reach of a receipt into its cases."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from crypto.errors import CryptoError
from crypto.receipts import ReceiptSecrets, unwrap_with_receipt
from portal.case.sealing import wrap_aad
from portal.kernel.db.models import KeyWrap


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
    return keys
