"""Confirming a year of the working-day calendar (W10): a complete schedule, entered at once.

A year the ``chinesecalendar`` package does not know counts as covered only after an
administrator enters its complete schedule in one form (the holiday ranges and the 调休
make-up working days) and confirms it. ``parse_schedule`` validates the form against the year:

* every date lies in the year; a range runs forwards; ranges do not overlap;
* the fixed-date statutory holidays fall in a holiday range (元旦 1 January, 劳动节 1 May,
  国庆 1 to 3 October), and the ranges hold at least ``MIN_HOLIDAY_DAYS`` days (the statutory
  holidays alone are 13 days since 2025);
* a make-up working day is a Saturday or a Sunday outside every holiday range.

``confirm_year`` replaces the year's overrides with the schedule, records the year as
confirmed and recomputes every running provisional deadline on the confirmed calendar, each
audited. A deadline whose date the reporter is told (``REPORTER_TOLD``: the periods promised
to the reporter, for example "the outcome within the handling period") keeps its date: the
reporter's date never changes after the fact; it is simply no longer provisional.

``years_to_confirm(cal, today)``: the current year when missing, and from 1 November the next
year when missing (the administrator's home asks for it).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from itertools import pairwise

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from investigator.domain.calendar import WorkCalendar, load_calendar
from investigator.domain.deadline_clock import settle_due
from portal.kernel import audit, clock
from portal.kernel.db.models import CalendarDay, CalendarYear, CaseDeadline

MIN_HOLIDAY_DAYS = 13
ASK_FROM_MONTH = 11  # from 1 November the next year's schedule is asked for
REPORTER_TOLD = frozenset({"handling", "rehandling", "feedback", "acknowledgement", "eu_feedback"})
_MAX_LINES = 60
_DATE = r"(\d{4}-\d{1,2}-\d{1,2})"
_RANGE = re.compile(rf"^{_DATE}(?:\s*(?:\.\.|~|～|至|到|–|—|-|to)\s*{_DATE})?\s*(.*)$")


class ScheduleError(ValueError):
    """The schedule is refused; ``msgid`` and ``params`` say why (translated by the page)."""

    def __init__(self, msgid: str, **params: object) -> None:
        super().__init__(msgid)
        self.msgid = msgid
        self.params = params


@dataclass(frozen=True)
class Holiday:
    first: dt.date
    last: dt.date
    name: str

    def days(self) -> list[dt.date]:
        return [self.first + dt.timedelta(days=i) for i in range((self.last - self.first).days + 1)]


@dataclass(frozen=True)
class Schedule:
    year: int
    holidays: tuple[Holiday, ...]
    workdays: tuple[tuple[dt.date, str], ...]


@dataclass(frozen=True)
class Recomputed:
    deadline_id: str
    case_id: str
    old_due: dt.date
    new_due: dt.date
    kept: bool  # the reporter's date: unchanged


def _date(raw: str, year: int, line: int) -> dt.date:
    try:
        day = dt.date.fromisoformat("-".join(p.zfill(2) for p in raw.split("-")))
    except ValueError:
        raise ScheduleError("Line %(line)s: this is not a date (YYYY-MM-DD).", line=line) from None
    if day.year != year:
        raise ScheduleError("Line %(line)s: the date is not in %(year)s.", line=line, year=year)
    return day


def _lines(text: str) -> list[tuple[int, str]]:
    out = [(n, raw.strip()) for n, raw in enumerate(text.splitlines(), 1) if raw.strip()]
    if len(out) > _MAX_LINES:
        raise ScheduleError("Too many lines: at most %(n)s.", n=_MAX_LINES)
    return out


def parse_schedule(year: int, holidays_text: str, workdays_text: str) -> Schedule:
    """The schedule of ``year`` from the form's two lists, or ``ScheduleError``."""
    holidays: list[Holiday] = []
    for n, line in _lines(holidays_text):
        match = _RANGE.match(line)
        if match is None:
            raise ScheduleError("Line %(line)s: this is not a date (YYYY-MM-DD).", line=n)
        first = _date(match.group(1), year, n)
        last = _date(match.group(2), year, n) if match.group(2) else first
        if last < first:
            raise ScheduleError("Line %(line)s: the range ends before it starts.", line=n)
        holidays.append(Holiday(first, last, match.group(3).strip()[:100]))
    if not holidays:
        raise ScheduleError("Enter the holiday ranges of the year.")
    holidays.sort(key=lambda h: h.first)
    for a, b in pairwise(holidays):
        if b.first <= a.last:
            raise ScheduleError(
                "The holiday ranges starting %(a)s and %(b)s overlap.",
                a=a.first.isoformat(),
                b=b.first.isoformat(),
            )
    off = {d for h in holidays for d in h.days()}
    for fixed in ((1, 1), (5, 1), (10, 1), (10, 2), (10, 3)):
        day = dt.date(year, *fixed)
        if day not in off:
            raise ScheduleError(
                "%(day)s is a statutory holiday: the schedule must include it.",
                day=day.isoformat(),
            )
    if len(off) < MIN_HOLIDAY_DAYS:
        raise ScheduleError(
            "The holiday ranges hold only %(n)s days: a complete year has at least %(min)s.",
            n=len(off),
            min=MIN_HOLIDAY_DAYS,
        )
    workdays: list[tuple[dt.date, str]] = []
    for n, line in _lines(workdays_text):
        match = _RANGE.match(line)
        if match is None or match.group(2):
            raise ScheduleError("Line %(line)s: this is not a date (YYYY-MM-DD).", line=n)
        day = _date(match.group(1), year, n)
        if day.weekday() < 5:
            raise ScheduleError(
                "%(day)s is a weekday: a make-up working day is a Saturday or a Sunday.",
                day=day.isoformat(),
            )
        if day in off:
            raise ScheduleError("%(day)s is inside a holiday range.", day=day.isoformat())
        workdays.append((day, match.group(3).strip()[:100]))
    if len({d for d, _ in workdays}) != len(workdays):
        raise ScheduleError("A make-up working day is listed twice.")
    return Schedule(year, tuple(holidays), tuple(sorted(workdays)))


