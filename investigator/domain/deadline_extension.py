"""The one extension of a stage deadline (W10): requested with a reason the reporter reads,
decided by an approver outside the case team."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from crypto.envelope import field_aad
from investigator.domain.calendar import load_calendar
from investigator.domain.deadline_clock import settle_due
from investigator.domain.deadline_rules import CN_RULES, DeadlineError, Rule
from investigator.policy import Principal, excluded_case_ids_clause, may_approve_extension
from investigator.roles import roles_of
from portal.case.events import add_event
from portal.case.sealing import seal_json
from portal.kernel import audit, clock
from portal.kernel.db.models import (
    Case,
    CaseDeadline,
    Message,
    User,
    new_id,
)
from portal.kernel.services import Services

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
    settle_due(cal, d)
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
