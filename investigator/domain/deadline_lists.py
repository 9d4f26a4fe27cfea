"""Overdue deadlines for the workspace and accountability counts per handler (W15)."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from investigator.domain.deadline_clock import is_overdue
from investigator.policy import Principal, excluded_case_ids_clause, visible_cases_clause
from portal.kernel import clock
from portal.kernel.db.models import (
    AuditEntry,
    Case,
    CaseDeadline,
    User,
)

# --- lists for the workspace ----------------------------------------------------------------


@dataclass(frozen=True)
class OverdueRow:
    case_id: str
    number: str
    stage: str
    case_stage: str
    due_on: dt.date
    days_late: int
    handler: str | None
    paused: bool
    provisional: bool = False  # due date counted Monday to Friday: the year is not confirmed


async def overdue_cases(
    session: AsyncSession, principal: Principal, today: dt.date | None = None
) -> list[OverdueRow]:
    """Running deadlines past due on the cases the principal may open (never an excluded or
    destroyed case: ``visible_cases_clause``)."""
    today = today or clock.today()
    now = clock.now()
    rows = (
        await session.execute(
            select(CaseDeadline, Case.number, Case.stage, User.display_name)
            .join(Case, Case.id == CaseDeadline.case_id)
            .outerjoin(User, User.id == CaseDeadline.handler_id)
            .where(
                await visible_cases_clause(principal),
                CaseDeadline.met_on.is_(None),
                CaseDeadline.due_on <= today,
            )
            .order_by(CaseDeadline.due_on, Case.number)
        )
    ).all()
    out: list[OverdueRow] = []
    for d, number, case_stage, handler in rows:
        if not is_overdue(d, today, now):
            continue
        out.append(
            OverdueRow(
                case_id=d.case_id,
                number=number,
                stage=d.stage,
                case_stage=case_stage,
                due_on=d.due_on,
                days_late=(today - d.due_on).days,
                handler=handler,
                paused=d.paused_since is not None,
                provisional=d.provisional,
            )
        )
    return out


@dataclass(frozen=True)
class HandlerCount:
    handler_id: str
    name: str
    overdue_now: int
    closed_late: int
    closed: int
    handed_over: int = 0  # running deadlines passed on to another handler (推诿)


async def overdue_by_handler(
    session: AsyncSession, principal: Principal, today: dt.date | None = None
) -> list[HandlerCount]:
    """W15 (拖拉推诿): per handler, deadlines running past due now and deadlines met late.
    Counts only, and never over a case the principal is excluded from."""
    today = today or clock.today()
    now = clock.now()
    rows = (
        await session.execute(
            select(CaseDeadline, User.display_name)
            .join(Case, Case.id == CaseDeadline.case_id)
            .join(User, User.id == CaseDeadline.handler_id)
            .where(await excluded_case_ids_clause(principal), Case.destroyed_on.is_(None))
        )
    ).all()
    counts: dict[str, list[int]] = {}
    names: dict[str, str] = {}
    for d, name in rows:
        assert d.handler_id is not None
        names[d.handler_id] = name
        c = counts.setdefault(d.handler_id, [0, 0, 0])
        if d.met_on is None:
            c[0] += int(is_overdue(d, today, now))
        else:
            c[2] += 1
            c[1] += int(d.met_on > d.due_on)
    handed: dict[str, int] = {}
    details = (
        await session.execute(
            select(AuditEntry.detail)
            .join(Case, Case.id == AuditEntry.case_id)
            .where(
                AuditEntry.action == "deadline.handler_changed",
                await excluded_case_ids_clause(principal),
                Case.destroyed_on.is_(None),
            )
        )
    ).scalars()
    for detail in details:
        match = _FROM.search(detail)
        if match:
            handed[match.group(1)] = handed.get(match.group(1), 0) + 1
    for user_id in handed.keys() - names.keys():
        user = await session.get(User, user_id)
        names[user_id] = user.display_name if user is not None else user_id
        counts[user_id] = [0, 0, 0]
    out = [HandlerCount(h, names[h], c[0], c[1], c[2], handed.get(h, 0)) for h, c in counts.items()]
    return sorted(out, key=lambda r: (-r.overdue_now, -r.closed_late, -r.handed_over, r.name))


_FROM = re.compile(r"\bfrom=([0-9a-f]{32})\b")
