"""Handling (W7 to W9): the versioned handling plan (处理方案) and its approval, the
implementation note, the result report (处理结果报告) that concludes the case with feedback
to the reporter, the reporter's survey answers, and re-handling of a reopened case.
Framework-free, in the style of ``investigator.domain.casework``.

Stages::

    investigating / reopened --save_plan--> handling --submit_plan--> approval
    approval --decide_plan(approve)--> implementing --conclude--> concluded
    approval --decide_plan(return)---> handling (the lead saves a new version)
    concluded --(reporter asks for re-handling)--> reopened --resume--> investigating

Every saved plan is a new version row; none is ever changed except its status (draft,
submitted, approved, returned). The plan is one sealed JSON document (aad case+``plan:{id}``),
the approver's comments another (aad case+``plan-decision:{id}``). The callers ask
``investigator.policy`` first (``handle`` for the lead, ``approve_plan`` for the approver,
``investigate`` for the implementation note); the approver rule is checked here as well.

The accused's side (issue 18): a plan records whether the person concerned was heard, by citing
an investigation record of the kind 被举报人陈述 (``investigation.SUBJECT_STATEMENT``) of the
same case, or why they were not; a plan with neither can be saved and submitted but not
approved (``decide_plan`` refuses, the approver returns it with a comment).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from crypto.envelope import field_aad
from investigator.domain.investigation import is_statement_record
from investigator.policy import TEAM_WORK_STAGES, Principal, acts_as, is_excluded
from investigator.roles import roles_of
from portal.case.errors import WorkflowError
from portal.case.events import add_event
from portal.case.messages import add_message
from portal.case.sealing import case_suite, grant_user, open_json, seal_json
from portal.case.stage import Stage, move
from portal.kernel import audit, clock
from portal.kernel.db.models import (
    Case,
    CaseEvent,
    HandlingPlan,
    KeyWrap,
    Note,
    TeamMember,
    User,
    new_id,
)
from portal.kernel.msgid import _
from portal.kernel.services import Services

RESPONSIBILITIES: dict[str, str] = {
    "direct": _("Direct responsibility (直接责任)"),
    "main": _("Main responsibility (主要责任)"),
    "secondary": _("Secondary responsibility (次要责任)"),
    "leadership": _("Leadership responsibility (领导责任)"),
}
MEASURES: dict[str, str] = {
    "criticism": _("Criticism and education (批评教育)"),
    "warning": _("Warning (警告)"),
    "fine": _("Fine (罚款)"),
    "demotion": _("Demotion or pay cut (降职降薪)"),
    "dismissal": _("Termination of the labour contract (解除劳动合同)"),
    "judicial_referral": _("Referral to the judicial authorities (移送司法机关)"),
}
OUTCOMES: dict[str, str] = {
    "substantiated": _("Substantiated"),
    "partly_substantiated": _("Partly substantiated"),
    "unsubstantiated": _("Unsubstantiated"),
}
PLAN_STATUSES: dict[str, str] = {
    "draft": _("Draft"),
    "submitted": _("Submitted for approval"),
    "approved": _("Approved"),
    "returned": _("Returned with comments"),
}
SURVEY_KINDS = ("satisfied", "dissatisfied", "rehandling_requested")
PLAN_STAGES = TEAM_WORK_STAGES
MAX_PERSONS = 30

NOT_NOW = _("This cannot be done in the case's present stage.")
PLAN_NEEDS_ANALYSIS = _("Write the problem analysis.")
PERSON_NEEDS_NAME = _("Give the name of each responsible person.")
CHOOSE_RESPONSIBILITY = _("Choose the type of responsibility of each person.")
CHOOSE_MEASURE = _("Choose at least one measure for each person.")
TOO_MANY_PERSONS = _("Too many persons in one plan.")
NO_DRAFT = _("Save the plan before submitting it.")
NO_SUBMITTED_PLAN = _("No plan is waiting for approval.")
OWN_PLAN = _("Nobody approves a plan of their own team.")
RETURN_NEEDS_COMMENTS = _("Say what must change before the plan is returned.")
NOTE_NEEDS_TEXT = _("Write what was done.")
CHOOSE_OUTCOME = _("Choose the outcome.")
REPORT_NEEDS_PROCESS = _("Describe how the case was handled.")
FEEDBACK_NEEDS_TEXT = _("Write the feedback for the reporter in plain words.")
NO_SUCH_STATEMENT = _(
    "Choose a record of the statement of the person concerned from this case's investigation."
)
PLAN_NEEDS_HEARING = _(
    "The plan does not say whether the person concerned was heard: cite the record of their "
    "statement (被举报人陈述), or say why they were not heard. Return it with this comment."
)
MEASURES_NEED_APPROVAL = _(
    "A substantiated case is concluded after its approved measures were carried out."
)


@dataclass
class PersonInput:
    name: str
    responsibility: str
    measures: list[str]
    detail: str = ""


@dataclass
class PlanInput:
    analysis: str
    persons: list[PersonInput]
    timeline: str
    # the accused's side: the record of their statement (被举报人陈述, a note id), or why they
    # were not heard; an approver cannot approve a plan with neither
    heard_record: str = ""
    not_heard_reason: str = ""

    def document(self) -> dict[str, Any]:
        return {
            "heard_record": self.heard_record,
            "not_heard_reason": self.not_heard_reason,
            "analysis": self.analysis,
            "persons": [
                {
                    "name": p.name,
                    "responsibility": p.responsibility,
                    "measures": p.measures,
                    "detail": p.detail,
                }
                for p in self.persons
            ],
            "timeline": self.timeline,
        }


@dataclass
class PlanView:
    id: str
    version: int
    status: str
    author: str
    created_at: dt.datetime
    analysis: str
    persons: list[dict[str, Any]]
    timeline: str
    decided_by: str | None = None
    decided_at: dt.datetime | None = None
    comments: str = ""
    heard_record: str = ""
    not_heard_reason: str = ""

    @property
    def hearing_recorded(self) -> bool:
        """Does the plan say whether the person concerned was heard (or why not)?"""
        return bool(self.heard_record or self.not_heard_reason.strip())


@dataclass
class SurveyAnswer:
    kind: str
    text: str
    on: dt.date


@dataclass
class Conclusion:
    outcome: str
    process: str
    feedback: str
    author: str
    created_at: dt.datetime


@dataclass
class HandlingState:
    plans: list[PlanView] = field(default_factory=list)
    implementation: list[tuple[str, str, dt.datetime]] = field(default_factory=list)
    conclusions: list[Conclusion] = field(default_factory=list)
    survey: list[SurveyAnswer] = field(default_factory=list)


def validate_plan(plan: PlanInput) -> None:
    if not plan.analysis.strip():
        raise WorkflowError(PLAN_NEEDS_ANALYSIS)
    if len(plan.persons) > MAX_PERSONS:
        raise WorkflowError(TOO_MANY_PERSONS)
    for person in plan.persons:
        if not person.name.strip():
            raise WorkflowError(PERSON_NEEDS_NAME)
        if person.responsibility not in RESPONSIBILITIES:
            raise WorkflowError(CHOOSE_RESPONSIBILITY)
        if not person.measures or any(m not in MEASURES for m in person.measures):
            raise WorkflowError(CHOOSE_MEASURE)


async def _latest(session: AsyncSession, case_id: str) -> HandlingPlan | None:
    return (
        await session.execute(
            select(HandlingPlan)
            .where(HandlingPlan.case_id == case_id)
            .order_by(HandlingPlan.version.desc())
            .limit(1)
        )
    ).scalar_one_or_none()


async def save_plan(
    session: AsyncSession,
    services: Services,
    case: Case,
    key: bytes,
    actor: str,
    plan: PlanInput,
) -> HandlingPlan:
    """A new version of the plan (every version is kept); the case moves to ``handling``."""
    if case.stage not in PLAN_STAGES:
        raise WorkflowError(NOT_NOW)
    validate_plan(plan)
    if plan.heard_record and not await is_statement_record(session, case.id, plan.heard_record):
        raise WorkflowError(NO_SUCH_STATEMENT)
    last = (
        await session.execute(
            select(func.coalesce(func.max(HandlingPlan.version), 0)).where(
                HandlingPlan.case_id == case.id
            )
        )
    ).scalar_one()
    pid = new_id()
    row = HandlingPlan(
        id=pid,
        case_id=case.id,
        version=int(last) + 1,
        status="draft",
        author_id=actor,
        sealed=seal_json(key, plan.document(), field_aad(case.id, f"plan:{pid}"), services),
        created_at=clock.now(),
    )
    session.add(row)
    if case.stage != Stage.HANDLING:
        await move(session, case, Stage.HANDLING, action="plan.save", actor=actor, audited=False)
    add_event(session, case.id, "plan_saved", public=False, actor=actor)
    await audit.record(
        session,
        actor_user_id=actor,
        action="plan.save",
        case_id=case.id,
        detail=f"plan={pid} version={row.version} persons={len(plan.persons)}",
    )
    return row


async def _approvers_for(session: AsyncSession, case: Case) -> list[User]:
    """Active approvers who may decide on this case: not on its team, not excluded (on an
    independent case, the independent reviewers: ``policy.acts_as``)."""
    case_id = case.id
    members = set(
        (
            await session.execute(select(TeamMember.user_id).where(TeamMember.case_id == case_id))
        ).scalars()
    )
    out = []
    for user in (await session.execute(select(User).where(User.disabled.is_(False)))).scalars():
        roles = roles_of(user.roles)
        if not acts_as(roles, "approver", case.independent) or user.id in members:
            continue
        if await is_excluded(session, Principal(user.id, roles, user.department_id), case_id):
            continue
        out.append(user)
    return out


async def submit_plan(session: AsyncSession, case: Case, key: bytes, actor: str) -> HandlingPlan:
    """The latest draft goes to approval; eligible approvers receive the case key so that
    they can read it (policy lets them view the case only while it is in approval)."""
    if case.stage != "handling":
        raise WorkflowError(NOT_NOW)
    plan = await _latest(session, case.id)
    if plan is None or plan.status != "draft":
        raise WorkflowError(NO_DRAFT)
    plan.status, plan.submitted_at = "submitted", clock.now()
    await move(session, case, Stage.APPROVAL, action="plan.submit", actor=actor, audited=False)
    have = set(
        (
            await session.execute(
                select(KeyWrap.user_id).where(
                    KeyWrap.case_id == case.id,
                    KeyWrap.scope == "case",
                    KeyWrap.user_id.is_not(None),
                )
            )
        ).scalars()
    )
    granted = 0
    for approver in await _approvers_for(session, case):
        if approver.id not in have:
            grant_user(session, case.id, "case", key, approver, case_suite(case))
            granted += 1
    await audit.record(
        session,
        actor_user_id=actor,
        action="plan.submit",
        case_id=case.id,
        detail=f"plan={plan.id} version={plan.version} approver_wraps={granted}",
    )
    return plan


async def decide_plan(
    session: AsyncSession,
    services: Services,
    case: Case,
    key: bytes,
    approver: str,
    *,
    approve: bool,
    comments: str,
) -> HandlingPlan:
    """Approve (the case moves to ``implementing``) or return with comments (back to
    ``handling``). The approver is never on the team nor excluded from the case."""
    if case.stage != "approval":
        raise WorkflowError(NOT_NOW)
    plan = await _latest(session, case.id)
    if plan is None or plan.status != "submitted":
        raise WorkflowError(NO_SUBMITTED_PLAN)
    user = await session.get(User, approver)
    member = (
        await session.execute(
            select(TeamMember.id).where(
                TeamMember.case_id == case.id, TeamMember.user_id == approver
            )
        )
    ).first()
    if (
        user is None
        or not acts_as(roles_of(user.roles), "approver", case.independent)
        or member is not None
        or plan.author_id == approver
        or await is_excluded(
            session, Principal(user.id, roles_of(user.roles), user.department_id), case.id
        )
    ):
        raise WorkflowError(OWN_PLAN)
    if not approve and not comments.strip():
        raise WorkflowError(RETURN_NEEDS_COMMENTS)
    if approve and not await _hearing_recorded(session, case.id, key, plan):
        raise WorkflowError(PLAN_NEEDS_HEARING)
    plan.status = "approved" if approve else "returned"
    plan.decided_by, plan.decided_at = approver, clock.now()
    if comments.strip():
        plan.sealed_decision = seal_json(
            key, {"text": comments}, field_aad(case.id, f"plan-decision:{plan.id}"), services
        )
    await move(
        session,
        case,
        Stage.IMPLEMENTING if approve else Stage.HANDLING,
        action="plan.approve" if approve else "plan.return",
        actor=approver,
        detail=f"plan={plan.id} version={plan.version}",
    )
    return plan


async def _hearing_recorded(
    session: AsyncSession, case_id: str, key: bytes, plan: HandlingPlan
) -> bool:
    """The plan cites a statement record (被举报人陈述) that is still on the case, or gives a
    reason why the person concerned was not heard."""
    doc = open_json(key, plan.sealed, field_aad(case_id, f"plan:{plan.id}"))
    record = str(doc.get("heard_record", "") or "")
    if record and await is_statement_record(session, case_id, record):
        return True
    return bool(str(doc.get("not_heard_reason", "") or "").strip())


async def record_implementation(
    session: AsyncSession, services: Services, case: Case, key: bytes, actor: str, text: str
) -> Note:
    """The responsible department's note on carrying out the approved measures."""
    if case.stage != "implementing":
        raise WorkflowError(NOT_NOW)
    if not text.strip():
        raise WorkflowError(NOTE_NEEDS_TEXT)
    nid = new_id()
    note = Note(
        id=nid,
        case_id=case.id,
        kind="implementation",
        author_user_id=actor,
        sealed=seal_json(key, {"text": text}, field_aad(case.id, f"note:{nid}"), services),
        created_at=clock.now(),
    )
    session.add(note)
    add_event(session, case.id, "measures_implemented", public=True, actor=actor)
    await audit.record(
        session,
        actor_user_id=actor,
        action="plan.implementation",
        case_id=case.id,
        detail=f"note={nid}",
    )
    return note


