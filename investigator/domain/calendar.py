"""The Chinese working-day calendar (W10): statutory holidays and 调休 make-up working days.

Seeded from the ``chinesecalendar`` package (import name ``chinese_calendar``), which knows the
State Council's holiday notices for a range of years; the administrator's explicit overrides
(table ``calendar_days``) win over it. Days are dates in Asia/Shanghai (``portal.kernel.clock``).

A year the package does not know counts as *covered* only once an administrator entered and
confirmed its complete schedule (table ``calendar_years``, ``investigator.domain.calendar_years``);
a single override does not cover a year. Asking a strict calendar about a missing year raises
``CalendarYearMissing``; ``cal.lenient()`` answers Monday to Friday (plus any override already
entered) instead, and deadlines computed that way are marked *provisional*
(``deadline_clock.settle_due``) and recomputed when the year is confirmed. For a confirmed
year, days without an override are Monday to Friday.

    cal = await load_calendar(session)
    cal.is_workday(day)
    cal.add_working_days(start, n)     # the start day is not counted
    cal.add_calendar_days(start, n)    # a period ending on a rest day ends on the next working
                                       # day (民法典 第二百零三条)
    cal.working_days_between(a, b)     # working days d with a < d <= b
    cal.covered_years()
    cal.lenient()                      # the same calendar, Monday to Friday for missing years
"""

from __future__ import annotations

import calendar as _stdcal
import datetime as dt
from dataclasses import dataclass, field, replace

import chinese_calendar
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from portal.kernel import audit
from portal.kernel.db.engine import Database
from portal.kernel.db.models import CalendarDay, CalendarYear
from portal.kernel.readmostly import ReadMostly, register_warmer, touched

_MAX_SPAN = 3660  # days: no deadline runs for ten years; stops a runaway loop


class CalendarYearMissing(LookupError):
    """The calendar has no data for this year: the administrator must enter its holidays."""

    def __init__(self, year: int) -> None:
        super().__init__(f"no working-day calendar for {year}")
        self.year = year


def package_years() -> frozenset[int]:
    """The years the ``chinesecalendar`` package has holiday data for."""
    days = list(chinese_calendar.constants.holidays) + list(chinese_calendar.constants.workdays)
    return frozenset(d.year for d in days)


_PACKAGE_YEARS = package_years()


@dataclass(frozen=True)
class WorkCalendar:
    """The package's data plus the administrator's overrides (which win) and confirmed years.
    ``provisional``: answer Monday to Friday for a missing year instead of raising."""

    overrides: dict[dt.date, bool] = field(default_factory=dict)
    confirmed: frozenset[int] = frozenset()
    provisional: bool = False

    def covered_years(self) -> list[int]:
        """Every year the calendar can answer for: the package's years and confirmed years."""
        return sorted(_PACKAGE_YEARS | self.confirmed)

    def has_year(self, year: int) -> bool:
        return year in _PACKAGE_YEARS or year in self.confirmed

    def lenient(self) -> WorkCalendar:
        """This calendar answering Monday to Friday (and overrides) for a missing year."""
        return replace(self, provisional=True)

    def source(self, day: dt.date) -> str:
        """Where the answer for ``day`` comes from: override, package, weekday or missing."""
        if day in self.overrides:
            return "override"
        if day.year in _PACKAGE_YEARS:
            return "package"
        if self.has_year(day.year):
            return "weekday"
        return "missing"

    def is_workday(self, day: dt.date) -> bool:
        override = self.overrides.get(day)
        if override is not None and (self.provisional or self.has_year(day.year)):
            return override
        if day.year in _PACKAGE_YEARS:
            return bool(chinese_calendar.is_workday(day))
        if self.provisional or self.has_year(day.year):
            return day.weekday() < 5
        raise CalendarYearMissing(day.year)

    def next_workday(self, day: dt.date) -> dt.date:
        """``day`` itself when it is a working day, else the next working day."""
        for _ in range(_MAX_SPAN):
            if self.is_workday(day):
                return day
            day += dt.timedelta(days=1)
        raise CalendarYearMissing(day.year)  # pragma: no cover - a year without working days

    def add_working_days(self, start: dt.date, n: int) -> dt.date:
        """The n-th working day after ``start`` (``start`` itself is not counted)."""
        if n < 0:
            raise ValueError("n must not be negative")
        day, counted = start, 0
        while counted < n:
            day += dt.timedelta(days=1)
            if (day - start).days > _MAX_SPAN:
                raise ValueError("period too long")
            if self.is_workday(day):
                counted += 1
        return day

    def add_calendar_days(self, start: dt.date, n: int) -> dt.date:
        """``start`` + n days; a period ending on a holiday or rest day ends on the next
        working day (民法典 203)."""
        if n < 0:
            raise ValueError("n must not be negative")
        return self.next_workday(start + dt.timedelta(days=n))

    def add_months(self, start: dt.date, n: int, extra_days: int = 0) -> dt.date:
        """The same day n months later (the month's last day when it has no such day), plus
        ``extra_days``, rolled to the next working day (民法典 201, 203)."""
        month0 = start.month - 1 + n
        year, month = start.year + month0 // 12, month0 % 12 + 1
        day = min(start.day, _stdcal.monthrange(year, month)[1])
        return self.add_calendar_days(dt.date(year, month, day), extra_days)

    def working_days_between(self, after: dt.date, until: dt.date) -> int:
        """Working days d with ``after`` < d <= ``until`` (0 when ``until`` <= ``after``)."""
        count, day = 0, after
        while day < until:
            day += dt.timedelta(days=1)
            if self.is_workday(day):
                count += 1
        return count

    def year_days(self, year: int) -> list[tuple[dt.date, bool, str]]:
        """Every day of ``year`` that is not an ordinary weekday/weekend: holidays on weekdays,
        working weekends and overrides, as (day, is_workday, source). Raises when missing."""
        out: list[tuple[dt.date, bool, str]] = []
        day = dt.date(year, 1, 1)
        while day.year == year:
            work = self.is_workday(day)
            source = self.source(day)
            if source == "override" or work != (day.weekday() < 5):
                out.append((day, work, source))
            day += dt.timedelta(days=1)
        return out


