"""POST actions on a case: triage, team, conflict, subjects, messages, notes, identity request.

Policy first (404 on no, before the form is even looked at), then the form (400 with the case
page and a message), then the work in one transaction that also writes the audit entry.

    POST /workspace/cases/{case_id}/classify              triage
    POST /workspace/cases/{case_id}/accept                triage (``expected_stage`` guards
    POST /workspace/cases/{case_id}/reject                  against two officers deciding at once)
    POST /workspace/cases/{case_id}/split                 triage: one report becomes two linked
                                                          cases (W3 with R3)
    POST /workspace/cases/{case_id}/team/add              manage_team, with the member's
    POST /workspace/cases/{case_id}/team/remove             declaration of no conflict (W5)
    POST /workspace/cases/{case_id}/conflict              view: declare one's own conflict (回避)
    POST /workspace/cases/{case_id}/subjects/add          manage_subjects
    POST /workspace/cases/{case_id}/subjects/{sid}/link   manage_subjects: a name match found at
    POST /workspace/cases/{case_id}/subjects/{sid}/not-linked  arrival is that person, or not
    POST /workspace/cases/{case_id}/message               message_reporter (sealed)
    POST /workspace/cases/{case_id}/note                  add_note (sealed, staff only)
    POST /workspace/cases/{case_id}/identity/request      request_identity (A3)
"""

from __future__ import annotations

from typing import Any

from litestar import Request, post
from litestar.params import FromPath
from litestar.response import Redirect, Template
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from crypto.envelope import field_aad
from investigator.domain import casework
from investigator.domain.split import split_case
from investigator.web.case_common import (
    CaseWork,
    Form,
    Refused,
    away_if_unseen,
    case_for,
    case_key,
    case_post,
    checked,
    field,
    page,
    services_of,
    share_with_intake,
    to_case,
)
from investigator.web.case_page import case_page_context, team_candidates
from investigator.web.guards import ServicesDep, StaffPrincipal
from portal.case.events import add_event
from portal.case.messages import add_message
from portal.case.sealing import seal_json
from portal.kernel import audit
from portal.kernel.db.models import Case, Category, Department, Note, TeamMember, User, new_id
from portal.kernel.msgid import _
from portal.kernel.services import Services

STAGE_CHANGED = _("This case changed while you were looking at it. Check the page and try again.")
CONFIRM_CONFLICT = _("Tick the box to confirm that you have a conflict of interest.")
EMPTY_TEXT = _("Write something first.")
CHOOSE_MEMBER = _("Choose a member of the team.")
CHOOSE_PERSON = _("Choose a staff account.")
SUBJECT_NEEDS_NAME = _("Give at least a name or a department for the person.")
CHOOSE_CATEGORY = _("Choose a category.")
CHOOSE_DEPARTMENT = _("Choose a department.")

# investigator.domain.casework's refusals and reject reasons, listed so they are extracted and
# translated
_WORKFLOW_MESSAGES = (
    _("Only a case under review can be accepted."),
    _("Only a case under review can be rejected."),
    _("Only a case under review can be split."),
    _("Describe the part of the report that becomes the new case."),
    _("Choose whether the new case is a report or a complaint."),
    _("This person cannot be added to the team."),
    _("No such subject on this case."),
    _("That department has no liaison to receive the transfer."),
    _(
        "This case cannot be transferred to that department: its liaison is "
        "named in the case or has declared a conflict."
    ),
    _("Give the reason for the request."),
    _("This request has been decided already."),
    _("Nobody decides their own request."),
    _("The requester can no longer receive access."),
    _("The matter is outside what this center handles; see the help page for the right channel."),
    _("The report does not contain enough information to look into it."),
    _("The same matter is already being handled in another report."),
    _("The matter has already been dealt with."),
    _("The facts described are not a breach of rules."),
)


async def error_page(
    request: Request[Any, Any, Any], staff: StaffPrincipal, case_id: str, message: str, status: int
) -> Template:
    """The case page again, with the message."""
    services = services_of(request)
    async with services.db.write() as s:
        case = await case_for(s, staff, case_id, "view")
        await share_with_intake(s, staff, case)
        context = await case_page_context(services, s, staff, case)
        await audit.record(s, actor_user_id=staff.user_id, action="case.view", case_id=case.id)
    context["error"] = message
    return page("case", status, **context)


