"""Case numbers: YYMM and a monthly sequence (W1)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from portal.kernel.db.models import (
    CaseCounter,
)


async def allocate_case_number(session: AsyncSession, day: dt.date) -> str:
    """YYMM + a 4-digit monthly sequence (W1); an atomic upsert, safe under concurrency."""
    month = day.strftime("%y%m")
    dialect = session.bind.dialect.name if session.bind is not None else "sqlite"
    ins = postgresql.insert(CaseCounter) if dialect == "postgresql" else sqlite.insert(CaseCounter)
    stmt = (
        ins.values(month=month, last=1)
        .on_conflict_do_update(index_elements=["month"], set_={"last": CaseCounter.last + 1})
        .returning(CaseCounter.last)
    )
    seq = (await session.execute(stmt)).scalar_one()
    return f"{month}{seq:04d}"
