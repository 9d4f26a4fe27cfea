"""Stage deadlines on the working-day calendar (W10): opening and closing them as the case
moves, pauses, and hand-overs between handlers.

Framework-free, like ``casework``: each function runs inside the caller's write transaction,
assumes the caller asked ``investigator.policy`` first, and records what happened in the audit
log (and on the case timeline where the reporter or the team should see it). The rules are in
``deadline_rules``, the arithmetic in ``deadline_clock``, extensions in ``deadline_extension``,
warnings and 督办 in ``deadline_notices`` and the overdue lists in ``deadline_lists``.

The start day is not counted. A calendar-day or month period that ends on a rest day ends on
the next working day (民法典 203). The clock pauses (awaiting the reporter, external appraisal)
with a logged reason; the paused days are added to the due date on resume.

Hook: ``on_stage_change(session, case, old_stage, new_stage, actor)`` opens and closes the
right deadlines; call it wherever ``Case.stage`` changes, and with ``old_stage=None,
new_stage="received"`` when a case is created. ``CalendarYearMissing`` propagates: a deadline
is never computed on a year the calendar does not know.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import TypeVar

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from crypto.envelope import field_aad
from investigator.domain.calendar import load_calendar
from investigator.domain.deadline_clock import is_overdue, open_pause_units, settle_due
from investigator.domain.deadline_rules import CN_RULES, PAUSE_REASONS, DeadlineError, Rule
from portal.case.events import add_event
from portal.case.sealing import seal_json
from portal.kernel import audit, clock
from portal.kernel.db.models import (
    CREATED_CASES,
    Case,
    CaseDeadline,
    DeadlinePause,
    TeamMember,
    new_id,
)
from portal.kernel.services import Services

_T = TypeVar("_T")

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
    settle_due(cal, d)
    session.add(d)
    if not audited:
        return d
    await audit.record(
        session,
        actor_user_id=handler_id,
        action="deadline.open",
        case_id=case.id,
        detail=f"deadline={d.id} stage={stage} due={d.due_on.isoformat()} "
        f"provisional={d.provisional}",
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
        else await _handler_for(session, case, actor)
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
                audited=old_stage is not None,
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
    units = open_pause_units(cal.lenient(), d, today)
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
    settle_due(cal, d)
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