async def run_action(
    request: Request[Any, Any, Any], case_id: str, actions: tuple[str, ...], work: CaseWork
) -> Template | Redirect:
    """``case_post`` with the case page for a refusal."""
    return await case_post(request, case_id, actions, work, error_page)


async def _key(session: AsyncSession, staff: StaffPrincipal, case: Case) -> bytes:
    return await case_key(session, staff, case.id)


async def _active_user(session: AsyncSession, user_id: str) -> User:
    user = await session.get(User, user_id[:64]) if user_id else None
    if user is None or user.disabled:
        raise Refused(CHOOSE_PERSON)
    return user


def _expect_stage(case: Case, form: Form) -> None:
    if field(form, "expected_stage", 24) != case.stage:
        raise Refused(STAGE_CHANGED, 409)


async def _after_exclusion(
    session: AsyncSession, staff: StaffPrincipal, case: Case, done: str = ""
) -> Redirect | None:
    """Where to go when the actor may have just lost access to the case: the case list (with
    the notice ``done`` names) instead of a case page that would answer 404."""
    return await away_if_unseen(session, staff, case.id, done)


# --- triage ---


@post("/cases/{case_id:str}/classify", name="workspace_case_classify")
async def classify(request: Request[Any, Any, Any], case_id: FromPath[str]) -> Template | Redirect:
    async def work(s: AsyncSession, staff: StaffPrincipal, case: Case, form: Form) -> None:
        severity, risk = field(form, "severity", 16), field(form, "risk", 16)
        if severity not in casework.SEVERITIES or risk not in casework.RISKS:
            raise Refused(_("Choose a severity and a risk level."))
        # a switched-off category or department is refused, but the one the case has already
        category = field(form, "category", 40)
        chosen = await s.get(Category, category)
        if chosen is None or not (chosen.active or category == case.category):
            raise Refused(CHOOSE_CATEGORY)
        department_id = field(form, "department_id", 64)
        if department_id:
            dept = await s.get(Department, department_id)
            if dept is None or not (dept.active or department_id == case.department_id):
                raise Refused(CHOOSE_DEPARTMENT)
        await casework.classify(
            s,
            case,
            staff.user_id,
            category=category,
            severity=severity,
            urgent=checked(form, "urgent"),
            risk=risk,
            department_id=department_id or None,
        )

    return await run_action(request, case_id, ("triage",), work)


@post("/cases/{case_id:str}/accept", name="workspace_case_accept")
async def accept(request: Request[Any, Any, Any], case_id: FromPath[str]) -> Template | Redirect:
    async def work(s: AsyncSession, staff: StaffPrincipal, case: Case, form: Form) -> None:
        _expect_stage(case, form)
        await casework.accept(s, case, staff.user_id)

    return await run_action(request, case_id, ("triage",), work)


@post("/cases/{case_id:str}/reject", name="workspace_case_reject")
async def reject(request: Request[Any, Any, Any], case_id: FromPath[str]) -> Template | Redirect:
    async def work(s: AsyncSession, staff: StaffPrincipal, case: Case, form: Form) -> Redirect:
        reason = field(form, "reason", 40)
        if reason not in casework.REJECT_REASONS:
            raise Refused(_("Choose a reason from the list."))
        _expect_stage(case, form)
        await casework.reject(s, case, staff.user_id, reason)
        return await _after_exclusion(s, staff, case, "rejected") or to_case(case.id)

    return await run_action(request, case_id, ("triage",), work)


@post("/cases/{case_id:str}/split", name="workspace_case_split")
async def split(
    request: Request[Any, Any, Any], case_id: FromPath[str], services: ServicesDep
) -> Template | Redirect:

    async def work(s: AsyncSession, staff: StaffPrincipal, case: Case, form: Form) -> Redirect:
        category = field(form, "category", 40)
        chosen = await s.get(Category, category)
        if chosen is None or not chosen.active:
            raise Refused(CHOOSE_CATEGORY)
        _expect_stage(case, form)
        new = await split_case(
            s,
            services,
            case,
            await _key(s, staff, case),
            staff.user_id,
            kind=field(form, "kind", 20),
            category=category,
            part=field(form, "part", 20_000, multiline=True),
        )
        # the new case is under review too: its page, which names the case it came from
        return to_case(new.id)

    return await run_action(request, case_id, ("triage",), work)


