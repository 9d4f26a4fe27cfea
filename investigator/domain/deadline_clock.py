"""Deadline arithmetic on the working-day calendar (W10): due dates, lateness, the fraction of
the allowed time used and the warning level (50 / 80 / 100 = overdue). Pure functions.

A due date is never absent: ``settle_due`` computes it on the calendar, and when a year it
needs has no confirmed schedule, on Monday to Friday, marking the deadline ``provisional``
until the administrator confirms that year (``calendar_years.confirm_year`` recomputes it)."""

from __future__ import annotations

import datetime as dt

from investigator.domain.calendar import CalendarYearMissing, WorkCalendar
from portal.kernel import clock
from portal.kernel.db.models import CaseDeadline

# --- computing ------------------------------------------------------------------------------


def _utc(at: dt.datetime) -> dt.datetime:
    # written in UTC; SQLite hands back naive datetimes
    return at.replace(tzinfo=dt.UTC) if at.tzinfo is None else at.astimezone(dt.UTC)


def _extra(d: CaseDeadline) -> int:
    return d.paused_days + (d.extension_days if d.extended else 0)


def due_at_local(d: CaseDeadline) -> dt.datetime | None:
    """A minutes deadline's instant in Asia/Shanghai (None for day deadlines)."""
    return None if d.due_at is None else _utc(d.due_at).astimezone(clock.SHANGHAI)


def compute_due(cal: WorkCalendar, d: CaseDeadline) -> dt.date:
    total = d.amount + _extra(d)
    if d.unit == "working_days":
        return cal.add_working_days(d.starts_on, total)
    if d.unit == "calendar_days":
        return cal.add_calendar_days(d.starts_on, total)
    if d.unit == "months":
        return cal.add_months(d.starts_on, d.amount, _extra(d))
    assert d.due_at is not None
    return _utc(d.due_at).astimezone(clock.SHANGHAI).date()


def settle_due(cal: WorkCalendar, d: CaseDeadline) -> None:
    """Set ``d.due_on``, on the strict calendar when it covers every year the period needs,
    else provisionally on Monday to Friday (``d.provisional``)."""
    try:
        d.due_on, d.provisional = compute_due(cal, d), False
    except CalendarYearMissing:
        d.due_on, d.provisional = compute_due(cal.lenient(), d), True


def _units(cal: WorkCalendar, unit: str, after: dt.date, until: dt.date) -> int:
    """Units elapsed in (after, until]."""
    if until <= after:
        return 0
    if unit == "working_days":
        return cal.working_days_between(after, until)
    return (until - after).days


def open_pause_units(cal: WorkCalendar, d: CaseDeadline, today: dt.date) -> int:
    """Paused units of the running pause: days d with paused_since <= d < today."""
    if d.paused_since is None:
        return 0
    one = dt.timedelta(days=1)
    return _units(cal, d.unit, d.paused_since - one, today - one)


def is_overdue(d: CaseDeadline, today: dt.date, now: dt.datetime | None = None) -> bool:
    if d.met_on is not None:
        return d.met_on > d.due_on
    if d.unit == "minutes" and d.due_at is not None:
        return (now or clock.now()) > _utc(d.due_at)
    if d.paused_since is not None:
        return d.paused_since > d.due_on
    return today > d.due_on


def progress(
    d: CaseDeadline, today: dt.date, cal: WorkCalendar, now: dt.datetime | None = None
) -> float:
    """The fraction of the allowed time used (paused time excluded); above 1 when overdue.
    Counted on Monday to Friday where a year has no confirmed schedule yet."""
    cal = cal.lenient()
    if d.unit == "minutes":
        assert d.started_at is not None and d.due_at is not None
        at, start = now or clock.now(), _utc(d.started_at)
        span = (_utc(d.due_at) - start).total_seconds()
        return max(0.0, (at - start).total_seconds() / span) if span > 0 else 1.0
    until = d.met_on or today
    allowed = _units(cal, d.unit, d.starts_on, d.due_on) - d.paused_days
    used = _units(cal, d.unit, d.starts_on, until) - d.paused_days - open_pause_units(cal, d, until)
    if allowed <= 0:
        return 1.0
    fraction = max(0.0, used / allowed)
    if is_overdue(d, today, now):
        return max(fraction, 1.0 + 1e-9)
    return min(fraction, 1.0)


def level(
    d: CaseDeadline, today: dt.date, cal: WorkCalendar, now: dt.datetime | None = None
) -> int:
    """0, 50, 80 or 100 (overdue)."""
    if is_overdue(d, today, now):
        return 100
    fraction = progress(d, today, cal, now)
    return 80 if fraction >= 0.8 else 50 if fraction >= 0.5 else 0
