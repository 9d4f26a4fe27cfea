"""The case lists of daily work (the inbox and "my cases"): filters, sorting, search by case
number, pages, and each case's current deadline with the working days left.

Framework-free. Every query ANDs ``policy.visible_cases_clause``: a subject or conflicted person
never sees the case in a row, in the count, or in a filter result. Lists show metadata only.

One page costs a fixed number of queries whatever its length: the rows (sorted and filtered,
with the current deadline as a subquery), the count (capped), the open deadlines of the rows on
the page (one ``IN`` query) and the working-day calendar.

The *current deadline* of a case is its running deadline (``met_on`` unset) due first. Its days
left are working days on the calendar (``investigator.domain.calendar``): 0 when due today,
negative when past due. Its state is ``overdue`` (``deadlines.is_overdue``), ``warning`` once
half of the allowed time is used (the 50 % and 80 % warnings of ``deadlines.level``), else
``ok``. When the calendar lacks a year the count falls back to Monday to Friday for that year
and says so (``provisional``): a deadline is never hidden for want of a calendar.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Subquery,
    and_,
    case,
    exists,
    func,
    or_,
    select,
)
from sqlalchemy.ext.asyncio import AsyncSession

from investigator.domain import deadline_clock as deadlines
from investigator.domain.calendar import CalendarYearMissing, WorkCalendar, load_calendar
from investigator.policy import Principal, visible_cases_clause
from portal.case.stage import PUBLIC_STAGES
from portal.kernel import clock
from portal.kernel.db.models import Case, CaseDeadline, Category

SEVERITIES: tuple[str, ...] = ("low", "medium", "high", "critical")
SORTS: tuple[str, ...] = ("number", "received", "channel", "category", "severity", "stage", "due")
PAGE_SIZES: tuple[int, ...] = (25, 50, 100)
PAGE_SIZE = 50
COUNT_CAP = 1000
MAX_PAGE = 1000
MAX_DUE_WITHIN = 366
STATES: tuple[str, ...] = ("ok", "warning", "overdue")


@dataclass(frozen=True)
class ListQuery:
    """What the person asked for; the web layer validates every value against the choices."""

    stages: tuple[str, ...] = ()
    category: str = ""
    channel: str = ""
    severity: str = ""
    due_within: int | None = None  # working days from today
    overdue: bool = False
    number: str = ""  # digits: the case numbers starting with them
    sort: str = ""  # one of SORTS, or "" for the default order
    descending: bool = False
    page: int = 1
    per_page: int = PAGE_SIZE


@dataclass(frozen=True)
class DeadlineView:
    stage: str  # the deadline's stage code (deadlines.CN_RULES / EU_RULES)
    due_on: dt.date
    days_left: int  # working days; negative when past due
    state: str  # one of STATES
    paused: bool
    provisional: bool  # counted Monday to Friday for a year the calendar lacks


@dataclass(frozen=True)
class CaseRow:
    case: Case
    deadline: DeadlineView | None


@dataclass(frozen=True)
class CasePage:
    rows: list[CaseRow]
    total: int  # up to COUNT_CAP; COUNT_CAP + 1 means "more"
    page: int
    per_page: int
    has_next: bool
    pages: int = field(default=1)  # pages known from the (capped) count


@dataclass(frozen=True)
class _Provisional(WorkCalendar):
    """The calendar, with Monday to Friday for the years it does not know; each day's answer is
    remembered (a page asks about the same few weeks fifty times)."""

    known: dict[dt.date, bool] = field(default_factory=dict, compare=False)

    def is_workday(self, day: dt.date) -> bool:
        answer = self.known.get(day)
        if answer is None:
            try:
                answer = super().is_workday(day)
            except CalendarYearMissing:
                answer = day.weekday() < 5
            self.known[day] = answer
        return answer


def provisional(cal: WorkCalendar) -> WorkCalendar:
    """``cal.lenient()``, remembering each day's answer."""
    return _Provisional(overrides=cal.overrides, confirmed=cal.confirmed, provisional=True)


def working_days_left(cal: WorkCalendar, today: dt.date, due_on: dt.date) -> int:
    """Working days from ``today`` to ``due_on``: 0 when due today, negative when past."""
    if due_on >= today:
        return cal.working_days_between(today, due_on)
    return -cal.working_days_between(due_on, today)


def _years_missing(cal: WorkCalendar, a: dt.date, b: dt.date) -> bool:
    lo, hi = min(a, b), max(a, b)
    return any(not cal.has_year(y) for y in range(lo.year, hi.year + 1))


def deadline_view(
    d: CaseDeadline, cal: WorkCalendar, today: dt.date, now: dt.datetime | None = None
) -> DeadlineView:
    """How a running deadline reads in a list."""
    missing = _years_missing(cal, d.starts_on, max(d.due_on, today))
    counting = cal if isinstance(cal, _Provisional) else provisional(cal)
    if deadlines.is_overdue(d, today, now):
        state = "overdue"
    else:
        state = "warning" if deadlines.level(d, today, counting, now) >= 50 else "ok"
    return DeadlineView(
        stage=d.stage,
        due_on=d.due_on,
        days_left=working_days_left(counting, today, d.due_on),
        state=state,
        paused=d.paused_since is not None,
        provisional=missing or d.provisional,
    )


def current_dues() -> Subquery:
    """Every case's current due date (case_id, due), for sorting a whole list by it."""
    return (
        select(CaseDeadline.case_id.label("case_id"), func.min(CaseDeadline.due_on).label("due"))
        .where(CaseDeadline.met_on.is_(None))
        .group_by(CaseDeadline.case_id)
        .subquery()
    )


