"""Investigation and handling screens (W6 to W9).

    GET  /workspace/cases/{case_id}/investigation                 view
    POST /workspace/cases/{case_id}/investigation/steps           investigate
    POST /workspace/cases/{case_id}/investigation/steps/{sid}     investigate (status)
    POST /workspace/cases/{case_id}/investigation/records         investigate (multipart: the
                                                                  signed interview record)
    POST /workspace/cases/{case_id}/investigation/message         message_reporter
    GET  /workspace/cases/{case_id}/handling                      view
    POST /workspace/cases/{case_id}/handling/plan                 handle (a new plan version)
    POST /workspace/cases/{case_id}/handling/submit               handle
    POST /workspace/cases/{case_id}/handling/decide               approve_plan
    POST /workspace/cases/{case_id}/handling/implementation       investigate
    POST /workspace/cases/{case_id}/handling/conclude             handle
    POST /workspace/cases/{case_id}/handling/resume               handle

Policy first (404 on no, exactly as for a missing case, before the body is read), then the
form (400 with the page and a message), then the work in one write transaction with its
audit entry.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from typing import Any

from litestar import Request, get, post
from litestar.params import FromPath
from litestar.response import Redirect, Template
from litestar.utils.scope.state import ScopeState
from sqlalchemy.ext.asyncio import AsyncSession

from investigator.domain import handling, investigation, rehandling
from investigator.policy import offered
from investigator.web.case_common import (
    NO_KEY,
    Form,
    Refused,
    away_if_unseen,
    case_for,
    case_key,
    case_post,
    field,
    key_or_none,
    page,
    services_of,
)
from investigator.web.guards import ServicesDep, Staff, StaffPrincipal, current_staff
from portal.case.errors import WorkflowError
from portal.case.evidence import EvidenceSink, StoredFile, Target
from portal.case.stage import PUBLIC_STAGES
from portal.http.csrf import verify_csrf_token
from portal.http.upload import FilePart, UploadError, read_multipart
from portal.kernel import audit
from portal.kernel.db.models import Case
from portal.kernel.msgid import _

Work = Callable[[AsyncSession, StaffPrincipal, Case, bytes, Form], Awaitable[None]]

BAD_DATE = _("Give the due date as YYYY-MM-DD.")


def _base(case_id: str, which: str) -> str:
    return f"/workspace/cases/{case_id}/{which}"


async def _context(
    session: AsyncSession, staff: StaffPrincipal, case: Case, which: str
) -> dict[str, Any]:
    services_key = await key_or_none(session, staff, case.id)
    offers = await offered(session, staff.policy(), case.id)
    context: dict[str, Any] = {
        "staff": staff,
        "case": case,
        "has_key": services_key is not None,
        "stage_words": PUBLIC_STAGES,
        # the forms shown come from the policy (``offered``: allowed now, in this stage)
        "may": {
            name: name in offers
            for name in (
                "investigate",
                "add_step",
                "add_record",
                "handle",
                "approve_plan",
                "message_reporter",
            )
        },
        "error": "",
    }
    if services_key is None:
        return context
    if which == "investigation":
        context |= {
            "steps": await investigation.steps(session, case.id, services_key),
            "records": await investigation.records(session, case.id, services_key),
            "team": await investigation.team_choices(session, case.id),
            "methods": investigation.METHODS,
            "statuses": investigation.STEP_STATUSES,
        }
    else:
        context |= {
            "state": await handling.handling_state(session, case.id, services_key),
            "responsibilities": handling.RESPONSIBILITIES,
            "measures": handling.MEASURES,
            "outcomes": handling.OUTCOMES,
            "plan_statuses": handling.PLAN_STATUSES,
            "team": await investigation.team_choices(session, case.id),
            "rehandling": await rehandling.rehandling_deadline(session, case.id),
            # the accused's side: the statement records a plan may cite as their hearing
            "statements": await investigation.statement_records(session, case.id, services_key),
        }
    return context


async def _show(
    request: Request[Any, Any, Any],
    staff: StaffPrincipal,
    case_id: str,
    which: str,
    error: str = "",
    status: int = 200,
) -> Template:
    services = services_of(request)
    async with services.db.write() as s:
        case = await case_for(s, staff, case_id, "view")
        context = await _context(s, staff, case, which)
        await audit.record(
            s, actor_user_id=staff.user_id, action=f"case.view_{which}", case_id=case.id
        )
    context["error"] = error
    return page(which, status, **context)


async def _run(
    request: Request[Any, Any, Any],
    case_id: str,
    action: str,
    which: str,
    work: Work,
    *,
    left: str = "",
) -> Template | Redirect:
    """``case_post`` on the investigation or handling page, with the case key (409 without);
    when the work took the case out of the actor's view (an approver's decision ends the
    approval stage), to the case list with the notice ``left`` names instead of a page that
    would answer 404."""

    async def keyed(
        s: AsyncSession, staff: StaffPrincipal, case: Case, form: Form
    ) -> Redirect | None:
        await work(s, staff, case, await case_key(s, staff, case.id), form)
        return await away_if_unseen(s, staff, case.id, left) if left else None

    async def again(
        request: Request[Any, Any, Any],
        staff: StaffPrincipal,
        case_id: str,
        error: str,
        status: int,
    ) -> Template:
        return await _show(request, staff, case_id, which, error, status)

    done = Redirect(path=_base(case_id, which), status_code=303)
    return await case_post(request, case_id, (action,), keyed, again, done)


# --- investigation -------------------------------------------------------------------------


@get("/cases/{case_id:str}/investigation", name="ws_investigation")
async def investigation_page(request: Request[Any, Any, Any], case_id: FromPath[str]) -> Template:
    return await _show(request, await current_staff(request), case_id, "investigation")


@post("/cases/{case_id:str}/investigation/steps", name="ws_step_add")
async def step_add(
    request: Request[Any, Any, Any], case_id: FromPath[str], services: ServicesDep
) -> Template | Redirect:

    async def work(
        s: AsyncSession, staff: StaffPrincipal, case: Case, key: bytes, form: Form
    ) -> None:
        try:
            due_on = dt.date.fromisoformat(field(form, "due_on", 10))
        except ValueError:
            raise Refused(BAD_DATE) from None
        await investigation.add_step(
            s,
            services,
            case,
            key,
            staff.user_id,
            title=field(form, "title", 1000, multiline=True),
            owner_id=field(form, "owner_id", 64),
            due_on=due_on,
        )

    return await _run(request, case_id, "investigate", "investigation", work)


@post("/cases/{case_id:str}/investigation/steps/{step_id:str}", name="ws_step_status")
async def step_status(
    request: Request[Any, Any, Any], case_id: FromPath[str], step_id: FromPath[str]
) -> Template | Redirect:
    async def work(
        s: AsyncSession, staff: StaffPrincipal, case: Case, key: bytes, form: Form
    ) -> None:
        await investigation.set_step_status(
            s, case, staff.user_id, step_id, field(form, "status", 12)
        )

    return await _run(request, case_id, "investigate", "investigation", work)


@post(
    "/cases/{case_id:str}/investigation/records",
    name="ws_record_add",
    opt={"exclude_from_csrf": True},
)
async def record_add(
    request: Request[Any, Any, Any],
    case_id: FromPath[str],
    staff: Staff,
    services: ServicesDep,
) -> Template | Redirect:
    """A record with an optional attached file, streamed and encrypted as it arrives; the CSRF
    token is checked in the body before any file part is accepted."""
    async with services.db.read() as s:
        await case_for(s, staff, case_id, "investigate")
        key = await key_or_none(s, staff, case_id)
    if key is None:
        return await _show(request, staff, case_id, "investigation", NO_KEY, 409)
    target = Target(case_id=case_id, case_key=key)

    def verify(token: str) -> bool:
        ok = verify_csrf_token(request, token)
        if ok:
            ScopeState.from_scope(request.scope).csrf_token = token
        return ok

    async def open_sink(part: FilePart, _fields: dict[str, list[str]]) -> EvidenceSink:
        sink = EvidenceSink(
            services.files,
            [target],
            name=part.filename,
            content_type=part.content_type,
            suite=services.keyring.suite,
            uploaded_by="staff",
        )
        return await sink.open()

    async def discard(stored: list[StoredFile]) -> None:
        for f in stored:
            await services.files.delete(f.storage_key)

    try:
        result = await read_multipart(
            request,
            verify_csrf=verify,
            open_sink=open_sink,
            discard=discard,
            max_file_bytes=services.settings.max_file_bytes,
            max_files=4,
        )
    except UploadError as err:
        return await _show(request, staff, case_id, "investigation", err.message, err.status)
    stored = [f for _part, files in result.files for f in files]
    try:
        async with services.db.write() as s:
            case = await case_for(s, staff, case_id, "investigate")
            await investigation.add_record(
                s,
                services,
                case,
                key,
                staff.user_id,
                method=result.first("method")[:40],
                text=result.first("text")[:20_000],
                stored=stored,
            )
    except BaseException as exc:
        for f in stored:
            await services.files.delete(f.storage_key)
        if isinstance(exc, WorkflowError):
            return await _show(request, staff, case_id, "investigation", str(exc), 400)
        raise
    return Redirect(path=_base(case_id, "investigation"), status_code=303)


@post("/cases/{case_id:str}/investigation/message", name="ws_progress_message")
async def progress_message(
    request: Request[Any, Any, Any], case_id: FromPath[str], services: ServicesDep
) -> Template | Redirect:

    async def work(
        s: AsyncSession, staff: StaffPrincipal, case: Case, key: bytes, form: Form
    ) -> None:
        await investigation.progress_message(
            s, services, case, key, staff.user_id, field(form, "text", 20_000, multiline=True)
        )

    return await _run(request, case_id, "message_reporter", "investigation", work)


# --- handling --------------------------------------------------------------------------------


@get("/cases/{case_id:str}/handling", name="ws_handling")
async def handling_page(request: Request[Any, Any, Any], case_id: FromPath[str]) -> Template:
    return await _show(request, await current_staff(request), case_id, "handling")


def plan_from_form(form: Form) -> handling.PlanInput:
    """Persons come as parallel fields person_name/person_responsibility/person_detail, with
    the measures of person ``i`` as ``person_{i}_measure`` (i from 0); empty rows are skipped."""
    names = form.get("person_name", [])
    responsibilities = form.get("person_responsibility", [])
    details = form.get("person_detail", [])
    persons = []
    for i, raw in enumerate(names[: handling.MAX_PERSONS + 1]):
        name = field({"n": [raw]}, "n", 200)
        responsibility = responsibilities[i] if i < len(responsibilities) else ""
        measures = [m[:40] for m in form.get(f"person_{i}_measure", [])]
        detail = field({"d": [details[i] if i < len(details) else ""]}, "d", 2000, multiline=True)
        if not name and not measures and not detail:
            continue
        persons.append(handling.PersonInput(name, responsibility[:40], measures, detail))
    return handling.PlanInput(
        analysis=field(form, "analysis", 20_000, multiline=True),
        persons=persons,
        timeline=field(form, "timeline", 4000, multiline=True),
        heard_record=field(form, "heard_record", 64),
        not_heard_reason=field(form, "not_heard_reason", 4000, multiline=True),
    )


@post("/cases/{case_id:str}/handling/plan", name="ws_plan_save")
async def plan_save(
    request: Request[Any, Any, Any], case_id: FromPath[str], services: ServicesDep
) -> Template | Redirect:

    async def work(
        s: AsyncSession, staff: StaffPrincipal, case: Case, key: bytes, form: Form
    ) -> None:
        await handling.save_plan(s, services, case, key, staff.user_id, plan_from_form(form))

    return await _run(request, case_id, "handle", "handling", work)


@post("/cases/{case_id:str}/handling/submit", name="ws_plan_submit")
async def plan_submit(
    request: Request[Any, Any, Any], case_id: FromPath[str]
) -> Template | Redirect:
    async def work(
        s: AsyncSession, staff: StaffPrincipal, case: Case, key: bytes, form: Form
    ) -> None:
        await handling.submit_plan(s, case, key, staff.user_id)

    return await _run(request, case_id, "handle", "handling", work)


@post("/cases/{case_id:str}/handling/decide", name="ws_plan_decide")
async def plan_decide(
    request: Request[Any, Any, Any], case_id: FromPath[str], services: ServicesDep
) -> Template | Redirect:

    async def work(
        s: AsyncSession, staff: StaffPrincipal, case: Case, key: bytes, form: Form
    ) -> None:
        decision = field(form, "decision", 12)
        if decision not in ("approve", "return"):
            raise Refused(_("Choose to approve or to return the plan."))
        await handling.decide_plan(
            s,
            services,
            case,
            key,
            staff.user_id,
            approve=decision == "approve",
            comments=field(form, "comments", 20_000, multiline=True),
        )

    return await _run(request, case_id, "approve_plan", "handling", work, left="plan_decided")


@post("/cases/{case_id:str}/handling/implementation", name="ws_plan_implementation")
async def plan_implementation(
    request: Request[Any, Any, Any], case_id: FromPath[str], services: ServicesDep
) -> Template | Redirect:

    async def work(
        s: AsyncSession, staff: StaffPrincipal, case: Case, key: bytes, form: Form
    ) -> None:
        await handling.record_implementation(
            s, services, case, key, staff.user_id, field(form, "text", 20_000, multiline=True)
        )

    return await _run(request, case_id, "investigate", "handling", work)


@post("/cases/{case_id:str}/handling/conclude", name="ws_conclude")
async def conclude(
    request: Request[Any, Any, Any], case_id: FromPath[str], services: ServicesDep
) -> Template | Redirect:

    async def work(
        s: AsyncSession, staff: StaffPrincipal, case: Case, key: bytes, form: Form
    ) -> None:
        await handling.conclude(
            s,
            services,
            case,
            key,
            staff.user_id,
            outcome=field(form, "outcome", 40),
            process=field(form, "process", 20_000, multiline=True),
            feedback=field(form, "feedback", 20_000, multiline=True),
        )

    return await _run(request, case_id, "handle", "handling", work)


@post("/cases/{case_id:str}/handling/resume", name="ws_rehandle")
async def rehandle(request: Request[Any, Any, Any], case_id: FromPath[str]) -> Template | Redirect:
    async def work(
        s: AsyncSession, staff: StaffPrincipal, case: Case, key: bytes, form: Form
    ) -> None:
        await rehandling.resume(s, case, staff.user_id, field(form, "handler_id", 64))

    return await _run(request, case_id, "handle", "handling", work)


handling_handlers = [
    investigation_page,
    step_add,
    step_status,
    record_add,
    progress_message,
    handling_page,
    plan_save,
    plan_submit,
    plan_decide,
    plan_implementation,
    conclude,
    rehandle,
]