def schedule_text(days: list[CalendarDay]) -> tuple[str, str]:
    """The two lists of the form from a year's stored overrides (rest-day runs as ranges)."""
    ranges: list[list[dt.date | str]] = []
    workdays: list[str] = []
    for row in sorted(days, key=lambda r: r.day):
        if row.is_workday:
            workdays.append(f"{row.day.isoformat()} {row.note}".strip())
            continue
        last = ranges[-1] if ranges else None
        if last is not None and last[1] == row.day - dt.timedelta(days=1) and last[2] == row.note:
            last[1] = row.day
        else:
            ranges.append([row.day, row.day, row.note])
    lines = []
    for first, last_day, note in ranges:
        assert isinstance(first, dt.date) and isinstance(last_day, dt.date)
        span = first.isoformat() if first == last_day else f"{first} .. {last_day}"
        lines.append(f"{span} {note}".strip())
    return "\n".join(lines), "\n".join(workdays)


def years_to_confirm(cal: WorkCalendar, today: dt.date) -> list[int]:
    """The years the administrator must confirm now: this year when missing, and from
    1 November the next year when missing."""
    years = [today.year] if not cal.has_year(today.year) else []
    if today.month >= ASK_FROM_MONTH and not cal.has_year(today.year + 1):
        years.append(today.year + 1)
    return years


async def provisional_count(session: AsyncSession) -> int:
    rows = await session.execute(
        select(CaseDeadline.id).where(
            CaseDeadline.provisional.is_(True), CaseDeadline.met_on.is_(None)
        )
    )
    return len(rows.all())


async def confirm_year(session: AsyncSession, schedule: Schedule, actor: str) -> list[Recomputed]:
    """Store ``schedule`` as the year's complete calendar, mark the year confirmed and
    recompute the provisional deadlines (all audited); returns what was recomputed."""
    year = schedule.year
    await session.execute(
        delete(CalendarDay).where(
            CalendarDay.day >= dt.date(year, 1, 1), CalendarDay.day <= dt.date(year, 12, 31)
        )
    )
    for h in schedule.holidays:
        for day in h.days():
            session.add(CalendarDay(day=day, is_workday=False, note=h.name, set_by=actor))
    for day, note in schedule.workdays:
        session.add(CalendarDay(day=day, is_workday=True, note=note, set_by=actor))
    row = await session.get(CalendarYear, year)
    if row is None:
        session.add(CalendarYear(year=year, confirmed_by=actor, confirmed_on=clock.today()))
    else:
        row.confirmed_by, row.confirmed_on = actor, clock.today()
    await session.flush()
    days = sum(len(h.days()) for h in schedule.holidays)
    await audit.record(
        session,
        actor_user_id=actor,
        action="calendar.year_confirmed",
        detail=f"year={year} holiday_ranges={len(schedule.holidays)} holiday_days={days} "
        f"workdays={len(schedule.workdays)}",
    )
    return await recompute_provisional(session, actor)


async def recompute_provisional(session: AsyncSession, actor: str | None) -> list[Recomputed]:
    """Recompute every running provisional deadline on the current calendar; a deadline still
    needing a missing year stays provisional. Reporter-told dates keep their day."""
    cal = await load_calendar(session)
    rows = (
        await session.execute(
            select(CaseDeadline)
            .where(CaseDeadline.provisional.is_(True), CaseDeadline.met_on.is_(None))
            .order_by(CaseDeadline.due_on, CaseDeadline.id)
        )
    ).scalars()
    out: list[Recomputed] = []
    for d in list(rows):
        old = d.due_on
        settle_due(cal, d)  # still provisional when it runs into another missing year
        kept = d.stage in REPORTER_TOLD and d.due_on != old
        if kept:
            d.due_on = old
        out.append(Recomputed(d.id, d.case_id, old, d.due_on, kept))
        await audit.record(
            session,
            actor_user_id=actor,
            action="deadline.recomputed",
            case_id=d.case_id,
            detail=f"deadline={d.id} stage={d.stage} from={old.isoformat()} "
            f"to={d.due_on.isoformat()} reporter_date_kept={kept} provisional={d.provisional}",
        )
    return out