# --- team and conflicts ---


@post("/cases/{case_id:str}/team/add", name="workspace_team_add")
async def team_add(request: Request[Any, Any, Any], case_id: FromPath[str]) -> Template | Redirect:
    async def work(
        s: AsyncSession, staff: StaffPrincipal, case: Case, form: Form
    ) -> Redirect | None:
        function = field(form, "function", 24)
        if function not in casework.FUNCTIONS:
            raise Refused(_("Choose the member's function."))
        if not checked(form, "declared_no_conflict"):
            raise Refused(_("The member must declare that they have no conflict of interest."))
        user = await _active_user(s, field(form, "user_id", 64))
        seated = (
            await s.execute(
                select(TeamMember.id).where(
                    TeamMember.case_id == case.id, TeamMember.user_id == user.id
                )
            )
        ).first()
        if seated is None and user.id not in {u.id for u in await team_candidates(s, case.id)}:
            # only staff with an investigative role join a team; the same words as for anyone
            # who cannot be added (never say that someone is a subject)
            raise Refused(_("This person cannot be added to the team."))
        key = await _key(s, staff, case)
        await casework.add_member(
            s, case, key, staff.user_id, user, function, declared_no_conflict=True
        )
        # the first member takes an accepted case out of the intake stages, and with them
        # goes an intake officer's access: send them to the case list, not to a 404
        return await _after_exclusion(s, staff, case, "team_formed")

    return await run_action(request, case_id, ("manage_team",), work)


@post("/cases/{case_id:str}/team/remove", name="workspace_team_remove")
async def team_remove(
    request: Request[Any, Any, Any], case_id: FromPath[str]
) -> Template | Redirect:
    async def work(s: AsyncSession, staff: StaffPrincipal, case: Case, form: Form) -> Redirect:
        user_id = field(form, "user_id", 64)
        seat = (
            await s.execute(
                select(TeamMember.id).where(
                    TeamMember.case_id == case.id, TeamMember.user_id == user_id
                )
            )
        ).first()
        if not user_id or seat is None:
            raise Refused(CHOOSE_MEMBER)
        await casework.remove_member(s, case, staff.user_id, user_id)
        return await _after_exclusion(s, staff, case, "left_team") or to_case(case.id)

    return await run_action(request, case_id, ("manage_team",), work)


@post("/cases/{case_id:str}/conflict", name="workspace_case_conflict")
async def conflict(request: Request[Any, Any, Any], case_id: FromPath[str]) -> Template | Redirect:
    async def work(s: AsyncSession, staff: StaffPrincipal, case: Case, form: Form) -> Redirect:
        if not checked(form, "confirm"):
            raise Refused(CONFIRM_CONFLICT)
        await casework.declare_conflict(s, case.id, staff.user_id)
        return Redirect(path="/workspace/cases?done=conflict", status_code=303)

    return await run_action(request, case_id, ("view",), work)


# --- subjects (the accused) ---


@post("/cases/{case_id:str}/subjects/add", name="workspace_subject_add")
async def subject_add(
    request: Request[Any, Any, Any], case_id: FromPath[str], services: ServicesDep
) -> Template | Redirect:

    async def work(
        s: AsyncSession, staff: StaffPrincipal, case: Case, form: Form
    ) -> Redirect | None:
        name, department = field(form, "name"), field(form, "department")
        if not name and not department:
            raise Refused(SUBJECT_NEEDS_NAME)
        user_id = field(form, "user_id", 64)
        if user_id:
            await _active_user(s, user_id)
        key = await _key(s, staff, case)
        await casework.add_subject(
            s,
            services,
            case,
            key,
            staff.user_id,
            name=name,
            department=department,
            position=field(form, "position"),
            user_id=user_id or None,
        )
        return await _after_exclusion(s, staff, case)

    return await run_action(request, case_id, ("manage_subjects",), work)