_Entries = tuple[dict[dt.date, bool], frozenset[int]]
#: the administrator's overrides and confirmed years, per database engine: read-mostly (every
#: new case's deadlines read them)
ENTRIES: ReadMostly[_Entries] = ReadMostly(
    "calendar", (CalendarDay.__tablename__, CalendarYear.__tablename__)
)


async def _entries(session: AsyncSession) -> _Entries:
    rows = (await session.execute(select(CalendarDay.day, CalendarDay.is_workday))).all()
    years = (await session.execute(select(CalendarYear.year))).scalars()
    return {r.day: bool(r.is_workday) for r in rows}, frozenset(years)


async def load_calendar(session: AsyncSession) -> WorkCalendar:
    """The calendar with the administrator's overrides and confirmed years: cached
    (``ENTRIES``, per write engine), or read in the caller's transaction when it is cold or
    this transaction has changed them (then not cached: not committed yet)."""
    sync = session.sync_session
    if touched(sync, CalendarDay.__tablename__) or touched(sync, CalendarYear.__tablename__):
        overrides, years = await _entries(session)
    else:
        overrides, years = await ENTRIES.get(sync.get_bind(), lambda: _entries(session))
    return WorkCalendar(overrides=dict(overrides), confirmed=years)


async def _warm_entries(db: Database) -> None:
    """Every new case's deadlines read the calendar inside the submission's write
    transaction: reload a stale one before it (``portal.kernel.readmostly.warm``)."""
    engine = db.engine.sync_engine
    if ENTRIES.is_fresh(engine):
        return
    async with db.read() as s:
        await ENTRIES.get(engine, lambda: _entries(s), fresh=True)


register_warmer(_warm_entries)


async def covered_years(session: AsyncSession) -> list[int]:
    return (await load_calendar(session)).covered_years()


async def set_override(
    session: AsyncSession, day: dt.date, is_workday: bool, note: str, actor: str
) -> None:
    """The administrator declares ``day`` a working day or a rest day (audited)."""
    row = await session.get(CalendarDay, day)
    if row is None:
        session.add(CalendarDay(day=day, is_workday=is_workday, note=note[:200], set_by=actor))
    else:
        row.is_workday, row.note, row.set_by = is_workday, note[:200], actor
    await audit.record(
        session,
        actor_user_id=actor,
        action="calendar.override",
        detail=f"day={day.isoformat()} workday={is_workday}",
    )


async def remove_override(session: AsyncSession, day: dt.date, actor: str) -> bool:
    row = await session.get(CalendarDay, day)
    if row is None:
        return False
    await session.delete(row)
    await audit.record(
        session,
        actor_user_id=actor,
        action="calendar.override_removed",
        detail=f"day={day.isoformat()}",
    )
    return True


async def overrides_in(session: AsyncSession, year: int) -> list[CalendarDay]:
    rows = (
        await session.execute(
            select(CalendarDay)
            .where(CalendarDay.day >= dt.date(year, 1, 1), CalendarDay.day <= dt.date(year, 12, 31))
            .order_by(CalendarDay.day)
        )
    ).scalars()
    return list(rows)
