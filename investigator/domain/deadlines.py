"""Stage deadlines on the working-day calendar (W10) and accountability counts (W15).

Framework-free, like ``casework``: each function runs inside the caller's write transaction,
assumes the caller asked ``investigator.policy`` first, and records what happened in the audit
log (and on the case timeline where the reporter or the team should see it).

Rules (``rules_for(settings)``): profile ``cn`` unless PORTAL_DEADLINE_PROFILE is ``eu``; any
rule can be changed with PORTAL_DEADLINE_<STAGE> such as ``15wd``, ``30d``, ``3m`` or ``10min``,
and the extension limit with PORTAL_DEADLINE_<STAGE>_EXTENSION (``Settings.deadline_rules``):

    ===============  ======================  ============================================
    stage            default (cn)            runs
    ===============  ======================  ============================================
    initial_review   3 working days          from receipt until accepted / rejected /
                                             transferred
    transfer         5 working days          from receipt until the transfer (转办)
    urgent_dispatch  10 minutes              from triage of an urgent case until dispatch
    investigation    15 working days         while the stage is ``investigating``
    handling         30 calendar days, one   from acceptance until concluded; the extension
                     extension <= 30 days    needs an approver and the reason is told to
                                             the reporter
    feedback         2 calendar days         from conclusion, real-name reporters only
    acknowledgement  7 calendar days (eu)    from receipt until triage starts
    eu_feedback      3 months (eu)           from acceptance until concluded
    ===============  ======================  ============================================

The start day is not counted. A calendar-day or month period that ends on a rest day ends on
the next working day (民法典 203). The clock pauses (awaiting the reporter, external appraisal)
with a logged reason; the paused days are added to the due date on resume. Warnings are raised
at 50% and 80% of the time used and when overdue (督办), each once per deadline, to the handler
and their superior (``users.superior_id``): ``due_notices`` records a CaseEvent and an audit
entry per notice; sending them is a later issue.

Hook: ``on_stage_change(session, case, old_stage, new_stage, actor)`` opens and closes the
right deadlines; call it wherever ``Case.stage`` changes, and with ``old_stage=None,
new_stage="received"`` when a case is created. ``CalendarYearMissing`` propagates: a deadline
is never computed on a year the calendar does not know.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TypeVar

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from crypto.envelope import field_aad
from investigator.domain.calendar import CalendarYearMissing, WorkCalendar, load_calendar
from investigator.policy import (
    Principal,
    excluded_case_ids_clause,
    is_excluded_user,
    may_approve_extension,
    visible_cases_clause,
)
from investigator.roles import roles_of
from portal.case.events import add_event
from portal.case.sealing import seal_json
from portal.kernel import audit, clock
from portal.kernel.db.models import (
    CREATED_CASES,
    AuditEntry,
    Case,
    CaseDeadline,
    DeadlinePause,
    Message,
    TeamMember,
    User,
    new_id,
)
from portal.kernel.services import Services
from portal.kernel.settings import Settings

_T = TypeVar("_T")

UNITS = ("working_days", "calendar_days", "months", "minutes")
PAUSE_REASONS = ("awaiting_reporter", "external_appraisal")
LEVELS = (50, 80, 100)  # 100 = overdue


class DeadlineError(ValueError):
    """A refused deadline step; the message is a msgid for the staff member."""


@dataclass(frozen=True)
class Rule:
    amount: int
    unit: str
    max_extension: int = 0  # in the rule's unit; 0 = no extension


CN_RULES: dict[str, Rule] = {
    "initial_review": Rule(3, "working_days"),
    "transfer": Rule(5, "working_days"),
    "urgent_dispatch": Rule(10, "minutes"),
    "investigation": Rule(15, "working_days"),
    "handling": Rule(30, "calendar_days", max_extension=30),
    "feedback": Rule(2, "calendar_days"),
    # re-handling of a reopened case (W9), from the reopening; PORTAL_DEADLINE_REHANDLING
    "rehandling": Rule(30, "calendar_days"),
}
EU_RULES: dict[str, Rule] = {
    "acknowledgement": Rule(7, "calendar_days"),
    "eu_feedback": Rule(3, "months"),
    "rehandling": Rule(3, "months"),
}
PROFILES: dict[str, dict[str, Rule]] = {"cn": CN_RULES, "eu": EU_RULES}

_SPEC = re.compile(r"^\s*(\d{1,4})\s*(wd|d|m|min)\s*$")
_SPEC_UNITS = {"wd": "working_days", "d": "calendar_days", "m": "months", "min": "minutes"}


def parse_rule(spec: str, max_extension: int = 0) -> Rule:
    """``"15wd"``, ``"30d"``, ``"3m"`` or ``"10min"``."""
    match = _SPEC.match(spec)
    if not match or int(match.group(1)) <= 0:
        raise ValueError(f"bad deadline rule {spec!r}")
    return Rule(int(match.group(1)), _SPEC_UNITS[match.group(2)], max_extension)


def rules_for(settings: Settings | Mapping[str, str] | None = None) -> dict[str, Rule]:
    """The deadline rules of the configured profile with per-stage overrides applied: from
    ``Settings`` (PORTAL_DEADLINE_PROFILE, PORTAL_DEADLINE_<STAGE>[_EXTENSION]) or from a
    mapping such as ``{"deadline_profile": "eu", "deadline.handling": "30d"}``."""
    extra: dict[str, str] = {}
    if isinstance(settings, Settings):
        extra["deadline_profile"] = settings.deadline_profile
        extra |= {f"deadline.{k}": v for k, v in settings.deadline_rules.items()}
    elif settings is not None:
        extra |= settings
    profile = extra.get("deadline_profile", "cn")
    if profile not in PROFILES:
        raise ValueError(f"unknown deadline profile {profile!r}")
    rules = dict(PROFILES[profile])
    for stage, rule in list(rules.items()):
        limit = int(extra.get(f"deadline.{stage}.extension", rule.max_extension))
        spec = extra.get(f"deadline.{stage}")
        rules[stage] = parse_rule(spec, limit) if spec else Rule(rule.amount, rule.unit, limit)
    return rules


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


def _units(cal: WorkCalendar, unit: str, after: dt.date, until: dt.date) -> int:
    """Units elapsed in (after, until]."""
    if until <= after:
        return 0
    if unit == "working_days":
        return cal.working_days_between(after, until)
    return (until - after).days


def _open_pause_units(cal: WorkCalendar, d: CaseDeadline, today: dt.date) -> int:
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
    """The fraction of the allowed time used (paused time excluded); above 1 when overdue."""
    if d.unit == "minutes":
        assert d.started_at is not None and d.due_at is not None
        at, start = now or clock.now(), _utc(d.started_at)
        span = (_utc(d.due_at) - start).total_seconds()
        return max(0.0, (at - start).total_seconds() / span) if span > 0 else 1.0
    until = d.met_on or today
    allowed = _units(cal, d.unit, d.starts_on, d.due_on) - d.paused_days
    used = (
        _units(cal, d.unit, d.starts_on, until) - d.paused_days - _open_pause_units(cal, d, until)
    )
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


# --- opening and closing ----------------------------------------------------------------------


async def _open(session: AsyncSession, case_id: str, stage: str) -> CaseDeadline | None:
    return (
        await session.execute(
            select(CaseDeadline).where(
                CaseDeadline.case_id == case_id,
                CaseDeadline.stage == stage,
                CaseDeadline.met_on.is_(None),
            )
        )
    ).scalar_one_or_none()


async def open_deadlines(session: AsyncSession, case_id: str) -> list[CaseDeadline]:
    rows = await session.execute(
        select(CaseDeadline)
        .where(CaseDeadline.case_id == case_id, CaseDeadline.met_on.is_(None))
        .order_by(CaseDeadline.due_on)
    )
    return list(rows.scalars())


async def case_deadlines(session: AsyncSession, case_id: str) -> list[CaseDeadline]:
    rows = await session.execute(
        select(CaseDeadline)
        .where(CaseDeadline.case_id == case_id)
        .order_by(CaseDeadline.starts_on, CaseDeadline.stage)
    )
    return list(rows.scalars())


async def open_deadline(
    session: AsyncSession,
    case: Case,
    stage: str,
    handler_id: str | None,
    *,
    rules: Mapping[str, Rule] | None = None,
    starts_on: dt.date | None = None,
    audited: bool = True,
    fresh: bool = False,
) -> CaseDeadline:
    """Start the clock of ``stage`` (idempotent: an open deadline of the stage is returned).

    ``audited=False`` when the case is being created: an audit entry, with its clock time and
    its place in the chain between staff entries, would date a reporter's submission finer than
    the day (R9); the deadline row itself holds days only. ``fresh``: the case is created in
    this transaction, so its deadlines can only be in this session (no query)."""
    rule = (rules or CN_RULES).get(stage)
    if rule is None:
        raise DeadlineError("This stage has no deadline.")
    current = (
        _open_pending(session, case.id, stage) if fresh else await _open(session, case.id, stage)
    )
    if current is not None:
        return current
    cal = await load_calendar(session)
    now = clock.now()
    d = CaseDeadline(
        id=new_id(),
        case_id=case.id,
        stage=stage,
        unit=rule.unit,
        amount=rule.amount,
        starts_on=starts_on or now.date(),
        due_on=now.date(),
        paused_days=0,
        extended=False,
        extension_days=0,
        handler_id=handler_id,
        notice_level=0,
    )
    if rule.unit == "minutes":
        start = now.astimezone(dt.UTC)
        d.started_at, d.due_at = start, start + dt.timedelta(minutes=rule.amount)
    d.due_on = compute_due(cal, d)
    session.add(d)
    if not audited:
        return d
    await audit.record(
        session,
        actor_user_id=handler_id,
        action="deadline.open",
        case_id=case.id,
        detail=f"deadline={d.id} stage={stage} due={d.due_on.isoformat()}",
    )
    return d


async def close_deadline(
    session: AsyncSession,
    case: Case,
    stage: str,
    actor: str | None,
    met_on: dt.date | None = None,
) -> CaseDeadline | None:
    """Stop the clock of ``stage`` (None when no such deadline is running)."""
    d = await _open(session, case.id, stage)
    if d is None:
        return None
    if d.paused_since is not None:
        await _end_pause(session, d, actor)
    d.met_on = met_on or clock.today()
    late = is_overdue(d, d.met_on)
    await audit.record(
        session,
        actor_user_id=actor,
        action="deadline.close",
        case_id=case.id,
        detail=f"deadline={d.id} stage={stage} late={late}",
    )
    return d


def _in_session(session: AsyncSession, cls: type[_T]) -> list[_T]:
    """The ``cls`` objects this session holds (loaded, or added and not yet flushed)."""
    sync = session.sync_session
    seen = {id(o): o for o in (*sync.identity_map.values(), *sync.new)}
    return [o for o in seen.values() if isinstance(o, cls)]


def _open_pending(session: AsyncSession, case_id: str, stage: str) -> CaseDeadline | None:
    """``_open`` for a case created in this transaction: its rows can only be in the session."""
    for d in _in_session(session, CaseDeadline):
        if d.case_id == case_id and d.stage == stage and d.met_on is None:
            return d
    return None


def _pending_lead(session: AsyncSession, case_id: str) -> str | None:
    for m in _in_session(session, TeamMember):
        if m.case_id == case_id and m.function == "lead":
            return m.user_id
    return None


async def _handler_for(session: AsyncSession, case: Case, actor: str | None) -> str | None:
    lead = (
        await session.execute(
            select(TeamMember.user_id)
            .where(TeamMember.case_id == case.id, TeamMember.function == "lead")
            .limit(1)
        )
    ).scalar_one_or_none()
    return lead or actor


_INTAKE_CLOCKS = ("initial_review", "urgent_dispatch", "acknowledgement")
_OPEN_ON: dict[str, tuple[str, ...]] = {
    "received": ("initial_review", "acknowledgement"),
    "triage": ("initial_review", "urgent_dispatch"),
    "accepted": ("handling", "eu_feedback"),
    "investigating": ("investigation", "handling", "eu_feedback"),
    "reopened": ("rehandling",),
    "concluded": ("feedback",),
}
_CLOSE_ON: dict[str, tuple[str, ...]] = {
    "triage": ("acknowledgement",),
    "accepted": _INTAKE_CLOCKS,
    "investigating": _INTAKE_CLOCKS,
    "approval": ("investigation",),
    "handling": ("investigation",),
    "implementing": ("investigation",),
    "concluded": (*_INTAKE_CLOCKS, "investigation", "handling", "eu_feedback", "rehandling"),
}
_CLOSE_ALL = ("rejected", "transferred", "archived")


async def on_stage_change(
    session: AsyncSession,
    case: Case,
    old_stage: str | None,
    new_stage: str,
    actor: str | None,
    *,
    rules: Mapping[str, Rule] | None = None,
) -> list[CaseDeadline]:
    """Open and close the deadlines a stage change starts and ends; returns those opened."""
    rules = rules or CN_RULES
    if new_stage in _CLOSE_ALL:
        for d in await open_deadlines(session, case.id):
            await close_deadline(session, case, d.stage, actor)
    else:
        for stage in _CLOSE_ON.get(new_stage, ()):
            await close_deadline(session, case, stage, actor)
    opened: list[CaseDeadline] = []
    if new_stage == "transferred" and "transfer" in rules:
        # 转办 within 5 working days of receipt: recorded met (or late) at once
        d = await open_deadline(
            session, case, "transfer", actor, rules=rules, starts_on=case.received_on
        )
        opened.append(d)
        await close_deadline(session, case, "transfer", actor)
        return opened
    # a case created in this transaction: its team and deadlines are in the session (no query)
    created = old_stage is None and case.id in session.info.get(CREATED_CASES, ())
    handler = (
        (_pending_lead(session, case.id) or actor)
        if created
        else (await _handler_for(session, case, actor))
    )
    for stage in _OPEN_ON.get(new_stage, ()):
        if stage not in rules:
            continue
        if stage == "urgent_dispatch" and not case.urgent:
            continue
        if stage == "feedback" and case.anonymous:
            continue
        starts = case.received_on if stage in ("initial_review", "acknowledgement") else None
        opened.append(
            await open_deadline(
                session,
                case,
                stage,
                handler,
                rules=rules,
                starts_on=starts,
                audited=not created,
                fresh=created,
            )
        )
    return opened


# --- pauses ---------------------------------------------------------------------------------


async def pause(
    session: AsyncSession,
    services: Services,
    case: Case,
    key: bytes,
    d: CaseDeadline,
    actor: str,
    reason: str,
    note: str = "",
) -> DeadlinePause:
    """Stop the clock with a logged reason; the free-text note is sealed under the case key."""
    if reason not in PAUSE_REASONS:
        raise DeadlineError("Choose why the clock stops.")
    if d.case_id != case.id or d.met_on is not None:
        raise DeadlineError("This deadline is not running.")
    if d.unit == "minutes":
        raise DeadlineError("This deadline cannot be paused.")
    if d.paused_since is not None:
        raise DeadlineError("The clock is already stopped.")
    pid = new_id()
    p = DeadlinePause(
        id=pid,
        deadline_id=d.id,
        case_id=case.id,
        reason=reason,
        sealed_note=(
            seal_json(key, {"text": note}, field_aad(case.id, f"deadline-pause:{pid}"), services)
            if note.strip()
            else None
        ),
        started_on=clock.today(),
        paused_by=actor,
    )
    session.add(p)
    d.paused_since = p.started_on
    add_event(session, case.id, "deadline_paused", public=False, actor=actor)
    await audit.record(
        session,
        actor_user_id=actor,
        action="deadline.pause",
        case_id=case.id,
        detail=f"deadline={d.id} stage={d.stage} reason={reason} pause={pid}",
    )
    return p


async def _end_pause(session: AsyncSession, d: CaseDeadline, actor: str | None) -> int:
    assert d.paused_since is not None
    cal = await load_calendar(session)
    today = clock.today()
    units = _open_pause_units(cal, d, today)
    p = (
        await session.execute(
            select(DeadlinePause).where(
                DeadlinePause.deadline_id == d.id, DeadlinePause.ended_on.is_(None)
            )
        )
    ).scalar_one_or_none()
    if p is not None:
        p.ended_on, p.resumed_by = today, actor
    d.paused_since = None
    d.paused_days += units
    d.due_on = compute_due(cal, d)
    return units


async def resume(session: AsyncSession, case: Case, d: CaseDeadline, actor: str) -> int:
    """Restart the clock; the paused days (in the deadline's unit) move the due date."""
    if d.case_id != case.id or d.met_on is not None or d.paused_since is None:
        raise DeadlineError("The clock is not stopped.")
    units = await _end_pause(session, d, actor)
    add_event(session, case.id, "deadline_resumed", public=False, actor=actor)
    await audit.record(
        session,
        actor_user_id=actor,
        action="deadline.resume",
        case_id=case.id,
        detail=f"deadline={d.id} stage={d.stage} paused={units} due={d.due_on.isoformat()}",
    )
    return units


async def pauses_of(session: AsyncSession, deadline_id: str) -> list[DeadlinePause]:
    rows = await session.execute(
        select(DeadlinePause)
        .where(DeadlinePause.deadline_id == deadline_id)
        .order_by(DeadlinePause.started_on)
    )
    return list(rows.scalars())


# --- extension --------------------------------------------------------------------------------


async def request_extension(
    session: AsyncSession,
    services: Services,
    case: Case,
    key: bytes,
    d: CaseDeadline,
    actor: str,
    days: int,
    reason: str,
    *,
    rules: Mapping[str, Rule] | None = None,
) -> None:
    """Ask for the one extension. The reason is sealed as the message the reporter receives
    once an approver agrees."""
    rule = (rules or CN_RULES).get(d.stage)
    if d.case_id != case.id or d.met_on is not None:
        raise DeadlineError("This deadline is not running.")
    if rule is None or rule.max_extension <= 0:
        raise DeadlineError("This deadline cannot be extended.")
    if d.extended or d.extension_status in ("requested", "approved"):
        raise DeadlineError("This deadline has been extended once already.")
    if not 1 <= days <= rule.max_extension:
        raise DeadlineError("The extension is too long.")
    if len(reason.strip()) < 10:
        raise DeadlineError("Give the reason for the extension; the reporter will read it.")
    mid = new_id()
    d.extension_days, d.extension_status = days, "requested"
    d.extension_requested_by, d.extension_decided_by = actor, None
    d.extension_message_id = mid
    d.sealed_extension_reason = seal_json(
        key, {"text": reason}, field_aad(case.id, f"message:{mid}"), services
    )
    add_event(session, case.id, "extension_requested", public=False, actor=actor)
    await audit.record(
        session,
        actor_user_id=actor,
        action="deadline.extension_requested",
        case_id=case.id,
        detail=f"deadline={d.id} stage={d.stage} days={days}",
    )


async def approve_extension(
    session: AsyncSession, case: Case, d: CaseDeadline, approver_id: str, *, approve: bool
) -> None:
    """Decide the requested extension. Approval moves the due date, tells the reporter (a
    public ``extended`` event and the sealed reason as a message) and restarts the warnings."""
    if d.case_id != case.id or d.extension_status != "requested":
        raise DeadlineError("There is no extension request to decide.")
    approver = await session.get(User, approver_id)
    if approver is None or not await may_approve_extension(session, case.id, approver):
        raise DeadlineError("Only an approver outside the case team may decide an extension.")
    if approver_id == d.extension_requested_by:
        raise DeadlineError("Nobody decides their own request.")
    d.extension_decided_by = approver_id
    if not approve:
        d.extension_status = "refused"
        add_event(session, case.id, "extension_refused", public=False, actor=approver_id)
        await audit.record(
            session,
            actor_user_id=approver_id,
            action="deadline.extension_refused",
            case_id=case.id,
            detail=f"deadline={d.id} stage={d.stage}",
        )
        return
    cal = await load_calendar(session)
    d.extension_status, d.extended = "approved", True
    d.due_on = compute_due(cal, d)
    d.notice_level = 0
    if d.sealed_extension_reason is not None and d.extension_message_id is not None:
        seq = (
            await session.execute(
                select(func.coalesce(func.max(Message.seq), 0)).where(Message.case_id == case.id)
            )
        ).scalar_one()
        session.add(
            Message(
                id=d.extension_message_id,
                case_id=case.id,
                author="staff",
                author_user_id=d.extension_requested_by,
                sealed=d.sealed_extension_reason,
                created_on=clock.today(),
                seq=int(seq) + 1,
            )
        )
    add_event(session, case.id, "extended", public=True, actor=approver_id)
    await audit.record(
        session,
        actor_user_id=approver_id,
        action="deadline.extension_approved",
        case_id=case.id,
        detail=f"deadline={d.id} stage={d.stage} days={d.extension_days} "
        f"due={d.due_on.isoformat()}",
    )


# --- warnings and 督办 -------------------------------------------------------------------------


@dataclass(frozen=True)
class Notice:
    case_id: str
    deadline_id: str
    stage: str
    level: int  # 50, 80 or 100 (overdue: 督办)
    handler_id: str | None
    superior_id: str | None


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
        try:
            lvl = level(d, today, cal, now)
        except CalendarYearMissing:
            # the fraction needs the calendar; lateness does not (the due date is stored)
            lvl = 100 if is_overdue(d, today, now) else 0
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
        kind = "deadline_overdue" if lvl == 100 else f"deadline_warning_{lvl}"
        add_event(session, d.case_id, kind, public=False, actor=None)
        await audit.record(
            session,
            actor_user_id=None,
            action="deadline.overdue_notice" if lvl == 100 else "deadline.warning",
            case_id=d.case_id,
            detail=f"deadline={d.id} stage={d.stage} level={lvl} handler={handler or '-'} "
            f"superior={superior or '-'}",
        )
        notices.append(Notice(d.case_id, d.id, d.stage, lvl, handler, superior))
    return notices


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


async def set_handler(
    session: AsyncSession, case: Case, handler_id: str, actor: str
) -> list[CaseDeadline]:
    """The case changes hands (a new lead): its running deadlines follow the new handler and
    keep their due dates. Each hand-over is audited and counted per handler (W15)."""
    changed: list[CaseDeadline] = []
    for d in await open_deadlines(session, case.id):
        if d.handler_id == handler_id:
            continue
        old, d.handler_id = d.handler_id, handler_id
        changed.append(d)
        await audit.record(
            session,
            actor_user_id=actor,
            action="deadline.handler_changed",
            case_id=case.id,
            detail=f"deadline={d.id} stage={d.stage} from={old or '-'} to={handler_id}",
        )
    return changed


async def run_due_notices(services: Services) -> list[Notice]:
    """One pass of the warning job (for a scheduler or the command line)."""
    async with services.db.write() as s:
        return await due_notices(s)


@dataclass(frozen=True)
class PendingExtension:
    case_id: str
    number: str
    deadline_id: str
    stage: str
    days: int
    due_on: dt.date


async def pending_extensions(session: AsyncSession, approver: User) -> list[PendingExtension]:
    """Extension requests the approver may decide (metadata only)."""
    principal = Principal(approver.id, roles_of(approver.roles), approver.department_id)
    rows = (
        await session.execute(
            select(CaseDeadline, Case.number)
            .join(Case, Case.id == CaseDeadline.case_id)
            .where(
                await excluded_case_ids_clause(principal),
                Case.destroyed_on.is_(None),
                CaseDeadline.extension_status == "requested",
                CaseDeadline.met_on.is_(None),
            )
            .order_by(CaseDeadline.due_on)
        )
    ).all()
    out: list[PendingExtension] = []
    for d, number in rows:
        if await may_approve_extension(session, d.case_id, approver):
            out.append(
                PendingExtension(d.case_id, number, d.id, d.stage, d.extension_days, d.due_on)
            )
    return out