async def conclude(
    session: AsyncSession,
    services: Services,
    case: Case,
    key: bytes,
    actor: str,
    *,
    outcome: str,
    process: str,
    feedback: str,
) -> Note:
    """处理结果报告: closes the case (stage ``concluded``, outcome, closed_on) and tells the
    reporter at once, in plain words: a public event and a staff message. Concluding in the
    same transaction means a real-name reporter has the outcome on the day of conclusion,
    inside the 2-day feedback deadline (seed 002 (六)).

    A case with measures (substantiated, partly substantiated) is concluded from
    ``implementing``; an unsubstantiated case may also be concluded from the investigation."""
    if outcome not in OUTCOMES:
        raise WorkflowError(CHOOSE_OUTCOME)
    if case.stage != "implementing":
        if case.stage not in PLAN_STAGES:
            raise WorkflowError(NOT_NOW)
        if outcome != "unsubstantiated":
            raise WorkflowError(MEASURES_NEED_APPROVAL)
    if not process.strip():
        raise WorkflowError(REPORT_NEEDS_PROCESS)
    if not feedback.strip():
        raise WorkflowError(FEEDBACK_NEEDS_TEXT)
    nid = new_id()
    note = Note(
        id=nid,
        case_id=case.id,
        kind="result_report",
        author_user_id=actor,
        sealed=seal_json(
            key,
            {"text": process, "process": process, "outcome": outcome, "feedback": feedback},
            field_aad(case.id, f"note:{nid}"),
            services,
        ),
        created_at=clock.now(),
    )
    session.add(note)
    case.outcome, case.closed_on = outcome, clock.today()
    await add_message(
        services, session, case.id, key, feedback, author="staff", author_user_id=actor
    )
    await move(
        session,
        case,
        Stage.CONCLUDED,
        action="case.conclude",
        actor=actor,
        event=f"concluded:{outcome}",
        detail=f"outcome={outcome} report={nid} real_name={not case.anonymous}",
    )
    add_event(session, case.id, "staff_message", public=False, actor=actor)
    return note