def due_between(first: dt.date, last: dt.date) -> ColumnElement[bool]:
    """Cases whose current deadline falls in [first, last]: one due then, none earlier (two
    semi-joins, which the databases run over the deadlines in one pass)."""
    running = and_(CaseDeadline.case_id == Case.id, CaseDeadline.met_on.is_(None))
    return and_(
        exists().where(running, CaseDeadline.due_on.between(first, last)),
        ~exists().where(running, CaseDeadline.due_on < first),
    )


def overdue_clause(today: dt.date, now: dt.datetime) -> ColumnElement[bool]:
    """Cases with a running deadline past due: ``deadlines.is_overdue`` in SQL."""
    late = or_(
        and_(CaseDeadline.unit == "minutes", CaseDeadline.due_at < now.astimezone(dt.UTC)),
        and_(
            CaseDeadline.unit != "minutes",
            or_(
                and_(CaseDeadline.paused_since.is_(None), CaseDeadline.due_on < today),
                CaseDeadline.paused_since > CaseDeadline.due_on,
            ),
        ),
    )
    return exists().where(CaseDeadline.case_id == Case.id, CaseDeadline.met_on.is_(None), late)


def _ordered(values: Sequence[str], column: Any) -> ColumnElement[int]:
    return case({v: i for i, v in enumerate(values)}, value=column)  # NULL when unknown


_CATEGORY_NAME = {
    "zh_CN": Category.name_zh_cn,
    "zh_TW": Category.name_zh_tw,
    "en": Category.name_en,
}


async def case_page(
    session: AsyncSession,
    principal: Principal,
    query: ListQuery,
    *,
    locale: str = "zh_CN",
    today: dt.date | None = None,
) -> CasePage:
    """One page of the cases the principal may open, filtered and sorted as asked."""
    now = clock.now()
    today = today or now.date()
    cal = provisional(await load_calendar(session))  # one memo for the page
    # sorting by deadline reads every due date at once: one aggregate joined (hashed by
    # PostgreSQL); the filters are semi-joins (``due_between``, ``overdue_clause``)
    by_due = query.sort == "due"
    current_due = current_dues()
    where: list[ColumnElement[bool]] = [await visible_cases_clause(principal)]
    if query.stages:
        where.append(Case.stage.in_(query.stages))
    if query.category:
        where.append(Case.category == query.category)
    if query.channel:
        where.append(Case.channel == query.channel)
    if query.severity:
        where.append(Case.severity == query.severity)
    if query.number:
        where.append(Case.number.startswith(query.number, autoescape=True))
    if query.overdue:
        where.append(overdue_clause(today, now))
    if query.due_within is not None:
        until = cal.add_working_days(today, query.due_within)
        where.append(due_between(today, until))

    category_name = _CATEGORY_NAME.get(locale, Category.name_zh_cn)
    keys: dict[str, Any] = {
        "number": Case.number,
        "received": Case.received_on,
        "channel": Case.channel,
        "category": func.coalesce(category_name, Case.category),
        "severity": _ordered(SEVERITIES, Case.severity),
        "stage": _ordered(list(PUBLIC_STAGES), Case.stage),
        "due": current_due.c.due,
    }
    stmt = select(Case)
    if by_due:
        stmt = stmt.outerjoin(current_due, current_due.c.case_id == Case.id)
    stmt = stmt.where(*where)
    if query.sort == "category":
        stmt = stmt.outerjoin(Category, Category.code == Case.category)
    if query.sort in keys:
        key = keys[query.sort]
        first = key.desc() if query.descending else key.asc()
        # cases without a deadline (or a severity) come last either way
        if query.sort in ("due", "severity"):
            first = first.nulls_last()
        stmt = stmt.order_by(first, Case.number.desc())
    else:
        stmt = stmt.order_by(Case.urgent.desc(), Case.received_on.desc(), Case.number.desc())
    per_page = query.per_page if query.per_page in PAGE_SIZES else PAGE_SIZE
    page = min(max(query.page, 1), MAX_PAGE)
    found = list(
        (await session.execute(stmt.limit(per_page + 1).offset((page - 1) * per_page))).scalars()
    )
    has_next, cases = len(found) > per_page, found[:per_page]

    count_inner = select(Case.id).where(*where).limit(COUNT_CAP + 1).subquery()
    total = int((await session.execute(select(func.count()).select_from(count_inner))).scalar_one())

    current = await _current_deadlines(session, [c.id for c in cases])
    rows = [
        CaseRow(
            c,
            deadline_view(current[c.id], cal, today, now) if c.id in current else None,
        )
        for c in cases
    ]
    pages = max(1, -(-min(total, COUNT_CAP) // per_page))
    return CasePage(rows, total, page, per_page, has_next, pages)


async def _current_deadlines(session: AsyncSession, case_ids: list[str]) -> dict[str, CaseDeadline]:
    """The current deadline of each case, for a whole page in one query."""
    if not case_ids:
        return {}
    rows = (
        await session.execute(
            select(CaseDeadline)
            .where(CaseDeadline.case_id.in_(case_ids), CaseDeadline.met_on.is_(None))
            .order_by(CaseDeadline.due_on.desc(), CaseDeadline.due_at.desc(), CaseDeadline.id)
        )
    ).scalars()
    # due first wins: later rows of the same case overwrite earlier (later-due) ones
    return {d.case_id: d for d in rows}
