"""Notices in the workspace: every notice queued for a person (``notify_notices``), listed with
unread counts whether or not mail is configured. Framework-free.

The list never shows a notice about a case the person is excluded from (a subject of it or
conflicted: ``excluded_case_ids_clause``, the originals rule A2) nor about a destroyed case:
it is checked when the notice is queued and again here, so a person named as a subject after
the notice was queued does not see it, nor counts it. A notice carries a kind, a day and a
case number, never anything the reporter wrote.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import ColumnElement, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from investigator.policy import Principal, excluded_case_ids_clause, visible_cases_clause
from portal.kernel import audit, clock
from portal.kernel.db.models import Case, PendingNotice

PAGE_SIZE = 50


@dataclass(frozen=True)
class NoticeRow:
    id: int
    kind: str
    case_id: str | None
    number: str | None
    created_on: dt.date
    unread: bool
    openable: bool = False  # the person may open the case now (else the number, no link)


async def _visible(principal: Principal) -> ColumnElement[bool]:
    """A notice about no case, or about a case the principal may still hear about."""
    return or_(
        PendingNotice.case_id.is_(None),
        PendingNotice.case_id.in_(
            select(Case.id).where(
                Case.destroyed_on.is_(None), await excluded_case_ids_clause(principal)
            )
        ),
    )


async def list_notices(
    session: AsyncSession, principal: Principal, *, unread_only: bool = False, page: int = 1
) -> tuple[list[NoticeRow], int]:
    """One page of the person's notices, newest first, and how many there are in all."""
    where = [PendingNotice.user_id == principal.user_id, await _visible(principal)]
    if unread_only:
        where.append(PendingNotice.read_on.is_(None))
    total = int(
        (
            await session.execute(select(func.count()).select_from(PendingNotice).where(*where))
        ).scalar_one()
    )
    rows = await session.execute(
        select(PendingNotice, Case.number)
        .outerjoin(Case, Case.id == PendingNotice.case_id)
        .where(*where)
        .order_by(PendingNotice.id.desc())
        .limit(PAGE_SIZE)
        .offset((max(page, 1) - 1) * PAGE_SIZE)
    )
    found = rows.all()
    case_ids = sorted({n.case_id for n, _ in found if n.case_id is not None})
    openable: set[str] = set()
    if case_ids:
        openable = set(
            (
                await session.execute(
                    select(Case.id).where(
                        Case.id.in_(case_ids), await visible_cases_clause(principal)
                    )
                )
            ).scalars()
        )
    out = [
        NoticeRow(
            n.id,
            n.kind,
            n.case_id,
            number,
            n.created_on,
            n.read_on is None,
            n.case_id in openable,
        )
        for n, number in found
    ]
    return out, total


async def unread_counts(session: AsyncSession, principal: Principal) -> dict[str, int]:
    """Unread notices per kind (only those the person may see)."""
    rows = await session.execute(
        select(PendingNotice.kind, func.count())
        .where(
            PendingNotice.user_id == principal.user_id,
            PendingNotice.read_on.is_(None),
            await _visible(principal),
        )
        .group_by(PendingNotice.kind)
    )
    return {str(kind): int(n) for kind, n in rows.all()}


async def unread_total(session: AsyncSession, principal: Principal) -> int:
    return sum((await unread_counts(session, principal)).values())


async def mark_read(session: AsyncSession, principal: Principal, ids: list[int] | None) -> int:
    """Mark the person's notices read (``ids``, or all of them when None); audited."""
    where = [PendingNotice.user_id == principal.user_id, PendingNotice.read_on.is_(None)]
    if ids is not None:
        where.append(PendingNotice.id.in_(ids[:PAGE_SIZE]))
    result = await session.execute(
        update(PendingNotice).where(*where).values(read_on=clock.today())
    )
    count = int(getattr(result, "rowcount", 0) or 0)
    await audit.record(
        session, actor_user_id=principal.user_id, action="notify.read", detail=f"count={count}"
    )
    return count