async def handling_state(session: AsyncSession, case_id: str, key: bytes) -> HandlingState:
    """Every plan version (newest first), implementation notes, result reports, survey."""
    state = HandlingState()
    names = {
        u.id: u.display_name
        for u in (
            await session.execute(
                select(User).where(
                    User.id.in_(
                        select(HandlingPlan.author_id).where(HandlingPlan.case_id == case_id)
                    )
                    | User.id.in_(
                        select(HandlingPlan.decided_by).where(HandlingPlan.case_id == case_id)
                    )
                    | User.id.in_(select(Note.author_user_id).where(Note.case_id == case_id))
                )
            )
        ).scalars()
    }
    for plan in (
        await session.execute(
            select(HandlingPlan)
            .where(HandlingPlan.case_id == case_id)
            .order_by(HandlingPlan.version.desc())
        )
    ).scalars():
        doc = open_json(key, plan.sealed, field_aad(case_id, f"plan:{plan.id}"))
        comments = ""
        if plan.sealed_decision is not None:
            comments = open_json(
                key, plan.sealed_decision, field_aad(case_id, f"plan-decision:{plan.id}")
            ).get("text", "")
        state.plans.append(
            PlanView(
                id=plan.id,
                version=plan.version,
                status=plan.status,
                author=names.get(plan.author_id, "?"),
                created_at=plan.created_at,
                analysis=doc.get("analysis", ""),
                persons=list(doc.get("persons", [])),
                timeline=doc.get("timeline", ""),
                decided_by=names.get(plan.decided_by, "?") if plan.decided_by else None,
                decided_at=plan.decided_at,
                comments=comments,
                heard_record=str(doc.get("heard_record", "") or ""),
                not_heard_reason=str(doc.get("not_heard_reason", "") or ""),
            )
        )
    for note in (
        await session.execute(
            select(Note)
            .where(Note.case_id == case_id, Note.kind.in_(("implementation", "result_report")))
            .order_by(Note.created_at)
        )
    ).scalars():
        doc = open_json(key, note.sealed, field_aad(case_id, f"note:{note.id}"))
        author = names.get(note.author_user_id, "?")
        if note.kind == "implementation":
            state.implementation.append((doc.get("text", ""), author, note.created_at))
        else:
            state.conclusions.append(
                Conclusion(
                    outcome=doc.get("outcome", ""),
                    process=doc.get("process", ""),
                    feedback=doc.get("feedback", ""),
                    author=author,
                    created_at=note.created_at,
                )
            )
    state.survey = await survey_answers(session, case_id, key)
    return state


async def survey_answers(session: AsyncSession, case_id: str, key: bytes) -> list[SurveyAnswer]:
    """The reporter's satisfaction answers and re-handling requests (sealed on the events)."""
    out = []
    for event in (
        await session.execute(
            select(CaseEvent)
            .where(CaseEvent.case_id == case_id, CaseEvent.kind.in_(SURVEY_KINDS))
            .order_by(CaseEvent.id)
        )
    ).scalars():
        text = ""
        if event.sealed is not None:
            text = open_json(key, event.sealed, field_aad(case_id, f"event:{event.kind}")).get(
                "text", ""
            )
        out.append(SurveyAnswer(kind=event.kind, text=text, on=event.on))
    return out
