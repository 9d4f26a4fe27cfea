"""Statistics periods (W14): a month, a quarter, a year or a custom range, parsed from a query."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass

PERIOD_KINDS = ("month", "quarter", "year", "custom")


MAX_CUSTOM_DAYS = 3 * 366


class PeriodError(ValueError):
    """A period the viewer asked for that makes no sense; the message is a msgid."""


@dataclass(frozen=True)
class Period:
    kind: str
    start: dt.date
    end: dt.date  # inclusive

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def previous(self) -> Period:
        if self.kind == "month":
            first = (self.start - dt.timedelta(days=1)).replace(day=1)
            return month_period(first.year, first.month)
        if self.kind == "quarter":
            first = (self.start - dt.timedelta(days=1)).replace(day=1)
            return quarter_period(first.year, (first.month - 1) // 3 + 1)
        if self.kind == "year":
            return year_period(self.start.year - 1)
        end = self.start - dt.timedelta(days=1)
        return Period("custom", end - dt.timedelta(days=self.days - 1), end)

    @property
    def label(self) -> str:
        if self.kind == "month":
            return f"{self.start.year}-{self.start.month:02d}"
        if self.kind == "quarter":
            return f"{self.start.year}-Q{(self.start.month - 1) // 3 + 1}"
        if self.kind == "year":
            return str(self.start.year)
        return f"{self.start.isoformat()}..{self.end.isoformat()}"

    @property
    def daily(self) -> bool:
        """Trend buckets: days for a period of up to two months, months otherwise."""
        return self.days <= 62

    def buckets(self) -> list[str]:
        out: list[str] = []
        if self.daily:
            day = self.start
            while day <= self.end:
                out.append(day.isoformat())
                day += dt.timedelta(days=1)
            return out
        y, m = self.start.year, self.start.month
        while (y, m) <= (self.end.year, self.end.month):
            out.append(f"{y}-{m:02d}")
            y, m = (y + 1, 1) if m == 12 else (y, m + 1)
        return out


def month_period(year: int, month: int) -> Period:
    start = dt.date(year, month, 1)
    nxt = dt.date(year + 1, 1, 1) if month == 12 else dt.date(year, month + 1, 1)
    return Period("month", start, nxt - dt.timedelta(days=1))


def quarter_period(year: int, quarter: int) -> Period:
    start = dt.date(year, 3 * (quarter - 1) + 1, 1)
    end_month = 3 * quarter
    nxt = dt.date(year + 1, 1, 1) if end_month == 12 else dt.date(year, end_month + 1, 1)
    return Period("quarter", start, nxt - dt.timedelta(days=1))


def year_period(year: int) -> Period:
    return Period("year", dt.date(year, 1, 1), dt.date(year, 12, 31))


def _int(raw: str | None, default: int, low: int, high: int) -> int:
    try:
        value = int(raw) if raw not in (None, "") else default
    except ValueError as exc:
        raise PeriodError("Choose a valid period.") from exc
    if not low <= value <= high:
        raise PeriodError("Choose a valid period.")
    return value


def parse_period(params: Mapping[str, str], today: dt.date) -> Period:
    """``period=month|quarter|year|custom`` with ``year``, ``month``, ``quarter`` or ``start``
    and ``end`` (ISO dates); defaults to the current year."""
    kind = params.get("period") or "year"
    if kind not in PERIOD_KINDS:
        raise PeriodError("Choose a valid period.")
    year = _int(params.get("year"), today.year, 2000, 2100)
    if kind == "month":
        return month_period(year, _int(params.get("month"), today.month, 1, 12))
    if kind == "quarter":
        return quarter_period(year, _int(params.get("quarter"), (today.month - 1) // 3 + 1, 1, 4))
    if kind == "year":
        return year_period(year)
    try:
        start = dt.date.fromisoformat(params.get("start") or "")
        end = dt.date.fromisoformat(params.get("end") or "")
    except ValueError as exc:
        raise PeriodError("Give the first and last day of the range.") from exc
    if end < start or (end - start).days >= MAX_CUSTOM_DAYS or start.year < 2000:
        raise PeriodError("The range must run forward and span at most three years.")
    return Period("custom", start, end)
