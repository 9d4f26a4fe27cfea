""" "Waiting for me": what one person has to act on now, across the workspace.

Framework-free. Each section is one query whose case condition is a ``policy`` clause
(``case_action_clause`` / ``visible_cases_clause``), so the page shows a case exactly when the
person may take the action there, and never a case they are excluded from (subject, conflict)
or a destroyed one. Metadata only: case numbers, dates, what is waited for.

Sections (``SECTIONS``), each only for the roles that can act in it:

    approvals         handling plans submitted for approval (approver outside the team) and
                      requested deadline extensions (approver outside the team, not the
                      requester)
    identity          identity disclosure requests (identity custodian outside the team)
    rewards           reward proposals awaiting this approver's or reward officer's decision,
                      approved rewards awaiting payment (reward officer); never their own
                      proposal, never a second decision by the same person
    report_backs      transfer packages for the liaison's department not yet reported back
    overdue           cases in view with a running deadline past due
    messages          cases the person may message the reporter on whose latest message is
                      the reporter's (unanswered)
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import ColumnElement, and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from investigator.domain.worklist import current_dues, overdue_clause
from investigator.policy import (
    INDEPENDENT_REVIEWER,
    Principal,
    case_action_clause,
    visible_cases_clause,
)
from portal.kernel import clock
from portal.kernel.db.models import (
    Case,
    CaseDeadline,
    HandlingPlan,
    IdentityRequest,
    Message,
    PackageWrap,
    Reward,
    TransferPackage,
)

SECTIONS: tuple[str, ...] = (
    "approvals",
    "identity",
    "rewards",
    "report_backs",
    "overdue",
    "messages",
)
IDENTITY_HREF = "/workspace/identity-requests"
LIMIT = 200  # rows per section; the count says when there are more


@dataclass(frozen=True)
class Item:
    case_id: str
    number: str
    what: str  # plan | extension | identity | reward_decision | reward_payment | report_back
    #           | overdue | message
    on: dt.date | None  # since when it waits, or when it is due (``due``)
    due: bool = False
    href: str = ""


@dataclass(frozen=True)
class Section:
    name: str
    items: list[Item]

    @property
    def count(self) -> int:
        return len(self.items)


def _case_href(case_id: str, tail: str = "") -> str:
    return f"/workspace/cases/{case_id}{tail}"


async def _approvals(s: AsyncSession, p: Principal) -> list[Item]:
    plans = (
        await s.execute(
            select(Case.id, Case.number, func.max(HandlingPlan.submitted_at))
            .join(HandlingPlan, HandlingPlan.case_id == Case.id)
            .where(await case_action_clause(p, "approve_plan"), HandlingPlan.status == "submitted")
            .group_by(Case.id, Case.number)
            .order_by(Case.number)
            .limit(LIMIT)
        )
    ).all()
    items = [
        Item(cid, number, "plan", at.date() if at else None, href=_case_href(cid, "/handling"))
        for cid, number, at in plans
    ]
    extensions = (
        await s.execute(
            select(Case.id, Case.number, CaseDeadline.due_on)
            .join(CaseDeadline, CaseDeadline.case_id == Case.id)
            .where(
                await case_action_clause(p, "approve_extension"),
                CaseDeadline.extension_status == "requested",
                CaseDeadline.met_on.is_(None),
                or_(
                    CaseDeadline.extension_requested_by.is_(None),
                    CaseDeadline.extension_requested_by != p.user_id,
                ),
            )
            .order_by(CaseDeadline.due_on, Case.number)
            .limit(LIMIT)
        )
    ).all()
    items += [
        Item(cid, number, "extension", due, due=True, href=_case_href(cid, "/deadlines"))
        for cid, number, due in extensions
    ]
    return items


async def _identity(s: AsyncSession, p: Principal) -> list[Item]:
    rows = (
        await s.execute(
            select(Case.id, Case.number, IdentityRequest.created_at)
            .join(IdentityRequest, IdentityRequest.case_id == Case.id)
            .where(
                await case_action_clause(p, "decide_identity"),
                IdentityRequest.status == "pending",
                IdentityRequest.requester_id != p.user_id,
            )
            .order_by(IdentityRequest.created_at)
            .limit(LIMIT)
        )
    ).all()
    return [
        Item(
            cid, number, "identity", at.date() if at else None, href="/workspace/identity-requests"
        )
        for cid, number, at in rows
    ]


def _not_mine(column: InstrumentedAttribute[str | None], user_id: str) -> ColumnElement[bool]:
    return or_(column.is_(None), column != user_id)


async def _rewards(s: AsyncSession, p: Principal) -> list[Item]:
    # each clause selects nothing for a person who does not act in that role on the case
    waits: list[ColumnElement[bool]] = [
        and_(
            await case_action_clause(p, "approve_reward"),
            Reward.status == "proposed",
            Reward.approver_id.is_(None),
            _not_mine(Reward.officer_id, p.user_id),
        ),
        and_(
            await case_action_clause(p, "manage_reward"),
            or_(
                and_(
                    Reward.status == "proposed",
                    Reward.officer_id.is_(None),
                    _not_mine(Reward.approver_id, p.user_id),
                ),
                Reward.status == "approved",
            ),
        ),
    ]
    rows = (
        await s.execute(
            select(Case.id, Case.number, Reward.status, Reward.proposed_on, Reward.decided_on)
            .join(Reward, Reward.case_id == Case.id)
            .where(or_(*waits), Reward.proposed_by != p.user_id)
            .order_by(Reward.proposed_on, Case.number)
            .limit(LIMIT)
        )
    ).all()
    return [
        Item(
            cid,
            number,
            "reward_payment" if status == "approved" else "reward_decision",
            decided if status == "approved" else proposed,
            href=_case_href(cid, "/reward"),
        )
        for cid, number, status, proposed, decided in rows
    ]


async def _report_backs(s: AsyncSession, p: Principal) -> list[Item]:
    if p.department_id is None:
        return []
    rows = (
        await s.execute(
            select(Case.id, Case.number, TransferPackage.due_on)
            .join(TransferPackage, TransferPackage.case_id == Case.id)
            .join(PackageWrap, PackageWrap.package_id == TransferPackage.id)
            .where(
                await case_action_clause(p, "view_transfer"),
                TransferPackage.department_id == p.department_id,
                TransferPackage.reported_on.is_(None),
                PackageWrap.user_id == p.user_id,
            )
            .order_by(TransferPackage.due_on, Case.number)
            .limit(LIMIT)
        )
    ).all()
    return [
        Item(cid, number, "report_back", due, due=True, href="/workspace/transfers")
        for cid, number, due in rows
    ]


async def _overdue(s: AsyncSession, p: Principal, today: dt.date) -> list[Item]:
    due = current_dues()
    rows = (
        await s.execute(
            select(Case.id, Case.number, due.c.due)
            .join(due, due.c.case_id == Case.id)
            .where(await visible_cases_clause(p), overdue_clause(today, clock.now()))
            .order_by(due.c.due, Case.number)
            .limit(LIMIT)
        )
    ).all()
    return [
        Item(cid, number, "overdue", when, due=True, href=_case_href(cid, "/deadlines"))
        for cid, number, when in rows
    ]


async def _messages(s: AsyncSession, p: Principal) -> list[Item]:
    latest = (
        select(Message.case_id, func.max(Message.seq).label("seq"))
        .group_by(Message.case_id)
        .subquery()
    )
    rows = (
        await s.execute(
            select(Case.id, Case.number, Message.created_on)
            .join(latest, latest.c.case_id == Case.id)
            .join(Message, and_(Message.case_id == Case.id, Message.seq == latest.c.seq))
            .where(await case_action_clause(p, "message_reporter"), Message.author == "reporter")
            .order_by(Message.created_on, Case.number)
            .limit(LIMIT)
        )
    ).all()
    return [
        Item(cid, number, "message", on, href=_case_href(cid, "#messages"))
        for cid, number, on in rows
    ]


def sections_for(p: Principal) -> tuple[str, ...]:
    """The sections this person can have anything in (by role; everyone has the others)."""
    out: list[str] = []
    reviewer = p.has(INDEPENDENT_REVIEWER)  # acts in the centre's roles on independent cases
    if p.has("approver") or reviewer:
        out.append("approvals")
    if p.has("identity_custodian") or reviewer:
        out.append("identity")
    if p.has("approver") or p.has("reward_officer") or reviewer:
        out.append("rewards")
    if p.has("department_liaison"):
        out.append("report_backs")
    if p.roles - {"administrator", "auditor"}:  # their roles grant no case (policy)
        out += ["overdue", "messages"]
    return tuple(out)


async def waiting_for(
    session: AsyncSession, principal: Principal, today: dt.date | None = None
) -> list[Section]:
    """Every section this person has, in ``SECTIONS`` order, each with its items."""
    today = today or clock.today()
    wanted = sections_for(principal)
    out: list[Section] = []
    for name in SECTIONS:
        if name not in wanted:
            continue
        if name == "approvals":
            items = await _approvals(session, principal)
        elif name == "identity":
            items = await _identity(session, principal)
        elif name == "rewards":
            items = await _rewards(session, principal)
        elif name == "report_backs":
            items = await _report_backs(session, principal)
        elif name == "overdue":
            items = await _overdue(session, principal, today)
        else:
            items = await _messages(session, principal)
        out.append(Section(name, items))
    return out
