"""Statistics (统计分析, W14) and accountability (拖拉推诿, W15). Framework-free, read-only.

Everything here is computed from plaintext metadata (the ``stats_*`` summaries of ``cases``,
``case_deadlines`` and ``subjects``; running deadlines; ``rewards``; ``users.display_name`` for
handlers): no query reads a sealed column or needs a case key, so the numbers are the same
whoever holds which key wrap (a test drops every ``key_wraps`` row and compares).

Rules:

* The originals rule (A2): the cases the viewer is excluded from
  (``policy.excluded_case_ids``: named as a subject, or a declared conflict) are subtracted
  from every summary count and left out of every direct query, so a subject or a conflicted
  staff member never counts, nor is told about, a case about them.
* The independent channel (issue 18): a case about the 法审风控中心 itself counts in the totals
  only, never in a breakdown, a trend, a deadline, a handler, a reward or the repeat ledger,
  unless the viewer is an independent reviewer (``policy.independent_case_ids``).
* Destroyed cases stay in the counts: retention leaves their metadata as a tombstone for
  statistics (``investigator.domain.retention``).
* Small counts at department level (1 or 2) are never shown against a department's name: such
  departments are added up in one unnamed row (``_combine_small_departments``), which itself
  shows ``<3`` when it holds 1 or 2 (``Count.shown``), so a reporter in a small department
  cannot be singled out, not even by subtracting the named rows from the total. Subjects and
  units are never named: the repeat-subject ledger (不良记录台账) gives counts only.
* A period is a month, a quarter, a year or a custom range (inclusive); every count is compared
  with the previous period of the same length.

Cases are counted by ``received_on`` in the period; deadlines (handling time, compliance,
per-handler counts) by the day they were met (``met_on``) in the period; deadlines running past
due as of ``today``; rewards by ``proposed_on``; the repeat-subject ledger is cumulative (all
cases to date). Handling time is in calendar days from the start of a stage's clock to the day
it stopped; the median is the usual one, P90 the nearest-rank 90th percentile.

Speed: the counts come from summary tables (``stats_*``) that database triggers keep (migration
0007), so a year of a million cases reads a few thousand summary rows; the viewer's excluded
cases (``policy.excluded_case_ids``: a handful) are read row by row and subtracted.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from investigator.domain.periods import Period
from investigator.policy import Principal, excluded_case_ids, independent_case_ids
from portal.kernel.db.models import (
    Case,
    CaseDeadline,
    Category,
    Department,
    Reward,
    StatsCaseDay,
    StatsDeadlineDay,
    StatsHandlerDay,
    StatsSubjectKey,
    Subject,
    User,
)

SUPPRESS_BELOW = 3
# the department row that adds up the departments with small counts (not a department id)
OTHER_DEPARTMENTS = "~other"
REPEAT_KINDS = ("subject", "staff_subject", "department")
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


# --- SQL ------------------------------------------------------------------------------------------
# The counts come from the summary tables kept by triggers (migration 0007); the viewer's
# excluded cases (policy.excluded_case_ids: a handful of ids) are read row by row and
# subtracted. Only running deadlines (overdue now) and rewards are read from their own tables,
# with the excluded ids left out.


def _in(column: Any, p: Period) -> ColumnElement[bool]:
    return and_(column >= p.start, column <= p.end)


def _as_date(value: Any) -> dt.date:
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value))


def _bucket_of(day: dt.date, daily: bool) -> str:
    return day.isoformat() if daily else f"{day.year}-{day.month:02d}"


def _case_keys(row: Any) -> dict[str, str]:
    return {
        "kind": row.kind,
        "category": row.category,
        "channel": row.channel,
        "department": row.department_id or "none",
        "stage": row.stage,
        "identity": "anonymous" if row.anonymous else "real_name",
        "outcome": row.outcome or "none",
    }


async def _excluded_cases(session: AsyncSession, ids: set[str]) -> list[Any]:
    if not ids:
        return []
    rows = await session.execute(
        select(
            Case.id,
            Case.received_on,
            Case.kind,
            Case.category,
            Case.channel,
            Case.department_id,
            Case.stage,
            Case.anonymous,
            Case.outcome,
        ).where(Case.id.in_(sorted(ids)))
    )
    return list(rows.all())


def _received_in(rows: list[Any], ids: set[str], p: Period) -> int:
    """How many of ``rows`` (cases) with an id in ``ids`` were received in the period."""
    return sum(1 for r in rows if r.id in ids and p.start <= _as_date(r.received_on) <= p.end)


async def _counts(
    session: AsyncSession, excluded: list[Any], p: Period
) -> tuple[int, dict[str, dict[str, int]], dict[str, int]]:
    """Total, per-dimension counts and trend buckets of the cases received in the period."""
    out: dict[str, dict[str, int]] = {d: {} for d in DIMENSIONS}
    rows = await session.execute(
        select(StatsCaseDay.dimension, StatsCaseDay.value, func.sum(StatsCaseDay.n))
        .where(_in(StatsCaseDay.day, p))
        .group_by(StatsCaseDay.dimension, StatsCaseDay.value)
    )
    for dim, value, n in rows.all():
        if dim in out:
            key = value or "none"
            out[dim][key] = out[dim].get(key, 0) + int(n or 0)
    bucket = func.strftime("%Y-%m-%d" if p.daily else "%Y-%m", StatsCaseDay.day)
    if session.get_bind().dialect.name == "postgresql":
        bucket = func.to_char(StatsCaseDay.day, "YYYY-MM-DD" if p.daily else "YYYY-MM")
    trend = {
        str(b): int(n or 0)
        for b, n in (
            await session.execute(
                select(bucket, func.sum(StatsCaseDay.n))
                .where(_in(StatsCaseDay.day, p), StatsCaseDay.dimension == "kind")
                .group_by(bucket)
            )
        ).all()
    }
    for row in excluded:
        day = _as_date(row.received_on)
        if not p.start <= day <= p.end:
            continue
        for dim, key in _case_keys(row).items():
            out[dim][key] = out[dim].get(key, 0) - 1
        b = _bucket_of(day, p.daily)
        trend[b] = trend.get(b, 0) - 1
    out = {d: {k: n for k, n in values.items() if n > 0} for d, values in out.items()}
    return sum(out["kind"].values()), out, trend


async def _deadline_figures(
    session: AsyncSession, ids: set[str], p: Period
) -> tuple[dict[str, dict[int, int]], dict[str, tuple[int, int]], dict[str, tuple[int, int]]]:
    """Per stage: a histogram of days taken and (met, late); per handler: (met, late); for the
    deadlines met in the period."""
    hist: dict[str, dict[int, int]] = {}
    met: dict[str, tuple[int, int]] = {}
    by_handler: dict[str, tuple[int, int]] = {}

    def add(stage: str, days: int, late: int, n: int) -> None:
        h = hist.setdefault(stage, {})
        h[days] = h.get(days, 0) + n
        m, lt = met.get(stage, (0, 0))
        met[stage] = (m + n, lt + (n if late else 0))

    def add_handler(handler: str, late: int, n: int) -> None:
        m, lt = by_handler.get(handler, (0, 0))
        by_handler[handler] = (m + n, lt + (n if late else 0))

    rows = await session.execute(
        select(
            StatsDeadlineDay.stage,
            StatsDeadlineDay.days_taken,
            StatsDeadlineDay.late,
            func.sum(StatsDeadlineDay.n),
        )
        .where(_in(StatsDeadlineDay.day, p))
        .group_by(StatsDeadlineDay.stage, StatsDeadlineDay.days_taken, StatsDeadlineDay.late)
    )
    for stage, days, late, n in rows.all():
        add(stage, int(days), int(late), int(n or 0))
    handler_rows = await session.execute(
        select(StatsHandlerDay.handler_id, StatsHandlerDay.late, func.sum(StatsHandlerDay.n))
        .where(_in(StatsHandlerDay.day, p))
        .group_by(StatsHandlerDay.handler_id, StatsHandlerDay.late)
    )
    for handler, late, n in handler_rows.all():
        add_handler(handler, int(late), int(n or 0))
    if ids:
        own = await session.execute(
            select(
                CaseDeadline.stage,
                CaseDeadline.starts_on,
                CaseDeadline.met_on,
                CaseDeadline.due_on,
                CaseDeadline.handler_id,
            ).where(CaseDeadline.case_id.in_(sorted(ids)), _in(CaseDeadline.met_on, p))
        )
        for stage, starts, met_on, due, owner in own.all():
            assert met_on is not None
            late = int(met_on > due)
            add(stage, (met_on - starts).days, late, -1)
            add_handler(owner or "", late, -1)
    hist = {s: {d: n for d, n in h.items() if n > 0} for s, h in hist.items()}
    met = {s: v for s, v in met.items() if v[0] > 0}
    return hist, met, by_handler


def _overdue_now(today: dt.date) -> ColumnElement[bool]:
    """Running past due as of ``today`` (a stopped clock counts when it stopped late), as
    ``investigator.domain.deadline_clock.is_overdue`` decides it to the day."""
    return and_(
        CaseDeadline.met_on.is_(None),
        or_(
            and_(CaseDeadline.paused_since.is_(None), CaseDeadline.due_on < today),
            CaseDeadline.paused_since > CaseDeadline.due_on,
        ),
    )


async def _open_overdue(
    session: AsyncSession, ids: set[str], today: dt.date
) -> tuple[dict[str, int], dict[str, int]]:
    """Deadlines running past due now, per stage and per handler."""
    where = [_overdue_now(today)]
    if ids:
        where.append(CaseDeadline.case_id.not_in(sorted(ids)))
    rows = await session.execute(
        select(CaseDeadline.stage, CaseDeadline.handler_id, func.count())
        .where(*where)
        .group_by(CaseDeadline.stage, CaseDeadline.handler_id)
    )
    by_stage: dict[str, int] = {}
    by_handler: dict[str, int] = {}
    for stage, handler, n in rows.all():
        by_stage[stage] = by_stage.get(stage, 0) + int(n)
        if handler:
            by_handler[handler] = by_handler.get(handler, 0) + int(n)
    return by_stage, by_handler


async def _handlers(
    session: AsyncSession, met: dict[str, tuple[int, int]], overdue: dict[str, int]
) -> list[HandlerRow]:
    """W15: per handler, deadlines running past due now, and met (late) in the period."""
    ids = sorted((set(met) | set(overdue)) - {""})
    names = (
        {
            str(u): str(n)
            for u, n in (
                await session.execute(select(User.id, User.display_name).where(User.id.in_(ids)))
            ).all()
        }
        if ids
        else {}
    )
    out = [
        HandlerRow(h, names[h], overdue.get(h, 0), met.get(h, (0, 0))[1], met.get(h, (0, 0))[0])
        for h in ids
        if h in names and (overdue.get(h, 0) or met.get(h, (0, 0))[0] > 0)
    ]
    return sorted(out, key=lambda r: (-r.overdue_now, -r.met_late, r.name))


async def _rewards(session: AsyncSession, ids: set[str], p: Period) -> list[RewardRow]:
    where = [_in(Reward.proposed_on, p)]
    if ids:
        where.append(Reward.case_id.not_in(sorted(ids)))
    rows = await session.execute(
        select(
            Reward.status,
            func.count(),
            func.coalesce(func.sum(Reward.amount), 0),
            func.coalesce(func.sum(Reward.recovered_amount), 0),
        )
        .where(*where)
        .group_by(Reward.status)
    )
    got = {s: RewardRow(s, int(n), int(a), int(r)) for s, n, a, r in rows.all()}
    return [got.get(s, RewardRow(s, 0, 0, 0)) for s in ("proposed", "approved", "refused", "paid")]


def _band(n: int) -> int:
    return 0 if n < 2 else 1 if n == 2 else 2 if n <= 4 else 3


async def _repeats(session: AsyncSession, ids: set[str]) -> list[RepeatRow]:
    """不良记录台账 to date: how many subjects (by keyed name fingerprint), staff members and
    units are named in two or more cases. Counts only, never who."""
    bands: dict[str, list[int]] = {k: [0, 0, 0, 0] for k in REPEAT_KINDS}
    rows = await session.execute(
        select(StatsSubjectKey.kind, StatsSubjectKey.cases, func.count())
        .where(StatsSubjectKey.cases >= 2)
        .group_by(StatsSubjectKey.kind, StatsSubjectKey.cases)
    )
    for kind, cases, n in rows.all():
        if kind in bands:
            bands[kind][_band(int(cases))] += int(n)
    if ids:
        # the viewer's excluded cases do not count: lower each of their keys' case counts
        own: dict[tuple[str, str], set[str]] = {}
        subjects = await session.execute(
            select(
                Subject.case_id, Subject.fingerprint, Subject.user_id, Subject.department_id
            ).where(Subject.case_id.in_(sorted(ids)))
        )
        for case_id, fingerprint, user_id, department_id in subjects.all():
            for kind, key in (
                ("subject", fingerprint.hex() if fingerprint else None),
                ("staff_subject", user_id),
                ("department", department_id),
            ):
                if key:
                    own.setdefault((kind, key), set()).add(case_id)
        for (kind, key), cases_of_key in own.items():
            total = (
                await session.execute(
                    select(StatsSubjectKey.cases).where(
                        StatsSubjectKey.kind == kind, StatsSubjectKey.key == key
                    )
                )
            ).scalar_one_or_none() or 0
            bands[kind][_band(total)] -= 1
            bands[kind][_band(total - len(cases_of_key))] += 1
    return [RepeatRow(k, bands[k][1], bands[k][2], bands[k][3]) for k in REPEAT_KINDS]


def _percentiles(hist: dict[int, int]) -> tuple[int, float | None, int | None]:
    """(count, median, nearest-rank P90) of a histogram {value: count}."""
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


def _small(n: int) -> bool:
    return 0 < n < SUPPRESS_BELOW


def _combine_small_departments(
    now: dict[str, int], before: dict[str, int]
) -> tuple[dict[str, int], dict[str, int]]:
    """Departments with 1 or 2 cases in either period are not named: they are added up in one
    row (``OTHER_DEPARTMENTS``). A "<3" cell next to the total could be worked out by
    subtraction; a combined row of unnamed departments cannot be split. When a single
    department is small, the next smallest joins it, so the row never stands for one
    department alone (while there is another to add)."""
    keys = set(now) | set(before)
    small = {k for k in keys if _small(now.get(k, 0)) or _small(before.get(k, 0))}
    if len(small) == 1:
        rest = sorted(
            (k for k in keys - small if now.get(k, 0) or before.get(k, 0)),
            key=lambda k: (now.get(k, 0), before.get(k, 0), k),
        )
        small.update(rest[:1])
    if not small:
        return now, before

    def fold(counts: dict[str, int]) -> dict[str, int]:
        out = {k: v for k, v in counts.items() if k not in small}
        out[OTHER_DEPARTMENTS] = sum(counts.get(k, 0) for k in small)
        return out

    return fold(now), fold(before)


def _breakdown(dim: str, now: dict[str, int], before: dict[str, int]) -> list[Count]:
    if dim == "department":
        now, before = _combine_small_departments(now, before)
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
    excluded_ids = await excluded_case_ids(session, viewer)
    # the independent channel: counted in the totals only, never broken down (issue 18)
    totals_only = await independent_case_ids(session, viewer) - excluded_ids
    ids = excluded_ids | totals_only
    excluded = await _excluded_cases(session, ids)
    previous = period.previous()
    report = Report(period=period, previous=previous, today=today)
    report.total, now, trend = await _counts(session, excluded, period)
    report.previous_total, before, trend_before = await _counts(session, excluded, previous)
    report.total += _received_in(excluded, totals_only, period)
    report.previous_total += _received_in(excluded, totals_only, previous)
    report.breakdowns = {d: _breakdown(d, now[d], before[d]) for d in DIMENSIONS}
    report.trend = [(b, max(0, trend.get(b, 0))) for b in period.buckets()]
    report.previous_trend = [(b, max(0, trend_before.get(b, 0))) for b in previous.buckets()]
    hist, met, met_by_handler = await _deadline_figures(session, ids, period)
    hist_before, met_before, _h = await _deadline_figures(session, ids, previous)
    overdue, overdue_by_handler = await _open_overdue(session, ids, today)
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
    report.handlers = await _handlers(session, met_by_handler, overdue_by_handler)
    report.rewards = await _rewards(session, ids, period)
    report.repeats = await _repeats(session, ids)
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
