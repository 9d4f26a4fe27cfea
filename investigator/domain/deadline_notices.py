"""Warnings at 50% and 80% of the time used and overdue notices (督办), each once per deadline
and level, to the handler and their superior (``users.superior_id``): ``due_notices`` records
a CaseEvent and an audit entry per notice; ``investigator.domain.notify`` delivers them.

An overdue case that no staff member has opened yet (no ``case.view`` in the audit log) is
marked ``unopened``: the notifier then also tells every intake officer and approver, by name,
besides the handler and their superior (whoever is excluded from the case is never told)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import exists, select
from sqlalchemy.ext.asyncio import AsyncSession

from investigator.domain.calendar import load_calendar
from investigator.domain.deadline_clock import level
from investigator.policy import is_excluded_user
from portal.case.events import add_event
from portal.kernel import audit, clock
from portal.kernel.db.models import AuditEntry, Case, CaseDeadline, User
from portal.kernel.services import Services

# --- warnings and 督办 -------------------------------------------------------------------------


@dataclass(frozen=True)
class Notice:
    case_id: str
    deadline_id: str
    stage: str
    level: int  # 50, 80 or 100 (overdue: 督办)
    handler_id: str | None
    superior_id: str | None
    unopened: bool = False  # overdue and nobody opened the case: intake and approvers too


async def _unopened(session: AsyncSession, case_id: str) -> bool:
    stmt = select(exists().where(AuditEntry.case_id == case_id, AuditEntry.action == "case.view"))
    return not bool((await session.execute(stmt)).scalar())


async def due_notices(session: AsyncSession, today: dt.date | None = None) -> list[Notice]:
    """Record, once per deadline and level, the 50% / 80% / overdue notices now due: a
    CaseEvent and an audit entry each. The handler and their superior are the recipients,
    unless excluded from the case (subject or conflict): they are never told about it."""
    today = today or clock.today()
    now = clock.now()
    cal = await load_calendar(session)
    rows = (
        await session.execute(
            select(CaseDeadline)
            .join(Case, Case.id == CaseDeadline.case_id)
            .where(
                CaseDeadline.met_on.is_(None),
                CaseDeadline.paused_since.is_(None),
                CaseDeadline.notice_level < 100,
                Case.destroyed_on.is_(None),
            )
            .order_by(CaseDeadline.due_on, CaseDeadline.id)
        )
    ).scalars()
    notices: list[Notice] = []
    for d in list(rows):
        lvl = level(d, today, cal, now)
        if lvl <= d.notice_level:
            continue
        d.notice_level = lvl
        handler = d.handler_id
        if handler is not None and await is_excluded_user(session, d.case_id, handler):
            handler = None
        superior: str | None = None
        if d.handler_id is not None:
            superior = (
                await session.execute(select(User.superior_id).where(User.id == d.handler_id))
            ).scalar_one_or_none()
            if superior is not None and await is_excluded_user(session, d.case_id, superior):
                superior = None
        unopened = lvl == 100 and await _unopened(session, d.case_id)
        kind = "deadline_overdue" if lvl == 100 else f"deadline_warning_{lvl}"
        add_event(session, d.case_id, kind, public=False, actor=None)
        await audit.record(
            session,
            actor_user_id=None,
            action="deadline.overdue_notice" if lvl == 100 else "deadline.warning",
            case_id=d.case_id,
            detail=f"deadline={d.id} stage={d.stage} level={lvl} handler={handler or '-'} "
            f"superior={superior or '-'} unopened={'yes' if unopened else 'no'}",
        )
        notices.append(Notice(d.case_id, d.id, d.stage, lvl, handler, superior, unopened))
    return notices


async def run_due_notices(services: Services) -> list[Notice]:
    """One pass of the warning job (for a scheduler or the command line)."""
    async with services.db.write() as s:
        return await due_notices(s)
