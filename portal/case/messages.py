"""Messages between the reporter and the staff handling a case, sealed under the case key."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from crypto.envelope import field_aad
from portal.case.sealing import seal_json
from portal.kernel import clock
from portal.kernel.db.models import Message, new_id
from portal.kernel.services import Services


async def add_message(
    services: Services,
    session: AsyncSession,
    case_id: str,
    key: bytes,
    text: str,
    *,
    author: str,
    author_user_id: str | None = None,
) -> Message:
    seq = (
        await session.execute(
            select(func.coalesce(func.max(Message.seq), 0)).where(Message.case_id == case_id)
        )
    ).scalar_one()
    mid = new_id()
    msg = Message(
        id=mid,
        case_id=case_id,
        author=author,
        author_user_id=author_user_id,
        sealed=seal_json(key, {"text": text}, field_aad(case_id, f"message:{mid}"), services),
        created_on=clock.today(),
        seq=int(seq) + 1,
    )
    session.add(msg)
    return msg
