"""Workspace I workflow (W2 to W5, A2, A3): triage decisions, teams and conflicts, subjects,
transfer packages, identity disclosure. Framework-free.

Each function runs inside the caller's write transaction, assumes the caller has asked
`investigator.policy` whether the actor may do it, records what happened on the case timeline
and in the audit log, and enforces the originals rule where keys are concerned: a subject or a
conflicted person never receives a wrap, and gaining either status deletes the wraps they had.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from crypto.envelope import field_aad, new_case_key
from crypto.recipients import wrap_for_recipient
from crypto.suites import Suite
from investigator.domain.casefile import staff_key
from investigator.policy import acts_as, is_excluded_user, may_join_team
from investigator.roles import roles_of
from portal.case.errors import WorkflowError
from portal.case.events import add_event
from portal.case.sealing import case_suite, case_suite_of, grant_user, seal_json
from portal.case.stage import Stage, move
from portal.case.subjects import subject_fingerprint
from portal.kernel import audit, clock
from portal.kernel.db.models import (
    Case,
    Conflict,
    Department,
    IdentityRequest,
    KeyWrap,
    PackageWrap,
    Subject,
    TeamMember,
    TransferPackage,
    User,
    new_id,
)
from portal.kernel.msgid import _
from portal.kernel.services import Services

SEVERITIES = ("low", "medium", "high", "critical")
RISKS = ("low", "medium", "high")
FUNCTIONS = ("lead", "member", "department_head", "expert", "legal")
OUTSIDE_CENTRE = _(
    "This report concerns the 法审风控中心 itself: its team is formed of people outside the "
    "center, and an intake officer cannot join it."
)
# 不予受理 reasons: codes shown to the reporter in plain words (templates translate them)
REJECT_REASONS = {
    "out_of_scope": (
        "The matter is outside what this center handles; see the help page for the right channel."
    ),
    "insufficient": "The report does not contain enough information to look into it.",
    "duplicate": "The same matter is already being handled in another report.",
    "already_handled": "The matter has already been dealt with.",
    "not_misconduct": "The facts described are not a breach of rules.",
}


async def revoke_user(session: AsyncSession, case_id: str, user_id: str) -> int:
    """Delete every wrap (case and identity) and the team seat the user has on the case."""
    result = await session.execute(
        delete(KeyWrap).where(KeyWrap.case_id == case_id, KeyWrap.user_id == user_id)
    )
    await session.execute(
        delete(TeamMember).where(TeamMember.case_id == case_id, TeamMember.user_id == user_id)
    )
    return int(getattr(result, "rowcount", 0) or 0)


# --- triage -------------------------------------------------------------------------------------


async def classify(
    session: AsyncSession,
    case: Case,
    actor: str,
    *,
    category: str,
    severity: str,
    urgent: bool,
    risk: str,
    department_id: str | None,
) -> None:
    if severity not in SEVERITIES or risk not in RISKS:
        raise WorkflowError("Choose a severity and a risk level.")
    case.category, case.severity, case.urgent, case.risk = category, severity, urgent, risk
    case.department_id = department_id or None
    detail = f"severity={severity} urgent={urgent} risk={risk}"
    if case.stage == Stage.RECEIVED:
        await move(session, case, Stage.TRIAGE, action="case.classify", actor=actor, audited=False)
    add_event(session, case.id, "classified", public=False, actor=actor)
    await audit.record(
        session, actor_user_id=actor, action="case.classify", case_id=case.id, detail=detail
    )


async def accept(session: AsyncSession, case: Case, actor: str) -> None:
    if case.stage not in ("received", "triage"):
        raise WorkflowError("Only a case under review can be accepted.")
    await move(session, case, Stage.ACCEPTED, action="case.accept", actor=actor)


async def reject(session: AsyncSession, case: Case, actor: str, reason: str) -> None:
    if reason not in REJECT_REASONS:
        raise WorkflowError("Choose a reason from the list.")
    if case.stage not in ("received", "triage"):
        raise WorkflowError("Only a case under review can be rejected.")
    case.outcome, case.closed_on = "rejected", clock.today()
    await move(
        session,
        case,
        Stage.REJECTED,
        action="case.reject",
        actor=actor,
        event=f"rejected:{reason}",
        detail=f"reason={reason}",
    )


# --- teams and conflicts ------------------------------------------------------------------------


async def add_member(
    session: AsyncSession,
    case: Case,
    key: bytes,
    actor: str,
    user: User,
    function: str,
    *,
    declared_no_conflict: bool,
) -> None:
    """W5: a member declares no conflict of interest before the case key is wrapped for them."""
    if function not in FUNCTIONS:
        raise WorkflowError("Choose the member's function.")
    if not declared_no_conflict:
        raise WorkflowError("The member must declare that they have no conflict of interest.")
    if user.disabled or await is_excluded_user(session, case.id, user.id):
        # the same refusal as an unknown user: never confirm that someone is a subject
        raise WorkflowError("This person cannot be added to the team.")
    if not may_join_team(roles_of(user.roles), case.independent):
        # a report about the centre: its team is formed of people outside the centre
        raise WorkflowError(OUTSIDE_CENTRE)
    existing = (
        await session.execute(
            select(TeamMember).where(TeamMember.case_id == case.id, TeamMember.user_id == user.id)
        )
    ).scalar_one_or_none()
    if existing is not None:
        existing.function = function
    else:
        session.add(
            TeamMember(
                case_id=case.id,
                user_id=user.id,
                function=function,
                no_conflict_declared_at=clock.now(),
            )
        )
    has_wrap = (
        await session.execute(
            select(KeyWrap.id).where(
                KeyWrap.case_id == case.id, KeyWrap.scope == "case", KeyWrap.user_id == user.id
            )
        )
    ).first()
    if not has_wrap:
        grant_user(session, case.id, "case", key, user, case_suite(case))
    if case.stage == Stage.ACCEPTED:
        await move(
            session, case, Stage.INVESTIGATING, action="team.add", actor=actor, audited=False
        )
    add_event(session, case.id, "team_changed", public=False, actor=actor)
    await audit.record(
        session,
        actor_user_id=actor,
        action="team.add",
        case_id=case.id,
        detail=f"user={user.id} function={function}",
    )


async def remove_member(session: AsyncSession, case: Case, actor: str, user_id: str) -> None:
    await revoke_user(session, case.id, user_id)
    add_event(session, case.id, "team_changed", public=False, actor=actor)
    await audit.record(
        session,
        actor_user_id=actor,
        action="team.remove",
        case_id=case.id,
        detail=f"user={user_id}",
    )


async def declare_conflict(session: AsyncSession, case_id: str, user_id: str) -> None:
    """回避: the user leaves the case for good: wraps deleted, never listed again."""
    session.add(Conflict(case_id=case_id, user_id=user_id))
    await revoke_user(session, case_id, user_id)
    await audit.record(
        session, actor_user_id=user_id, action="case.conflict_declared", case_id=case_id
    )


# --- subjects (the accused) -----------------------------------------------------------------------


async def add_subject(
    session: AsyncSession,
    services: Services,
    case: Case,
    key: bytes,
    actor: str,
    *,
    name: str,
    department: str,
    position: str,
    user_id: str | None = None,
    department_id: str | None = None,
) -> Subject:
    """Record an accused person; linking a staff account revokes their access at once."""
    sid = new_id()
    subject = Subject(
        id=sid,
        case_id=case.id,
        user_id=user_id or None,
        department_id=department_id or None,
        sealed=seal_json(
            key,
            {"name": name, "department": department, "position": position},
            field_aad(case.id, f"subject:{sid}"),
            services,
        ),
        fingerprint=subject_fingerprint(services, name),
    )
    session.add(subject)
    await session.flush()
    if user_id:
        removed = await revoke_user(session, case.id, user_id)
        await audit.record(
            session,
            actor_user_id=actor,
            action="case.subject_linked",
            case_id=case.id,
            detail=f"user={user_id} wraps_deleted={removed}",
        )
    await audit.record(session, actor_user_id=actor, action="case.subject_added", case_id=case.id)
    return subject


async def link_subject(
    session: AsyncSession, case: Case, actor: str, subject_id: str, user_id: str
) -> None:
    subject = await session.get(Subject, subject_id)
    if subject is None or subject.case_id != case.id:
        raise WorkflowError("No such subject on this case.")
    subject.user_id = user_id
    # confirming the link proposed at arrival (an automatic conflict naming this subject)
    # settles the proposal; the account stays excluded, now as the subject itself
    await session.execute(
        update(Conflict)
        .where(Conflict.case_id == case.id, Conflict.subject_id == subject_id)
        .where(Conflict.user_id == user_id)
        .values(subject_id=None)
    )
    await session.flush()
    removed = await revoke_user(session, case.id, user_id)
    await audit.record(
        session,
        actor_user_id=actor,
        action="case.subject_linked",
        case_id=case.id,
        detail=f"user={user_id} wraps_deleted={removed}",
    )


async def dismiss_proposed_link(
    session: AsyncSession,
    case: Case,
    key: bytes,
    actor: str,
    subject_id: str,
    user: User,
    suite: Suite,
) -> bool:
    """The answer "not the same person" to a name match found at arrival: the automatic
    exclusion of ``user`` naming that subject goes (a declared conflict, or a confirmed link,
    is never undone here). An account that reads the case's reports by its role (an intake
    officer; an independent reviewer on an independent case) gets the case key it was
    refused at arrival, unless excluded otherwise. Audited. Returns whether a key was given."""
    removed = await session.execute(
        delete(Conflict).where(
            Conflict.case_id == case.id,
            Conflict.user_id == user.id,
            Conflict.subject_id == subject_id,
        )
    )
    if not int(getattr(removed, "rowcount", 0) or 0):
        raise WorkflowError(_("There is no such possible conflict on this case."))
    await session.flush()
    granted = False
    if (
        not user.disabled
        and acts_as(roles_of(user.roles), "intake_officer", case.independent)
        and not await is_excluded_user(session, case.id, user.id)
    ):
        held = await session.execute(
            select(KeyWrap.id).where(
                KeyWrap.case_id == case.id, KeyWrap.user_id == user.id, KeyWrap.scope == "case"
            )
        )
        if held.first() is None:
            grant_user(session, case.id, "case", key, user, suite)
            granted = True
    await audit.record(
        session,
        actor_user_id=actor,
        action="case.conflict_dismissed",
        case_id=case.id,
        detail=f"user={user.id} key_given={granted}",
    )
    return granted


# --- transfer (转办) ---------------------------------------------------------------------------


async def department_liaisons(session: AsyncSession, department_id: str) -> list[User]:
    users = (
        await session.execute(
            select(User).where(User.department_id == department_id, User.disabled.is_(False))
        )
    ).scalars()
    return [u for u in users if "department_liaison" in u.roles.split(",")]


async def transfer(
    session: AsyncSession,
    services: Services,
    case: Case,
    actor: str,
    *,
    department_id: str,
    summary: str,
    due_on: dt.date,
) -> tuple[TransferPackage, bytes]:
    """Hand an out-of-scope matter to a department (W4). The package has its own key, wrapped
    for the department's liaisons: it carries the investigator's summary (and redacted copies
    added with the returned package key), never an original nor the reporter's identity.
    Refused when any liaison of that department is a subject or conflicted on the case."""
    department = await session.get(Department, department_id)
    if department is None:
        raise WorkflowError("Choose a department.")
    liaisons = await department_liaisons(session, department_id)
    if not liaisons:
        raise WorkflowError("That department has no liaison to receive the transfer.")
    for liaison in liaisons:
        if await is_excluded_user(session, case.id, liaison.id):
            raise WorkflowError(
                "This case cannot be transferred to that department: its liaison is "
                "named in the case or has declared a conflict."
            )
    if not summary.strip():
        raise WorkflowError("Write a summary for the department.")
    pkey = new_case_key()
    package = TransferPackage(
        id=new_id(),
        case_id=case.id,
        department_id=department_id,
        created_by=actor,
        created_on=clock.today(),
        due_on=due_on,
        sealed_summary=b"",
    )
    package.sealed_summary = seal_json(
        pkey, {"summary": summary}, field_aad(package.id, "package-summary"), services
    )
    session.add(package)
    await session.flush()
    for liaison in liaisons:
        session.add(
            PackageWrap(
                package_id=package.id,
                user_id=liaison.id,
                wrapped=wrap_for_recipient(
                    liaison.public_key,
                    pkey,
                    field_aad(package.id, f"package-wrap:{liaison.id}"),
                    suite=services.keyring.suite,
                ),
            )
        )
    case.department_id, case.outcome = department_id, "transferred"
    await move(
        session,
        case,
        Stage.TRANSFERRED,
        action="case.transfer",
        actor=actor,
        detail=f"department={department_id} package={package.id}",
    )
    return package, pkey


async def report_back(
    session: AsyncSession,
    services: Services,
    package: TransferPackage,
    pkey: bytes,
    actor: str,
    text: str,
) -> None:
    """报备: the department says what it did."""
    package.sealed_report_back = seal_json(
        pkey, {"text": text}, field_aad(package.id, "package-report"), services
    )
    package.reported_on = clock.today()
    add_event(session, package.case_id, "transfer_reported_back", public=True, actor=actor)
    await audit.record(
        session,
        actor_user_id=actor,
        action="transfer.report_back",
        case_id=package.case_id,
        detail=f"package={package.id}",
    )


# --- identity (A3) ----------------------------------------------------------------------------


async def request_identity(
    session: AsyncSession, services: Services, case: Case, key: bytes, actor: str, reason: str
) -> IdentityRequest:
    if len(reason.strip()) < 10:
        raise WorkflowError("Give the reason for the request.")
    rid = new_id()
    req = IdentityRequest(
        id=rid,
        case_id=case.id,
        requester_id=actor,
        sealed_reason=seal_json(
            key, {"reason": reason}, field_aad(case.id, f"identity-request:{rid}"), services
        ),
    )
    session.add(req)
    await audit.record(
        session,
        actor_user_id=actor,
        action="identity.request",
        case_id=case.id,
        detail=f"request={rid}",
    )
    return req


async def decide_identity(
    session: AsyncSession,
    req: IdentityRequest,
    custodian_id: str,
    custodian_private_key: bytes,
    *,
    approve: bool,
    tell_reporter: bool = True,
) -> None:
    """Approval wraps the identity key for the requester; it is logged and, unless marked
    unsafe, told to the reporter on their follow-up page."""
    if req.status != "pending":
        raise WorkflowError("This request has been decided already.")
    if req.requester_id == custodian_id:
        raise WorkflowError("Nobody decides their own request.")
    req.status = "approved" if approve else "refused"
    req.decided_by, req.decided_at, req.tell_reporter = custodian_id, clock.now(), tell_reporter
    if approve:
        requester = await session.get(User, req.requester_id)
        if (
            requester is None
            or requester.disabled
            or await is_excluded_user(session, req.case_id, requester.id)
        ):
            raise WorkflowError("The requester can no longer receive access.")
        ikey = await staff_key(
            session, req.case_id, custodian_id, custodian_private_key, scope="identity"
        )
        grant_user(
            session,
            req.case_id,
            "identity",
            ikey,
            requester,
            await case_suite_of(session, req.case_id),
        )
        if tell_reporter:
            add_event(session, req.case_id, "identity_disclosed", public=True, actor=custodian_id)
    await audit.record(
        session,
        actor_user_id=custodian_id,
        action="identity.approve" if approve else "identity.refuse",
        case_id=req.case_id,
        detail=f"request={req.id} requester={req.requester_id} told={tell_reporter}",
    )
