"""Statistics (统计分析, W14) and accountability (拖拉推诿, W15). Framework-free, read-only.

Everything here is computed from plaintext metadata (``cases``, ``case_deadlines``,
``rewards``, ``subjects.fingerprint`` / ``user_id`` / ``department_id``, ``users.display_name``
for handlers): no query reads a sealed column or needs a case key, so the numbers are the same
whoever holds which key wrap (a test drops every ``key_wraps`` row and compares).

Rules:

* The originals rule (A2): every query joins ``cases`` and ANDs
  ``policy.excluded_case_ids_clause(viewer)``, so a subject or a conflicted staff member never
  counts, nor is told about, a case about them.
* Destroyed cases stay in the counts: retention leaves their metadata as a tombstone for
  statistics (``investigator.retention``).
* Small counts at department level (1 or 2) are suppressed, shown as ``<3`` (``Count.shown``),
  so a reporter in a small department cannot be singled out. Subjects and units are never
  named: the repeat-subject ledger (不良记录台账) gives counts only.
* A period is a month, a quarter, a year or a custom range (inclusive); every count is compared
  with the previous period of the same length.

Cases are counted by ``received_on`` in the period; deadlines (handling time, compliance) by the
day they were met (``met_on``) in the period; open overdue deadlines as of ``today``; rewards by
``proposed_on``. Handling time is in calendar days from the start of a stage's clock to the day
it stopped; the median is the usual one, P90 the nearest-rank 90th percentile.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, Integer, and_, case, cast, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from investigator.policy import Principal, excluded_case_ids_clause
from portal.db.models import Case, CaseDeadline, Category, Department, Reward, Subject, User

PERIOD_KINDS = ("month", "quarter", "year", "custom")
SUPPRESS_BELOW = 3
MAX_CUSTOM_DAYS = 3 * 366
DIMENSIONS = ("kind", "category", "channel", "department", "stage", "identity", "outcome")
# outcome values set by handling (concluded), casework (rejected, transferred); None = open
OUTCOME_ORDER = (
    "substantiated",
    "partly_substantiated",
    "unsubstantiated",
    "transferred",
    "rejected",
    "none",
)


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


# --- results ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Count:
    key: str
    value: int
    previous: int
    suppress: bool = False  # department level: 1 and 2 are shown as "<3"

    @staticmethod
    def _show(n: int, suppress: bool) -> str:
        return "<3" if suppress and 0 < n < SUPPRESS_BELOW else str(n)

    @property
    def shown(self) -> str:
        return self._show(self.value, self.suppress)

    @property
    def shown_previous(self) -> str:
        return self._show(self.previous, self.suppress)

    @property
    def hidden(self) -> bool:
        return self.suppress and 0 < self.value < SUPPRESS_BELOW

    @property
    def delta(self) -> int | None:
        """The change from the previous period, or None when either side is suppressed."""
        if self.suppress and (
            0 < self.value < SUPPRESS_BELOW or 0 < self.previous < SUPPRESS_BELOW
        ):
            return None
        return self.value - self.previous

    @property
    def change(self) -> str:
        return "" if self.delta is None else f"{self.delta:+d}"


@dataclass(frozen=True)
class TimeRow:
    stage: str
    count: int
    median: float | None
    p90: int | None
    previous_median: float | None


@dataclass(frozen=True)
class ComplianceRow:
    stage: str
    met: int
    on_time: int
    late: int
    open_overdue: int
    previous_rate: float | None

    @property
    def rate(self) -> float | None:
        """Share of the deadlines met in the period that were met on time, in percent."""
        return round(100.0 * self.on_time / self.met, 1) if self.met else None


@dataclass(frozen=True)
class HandlerRow:
    handler_id: str
    name: str
    overdue_now: int
    met_late: int
    met: int


@dataclass(frozen=True)
class RewardRow:
    status: str
    count: int
    amount: int
    recovered: int


@dataclass(frozen=True)
class RepeatRow:
    what: str  # subject_fingerprint | staff_subject | department
    named_in_2: int
    named_in_3_4: int
    named_in_5_more: int

    @property
    def total(self) -> int:
        return self.named_in_2 + self.named_in_3_4 + self.named_in_5_more


@dataclass
class Report:
    period: Period
    previous: Period
    today: dt.date
    total: int = 0
    previous_total: int = 0
    breakdowns: dict[str, list[Count]] = field(default_factory=dict)
    trend: list[tuple[str, int]] = field(default_factory=list)
    previous_trend: list[tuple[str, int]] = field(default_factory=list)
    times: list[TimeRow] = field(default_factory=list)
    compliance: list[ComplianceRow] = field(default_factory=list)
    handlers: list[HandlerRow] = field(default_factory=list)
    rewards: list[RewardRow] = field(default_factory=list)
    repeats: list[RepeatRow] = field(default_factory=list)
    department_names: dict[str, str] = field(default_factory=dict)
    category_names: dict[str, tuple[str, str, str]] = field(default_factory=dict)


# --- SQL helpers ------------------------------------------------------------------------------


def _dialect(session: AsyncSession) -> str:
    return session.get_bind().dialect.name


def _bucket(
    session: AsyncSession, column: ColumnElement[dt.date], daily: bool
) -> ColumnElement[str]:
    if _dialect(session) == "postgresql":
        return func.to_char(column, "YYYY-MM-DD" if daily else "YYYY-MM")
    return func.strftime("%Y-%m-%d" if daily else "%Y-%m", column)


def _days_between(session: AsyncSession) -> ColumnElement[int]:
    if _dialect(session) == "postgresql":
        return cast(CaseDeadline.met_on - CaseDeadline.starts_on, Integer)
    return cast(
        func.julianday(CaseDeadline.met_on) - func.julianday(CaseDeadline.starts_on), Integer
    )


def _in(column: Any, p: Period) -> ColumnElement[bool]:
    return and_(column >= p.start, column <= p.end)


_DIMENSION_COLUMNS: dict[str, Any] = {
    "kind": Case.kind,
    "category": Case.category,
    "channel": Case.channel,
    "department": Case.department_id,
    "stage": Case.stage,
    "identity": Case.anonymous,
    "outcome": Case.outcome,
}


def _key(dimension: str, value: object) -> str:
    if dimension == "identity":
        return "anonymous" if value else "real_name"
    return "none" if value is None else str(value)


async def _counts(
    session: AsyncSession, visible: ColumnElement[bool], p: Period
) -> tuple[int, dict[str, dict[str, int]]]:
    """Total and per-dimension counts of the cases received in the period."""
    out: dict[str, dict[str, int]] = {d: {} for d in DIMENSIONS}
    where = and_(visible, _in(Case.received_on, p))
    if _dialect(session) == "postgresql":
        # one pass over the period with GROUPING SETS instead of one scan per dimension
        cols = [_DIMENSION_COLUMNS[d] for d in DIMENSIONS]
        flags = [func.grouping(c) for c in cols]
        grouped_stmt = (
            select(*cols, *flags, func.count())
            .where(where)
            .group_by(func.grouping_sets(*cols))
        )
        for row in (await session.execute(grouped_stmt)).all():
            values, grouped, n = row[: len(cols)], row[len(cols) : 2 * len(cols)], row[-1]
            for i, dim in enumerate(DIMENSIONS):
                if grouped[i] == 0:
                    out[dim][_key(dim, values[i])] = int(n)
    else:
        for dim in DIMENSIONS:
            col = _DIMENSION_COLUMNS[dim]
            stmt = select(col, func.count()).where(where).group_by(col)
            for value, n in (await session.execute(stmt)).all():
                out[dim][_key(dim, value)] = int(n)
    total = sum(out["kind"].values())
    return total, out


async def _trend(
    session: AsyncSession, visible: ColumnElement[bool], p: Period, daily: bool
) -> list[tuple[str, int]]:
    bucket = _bucket(session, Case.received_on, daily)  # type: ignore[arg-type]
    rows = await session.execute(
        select(bucket, func.count()).where(visible, _in(Case.received_on, p)).group_by(bucket)
    )
    got = {str(b): int(n) for b, n in rows.all()}
    return [(b, got.get(b, 0)) for b in p.buckets()]


def _percentiles(hist: dict[int, int]) -> tuple[int, float | None, int | None]:
    n = sum(hist.values())
    if n == 0:
        return 0, None, None
    ordered = sorted(hist.items())

    def at_rank(rank: int) -> int:  # 1-based
        seen = 0
        for value, count in ordered:
            seen += count
            if seen >= rank:
                return value
        return ordered[-1][0]  # pragma: no cover

    median = (
        float(at_rank((n + 1) // 2)) if n % 2 else (at_rank(n // 2) + at_rank(n // 2 + 1)) / 2.0
    )
    return n, median, at_rank(max(1, math.ceil(0.9 * n)))


async def _deadline_figures(
    session: AsyncSession, visible: ColumnElement[bool], p: Period
) -> tuple[dict[str, dict[int, int]], dict[str, tuple[int, int]]]:
    """Per stage: a histogram of days taken, and (met, late) for deadlines met in the period."""
    days = _days_between(session)
    rows = await session.execute(
        select(
            CaseDeadline.stage,
            days,
            func.count(),
            func.sum(case((CaseDeadline.met_on > CaseDeadline.due_on, 1), else_=0)),
        )
        .join(Case, Case.id == CaseDeadline.case_id)
        .where(visible, _in(CaseDeadline.met_on, p))
        .group_by(CaseDeadline.stage, days)
    )
    hist: dict[str, dict[int, int]] = {}
    met: dict[str, tuple[int, int]] = {}
    for stage, d, n, late in rows.all():
        hist.setdefault(stage, {})[int(d or 0)] = int(n)
        m, lt = met.get(stage, (0, 0))
        met[stage] = (m + int(n), lt + int(late or 0))
    return hist, met


def _overdue_now(today: dt.date) -> ColumnElement[bool]:
    """Running past due as of ``today`` (a stopped clock counts when it stopped late), as
    ``investigator.deadlines.is_overdue`` decides it to the day."""
    return and_(
        CaseDeadline.met_on.is_(None),
        or_(
            and_(CaseDeadline.paused_since.is_(None), CaseDeadline.due_on < today),
            CaseDeadline.paused_since > CaseDeadline.due_on,
        ),
    )


async def _open_overdue(
    session: AsyncSession, visible: ColumnElement[bool], today: dt.date
) -> dict[str, int]:
    rows = await session.execute(
        select(CaseDeadline.stage, func.count())
        .join(Case, Case.id == CaseDeadline.case_id)
        .where(visible, _overdue_now(today))
        .group_by(CaseDeadline.stage)
    )
    return {stage: int(n) for stage, n in rows.all()}


async def _handlers(
    session: AsyncSession, visible: ColumnElement[bool], p: Period, today: dt.date
) -> list[HandlerRow]:
    """W15: per handler, deadlines running past due now, and met (late) in the period."""
    met_in = _in(CaseDeadline.met_on, p)
    rows = await session.execute(
        select(
            CaseDeadline.handler_id,
            User.display_name,
            func.sum(case((_overdue_now(today), 1), else_=0)),
            func.sum(case((and_(met_in, CaseDeadline.met_on > CaseDeadline.due_on), 1), else_=0)),
            func.sum(case((met_in, 1), else_=0)),
        )
        .join(Case, Case.id == CaseDeadline.case_id)
        .join(User, User.id == CaseDeadline.handler_id)
        .where(visible, or_(CaseDeadline.met_on.is_(None), met_in))
        .group_by(CaseDeadline.handler_id, User.display_name)
    )
    out = [
        HandlerRow(h, name, int(o or 0), int(lt or 0), int(m or 0))
        for h, name, o, lt, m in rows.all()
        if (o or 0) or (m or 0)
    ]
    return sorted(out, key=lambda r: (-r.overdue_now, -r.met_late, r.name))


async def _rewards(
    session: AsyncSession, visible: ColumnElement[bool], p: Period
) -> list[RewardRow]:
    rows = await session.execute(
        select(
            Reward.status,
            func.count(),
            func.coalesce(func.sum(Reward.amount), 0),
            func.coalesce(func.sum(Reward.recovered_amount), 0),
        )
        .join(Case, Case.id == Reward.case_id)
        .where(visible, _in(Reward.proposed_on, p))
        .group_by(Reward.status)
    )
    got = {s: RewardRow(s, int(n), int(a), int(r)) for s, n, a, r in rows.all()}
    return [got.get(s, RewardRow(s, 0, 0, 0)) for s in ("proposed", "approved", "refused", "paid")]


async def _repeats(
    session: AsyncSession, visible: ColumnElement[bool], p: Period
) -> list[RepeatRow]:
    """不良记录台账: how many subjects (by keyed name fingerprint), staff members and units are
    named in two or more cases received in the period. Counts only, never who."""
    out: list[RepeatRow] = []
    for what, col in (
        ("subject", Subject.fingerprint),
        ("staff_subject", Subject.user_id),
        ("department", Subject.department_id),
    ):
        n_cases = func.count(func.distinct(Subject.case_id))
        rows = await session.execute(
            select(n_cases)
            .join(Case, Case.id == Subject.case_id)
            .where(visible, _in(Case.received_on, p), col.is_not(None))
            .group_by(col)
            .having(n_cases >= 2)
        )
        two = three_four = five = 0
        for (n,) in rows.all():
            if n == 2:
                two += 1
            elif n <= 4:
                three_four += 1
            else:
                five += 1
        out.append(RepeatRow(what, two, three_four, five))
    return out


def _breakdown(dim: str, now: dict[str, int], before: dict[str, int]) -> list[Count]:
    keys = sorted(set(now) | set(before))
    if dim == "outcome":
        keys = [k for k in OUTCOME_ORDER if k in keys] + [k for k in keys if k not in OUTCOME_ORDER]
    rows = [Count(k, now.get(k, 0), before.get(k, 0), suppress=dim == "department") for k in keys]
    if dim != "outcome":
        rows.sort(key=lambda c: (-c.value, -c.previous, c.key))
    return rows


async def compute(
    session: AsyncSession, viewer: Principal, period: Period, today: dt.date
) -> Report:
    """The statistics of ``period`` (and its previous period) as ``viewer`` may see them."""
    visible = await excluded_case_ids_clause(viewer)
    previous = period.previous()
    report = Report(period=period, previous=previous, today=today)
    report.total, now = await _counts(session, visible, period)
    report.previous_total, before = await _counts(session, visible, previous)
    report.breakdowns = {d: _breakdown(d, now[d], before[d]) for d in DIMENSIONS}
    report.trend = await _trend(session, visible, period, period.daily)
    report.previous_trend = await _trend(session, visible, previous, period.daily)
    hist, met = await _deadline_figures(session, visible, period)
    hist_before, met_before = await _deadline_figures(session, visible, previous)
    overdue = await _open_overdue(session, visible, today)
    for stage in sorted(set(hist) | set(hist_before) | set(overdue)):
        n, median, p90 = _percentiles(hist.get(stage, {}))
        _n, previous_median, _p = _percentiles(hist_before.get(stage, {}))
        report.times.append(TimeRow(stage, n, median, p90, previous_median))
        m, late = met.get(stage, (0, 0))
        mb, lateb = met_before.get(stage, (0, 0))
        report.compliance.append(
            ComplianceRow(
                stage,
                m,
                m - late,
                late,
                overdue.get(stage, 0),
                round(100.0 * (mb - lateb) / mb, 1) if mb else None,
            )
        )
    report.handlers = await _handlers(session, visible, period, today)
    report.rewards = await _rewards(session, visible, period)
    report.repeats = await _repeats(session, visible, period)
    report.department_names = {
        str(d): str(n)
        for d, n in (await session.execute(select(Department.id, Department.name))).all()
    }
    report.category_names = {
        c: (cn, tw, en)
        for c, cn, tw, en in (
            await session.execute(
                select(Category.code, Category.name_zh_cn, Category.name_zh_tw, Category.name_en)
            )
        ).all()
    }
    return report