@post("/cases/{case_id:str}/subjects/{subject_id:str}/link", name="workspace_subject_link")
async def subject_link(
    request: Request[Any, Any, Any], case_id: FromPath[str], subject_id: FromPath[str]
) -> Template | Redirect:
    async def work(
        s: AsyncSession, staff: StaffPrincipal, case: Case, form: Form
    ) -> Redirect | None:
        user = await _active_user(s, field(form, "user_id", 64))
        await casework.link_subject(s, case, staff.user_id, subject_id[:64], user.id)
        return await _after_exclusion(s, staff, case)

    return await run_action(request, case_id, ("manage_subjects",), work)


@post(
    "/cases/{case_id:str}/subjects/{subject_id:str}/not-linked",
    name="workspace_subject_not_linked",
)
async def subject_not_linked(
    request: Request[Any, Any, Any],
    case_id: FromPath[str],
    subject_id: FromPath[str],
    services: ServicesDep,
) -> Template | Redirect:
    """ "Not the same person": the name match found at arrival is dismissed."""

    async def work(s: AsyncSession, staff: StaffPrincipal, case: Case, form: Form) -> Redirect:
        user = await _active_user(s, field(form, "user_id", 64))
        key = await _key(s, staff, case)
        await casework.dismiss_proposed_link(
            s, case, key, staff.user_id, subject_id[:64], user, services.keyring.suite
        )
        return to_case(case.id, "#subjects")

    return await run_action(request, case_id, ("manage_subjects",), work)


# --- messages, notes, identity ---


@post("/cases/{case_id:str}/message", name="workspace_case_message")
async def message(
    request: Request[Any, Any, Any], case_id: FromPath[str], services: ServicesDep
) -> Template | Redirect:

    async def work(s: AsyncSession, staff: StaffPrincipal, case: Case, form: Form) -> Redirect:
        text = field(form, "text", 20_000, multiline=True)
        if not text:
            raise Refused(EMPTY_TEXT)
        key = await _key(s, staff, case)
        await add_message(
            services, s, case.id, key, text, author="staff", author_user_id=staff.user_id
        )
        add_event(s, case.id, "staff_message", public=False, actor=staff.user_id)
        await audit.record(s, actor_user_id=staff.user_id, action="case.message", case_id=case.id)
        return to_case(case.id, "#messages")

    return await run_action(request, case_id, ("message_reporter",), work)


async def _seal_note(
    services: Services, s: AsyncSession, case: Case, key: bytes, author: str, text: str
) -> None:
    nid = new_id()
    s.add(
        Note(
            id=nid,
            case_id=case.id,
            kind="note",
            author_user_id=author,
            sealed=seal_json(key, {"text": text}, field_aad(case.id, f"note:{nid}"), services),
        )
    )


@post("/cases/{case_id:str}/note", name="workspace_case_note")
async def note(
    request: Request[Any, Any, Any], case_id: FromPath[str], services: ServicesDep
) -> Template | Redirect:

    async def work(s: AsyncSession, staff: StaffPrincipal, case: Case, form: Form) -> Redirect:
        text = field(form, "text", 20_000, multiline=True)
        if not text:
            raise Refused(EMPTY_TEXT)
        key = await _key(s, staff, case)
        await _seal_note(services, s, case, key, staff.user_id, text)
        await audit.record(s, actor_user_id=staff.user_id, action="case.note", case_id=case.id)
        return to_case(case.id, "#notes")

    return await run_action(request, case_id, ("add_note",), work)


@post("/cases/{case_id:str}/identity/request", name="workspace_identity_request")
async def identity_request(
    request: Request[Any, Any, Any], case_id: FromPath[str], services: ServicesDep
) -> Template | Redirect:

    async def work(s: AsyncSession, staff: StaffPrincipal, case: Case, form: Form) -> Redirect:
        key = await _key(s, staff, case)
        reason = field(form, "reason", 4000, multiline=True)
        await casework.request_identity(s, services, case, key, staff.user_id, reason)
        return to_case(case.id, "#identity")

    return await run_action(request, case_id, ("request_identity",), work)


action_handlers: list[Any] = [
    classify,
    accept,
    reject,
    split,
    team_add,
    team_remove,
    conflict,
    subject_add,
    subject_link,
    subject_not_linked,
    message,
    note,
    identity_request,
]
