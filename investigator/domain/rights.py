"""Staff decisions on a reporter's rights requests and the identity correction record (issue
18; PIPL Art. 15, 46, 47). Framework-free.

Who decides (``investigator.policy``): a request to withdraw the report, an approver who is
not on the case's team (``decide_withdrawal``); a request to withdraw the identity, an identity
custodian who is not on the team (``decide_identity``). Subjects and conflicted staff never see
a request (the originals rule). Every decision needs a reason, which reaches the reporter
sealed to their receipt (``portal.reporter.rights``), and is audited (``rights.grant`` /
``rights.refuse``, with the request id and kind, never the reason).

A granted identity withdrawal deletes the identity, every wrap of its key (the custodians', any
approved investigator's, the reporter's) and its correction records, at once: crypto-shredding
as at the end of its retention; the case becomes anonymous. A granted report withdrawal is
recorded on the case for its team and the reporter; the handling itself goes on or is closed
through the ordinary workflow, because the company may have its own duty to act on what was
reported, and the records stay for the retention period (docs/compliance).
"""

from __future__ import annotations

import datetime as dt
import json
import os
from dataclasses import dataclass

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from crypto.envelope import seal
from crypto.recipients import wrap_for_recipient
from crypto.suites import Suite
from investigator.domain.casefile import NoKey, staff_key
from investigator.domain.casework import WorkflowError
from investigator.policy import Principal, may_act_on_case
from portal.case.events import add_event
from portal.case.rights import correction_aad, decision_aad, reply_key_aad
from portal.case.sealing import open_json
from portal.kernel import audit
from portal.kernel.db.models import (
    Case,
    Identity,
    IdentityCorrection,
    KeyWrap,
    RightsRequest,
    utcnow,
)
from portal.kernel.msgid import _

DECIDING_ACTION = {"withdraw_report": "decide_withdrawal", "withdraw_identity": "decide_identity"}
REASON_LIMIT = 4000

NEED_REASON = _("Give the reason for your decision: the reporter reads it.")
ALREADY_DECIDED = _("This request has already been decided.")


@dataclass
class PendingView:
    request: RightsRequest
    number: str


async def may_decide(session: AsyncSession, principal: Principal, req: RightsRequest) -> bool:
    action = DECIDING_ACTION.get(req.kind)
    return action is not None and await may_act_on_case(session, principal, req.case_id, action)


async def pending_for(session: AsyncSession, principal: Principal) -> list[PendingView]:
    """The pending requests this person may decide, oldest first."""
    rows = (
        await session.execute(
            select(RightsRequest, Case.number)
            .join(Case, Case.id == RightsRequest.case_id)
            .where(RightsRequest.status == "pending", Case.destroyed_on.is_(None))
            .order_by(RightsRequest.asked_on, RightsRequest.id)
        )
    ).all()
    return [
        PendingView(req, number)
        for req, number in rows
        if await may_decide(session, principal, req)
    ]


async def withdraw_identity(session: AsyncSession, case: Case) -> int:
    """Delete the identity, every wrap of its key and its correction records; returns the
    number of wraps deleted."""
    wraps = await session.execute(
        delete(KeyWrap).where(KeyWrap.case_id == case.id, KeyWrap.scope == "identity")
    )
    await session.execute(delete(IdentityCorrection).where(IdentityCorrection.case_id == case.id))
    await session.execute(delete(Identity).where(Identity.case_id == case.id))
    case.anonymous = True
    return int(getattr(wraps, "rowcount", 0) or 0)


async def decide(
    session: AsyncSession,
    req: RightsRequest,
    actor: str,
    *,
    grant: bool,
    reason: str,
    suite: Suite,
) -> None:
    """Record the decision, seal its reason for the reporter, apply a granted identity
    withdrawal, tell the reporter (a public case event) and audit. The caller has checked
    ``may_decide``. ``WorkflowError`` when there is no reason or it was decided already."""
    if req.status != "pending":
        raise WorkflowError(ALREADY_DECIDED)
    reason = reason.strip()[:REASON_LIMIT]
    if not reason:
        raise WorkflowError(NEED_REASON)
    case = await session.get(Case, req.case_id)
    if case is None or case.destroyed_on is not None:
        raise WorkflowError(ALREADY_DECIDED)
    reply_key = os.urandom(32)
    req.sealed_reply_key = wrap_for_recipient(
        req.reply_public_key, reply_key, reply_key_aad(req.case_id, req.id), suite=suite
    )
    req.sealed_decision = seal(
        reply_key,
        json.dumps({"reason": reason}, ensure_ascii=False).encode(),
        decision_aad(req.case_id, req.id),
        suite=suite,
    )
    req.status = "granted" if grant else "refused"
    req.decided_by, req.decided_at = actor, utcnow()
    detail = f"request={req.id} kind={req.kind}"
    if grant and req.kind == "withdraw_identity":
        detail += f" wraps_deleted={await withdraw_identity(session, case)}"
    add_event(session, case.id, f"rights_{req.status}:{req.kind}", public=True, actor=actor)
    await audit.record(
        session,
        actor_user_id=actor,
        action="rights.grant" if grant else "rights.refuse",
        case_id=case.id,
        detail=detail,
    )


@dataclass
class CorrectionView:
    on: dt.date
    before: dict[str, str]
    after: dict[str, str]


async def corrections(
    session: AsyncSession, case_id: str, identity_key: bytes
) -> list[CorrectionView]:
    """The reporter's corrections of the identity, oldest first (for whoever reads it)."""
    rows = (
        await session.execute(
            select(IdentityCorrection)
            .where(IdentityCorrection.case_id == case_id)
            .order_by(IdentityCorrection.corrected_on, IdentityCorrection.id)
        )
    ).scalars()
    out = []
    for row in rows:
        doc = open_json(identity_key, row.sealed, correction_aad(case_id, row.id))
        out.append(CorrectionView(row.corrected_on, dict(doc["before"]), dict(doc["after"])))
    return out


async def corrections_for(
    session: AsyncSession, case_id: str, user_id: str, private_key: bytes
) -> list[CorrectionView]:
    """``corrections`` for a staff member who holds the identity key ([] otherwise)."""
    try:
        ikey = await staff_key(session, case_id, user_id, private_key, scope="identity")
    except NoKey:
        return []
    return await corrections(session, case_id, ikey)


@dataclass
class CaseCorrections:
    case_id: str
    number: str
    corrections: list[CorrectionView]
    sealed: bool  # this custodian holds no identity key of the case yet


async def corrections_for_custodian(
    session: AsyncSession, principal: Principal, private_key: bytes, limit: int = 100
) -> list[CaseCorrections]:
    """The cases with identity corrections that this custodian may decide identity requests
    on (never a case they are on the team of, named in or conflicted on), newest first."""
    rows = (
        await session.execute(
            select(IdentityCorrection.case_id, Case.number)
            .join(Case, Case.id == IdentityCorrection.case_id)
            .where(Case.destroyed_on.is_(None))
            .group_by(IdentityCorrection.case_id, Case.number)
            .order_by(func.max(IdentityCorrection.corrected_on).desc(), Case.number)
            .limit(limit)
        )
    ).all()
    out = []
    for case_id, number in rows:
        if not await may_act_on_case(session, principal, case_id, "decide_identity"):
            continue
        try:
            ikey = await staff_key(
                session, case_id, principal.user_id, private_key, scope="identity"
            )
        except NoKey:
            out.append(CaseCorrections(case_id, number, [], sealed=True))
            continue
        out.append(
            CaseCorrections(case_id, number, await corrections(session, case_id, ikey), False)
        )
    return out
