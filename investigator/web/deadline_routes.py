"""Deadline screens of the workspace (W10, W15).

    GET  /workspace/overdue                                  overdue deadlines on the cases the
                                                             viewer may open, per-handler counts,
                                                             extension requests to decide
    GET  /workspace/calendar?year=2026                       the working-day calendar (admin)
    POST /workspace/calendar                                 add or remove an override (admin)
    POST /workspace/calendar/year                            enter and confirm a year's complete
                                                             schedule (admin); recomputes the
                                                             provisional deadlines
    GET  /workspace/cases/{case_id}/deadlines                a case's deadlines and their forms
    POST /workspace/cases/{case_id}/deadline/pause           stop the clock (reason logged)
    POST /workspace/cases/{case_id}/deadline/resume          restart it
    POST /workspace/cases/{case_id}/deadline/extend          ask for the one extension
    POST /workspace/cases/{case_id}/deadline/approve-extension   an approver decides

Refusals answer 404 exactly as for a missing case (``investigator.policy``).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from litestar import Request, get, post
from litestar.params import FromPath
from litestar.response import Redirect, Template
from sqlalchemy.ext.asyncio import AsyncSession

from crypto.envelope import field_aad
from investigator.domain import (
    deadline_clock,
    deadline_extension,
    deadline_lists,
    deadline_rules,
    deadlines,
)
from investigator.domain.calendar import (
    CalendarYearMissing,
    load_calendar,
    overrides_in,
    package_years,
    remove_override,
    set_override,
)
from investigator.domain.calendar_years import (
    ScheduleError,
    confirm_year,
    parse_schedule,
    provisional_count,
    schedule_text,
)
from investigator.policy import can, may_act_on_case
from investigator.web.case_common import (
    CaseWork,
    Form,
    Refused,
    case_for,
    case_key,
    case_post,
    checked,
    confirmed,
    field,
    key_or_none,
    not_found,
    page,
    read_form,
    services_of,
)
from investigator.web.guards import StaffPrincipal, current_staff
from portal.case.sealing import open_json
from portal.kernel import audit, clock
from portal.kernel.db.models import CalendarYear, Case, CaseDeadline, User
from portal.kernel.msgid import _

# the deadline stages and pause reasons in words (msgids; templates translate them)
STAGE_WORDS = {
    "initial_review": _("Initial review"),
    "transfer": _("Transfer to the responsible department"),
    "urgent_dispatch": _("Urgent dispatch"),
    "investigation": _("Investigation"),
    "handling": _("Handling"),
    "feedback": _("Feedback to the reporter"),
    "acknowledgement": _("Acknowledgement of receipt"),
    "eu_feedback": _("Feedback to the reporter (three months)"),
    "rehandling": _("Re-handling of a reopened case"),
}
PAUSE_WORDS = {
    "awaiting_reporter": _("Awaiting the reporter"),
    "external_appraisal": _("External appraisal"),
}
YEAR_CONFIRMED = _(
    "The schedule was confirmed; provisional deadlines were recomputed (dates already told to "
    "reporters are kept)."
)
SCHEDULE_MESSAGES = (
    _("Line %(line)s: this is not a date (YYYY-MM-DD)."),
    _("Line %(line)s: the date is not in %(year)s."),
    _("Line %(line)s: the range ends before it starts."),
    _("Too many lines: at most %(n)s."),
    _("Enter the holiday ranges of the year."),
    _("The holiday ranges starting %(a)s and %(b)s overlap."),
    _("%(day)s is a statutory holiday: the schedule must include it."),
    _("The holiday ranges hold only %(n)s days: a complete year has at least %(min)s."),
    _("%(day)s is a weekday: a make-up working day is a Saturday or a Sunday."),
    _("%(day)s is inside a holiday range."),
    _("A make-up working day is listed twice."),
    _("The holiday data already covers %(year)s."),
    _("Confirm that this is the complete schedule of %(year)s."),
)
CALENDAR_MISSING = _(
    "The working-day calendar has no data for a year this deadline runs into: ask the "
    "administrator to enter that year's holidays."
)
_DEADLINE_MESSAGES = (
    _("This stage has no deadline."),
    _("Choose why the clock stops."),
    _("This deadline is not running."),
    _("This deadline cannot be paused."),
    _("The clock is already stopped."),
    _("The clock is not stopped."),
    _("This deadline cannot be extended."),
    _("This deadline has been extended once already."),
    _("The extension is too long."),
    _("Give the reason for the extension; the reporter will read it."),
    _("There is no extension request to decide."),
    _("Only an approver outside the case team may decide an extension."),
    _("Nobody decides their own request."),
)


def _rules(request: Request[Any, Any, Any]) -> dict[str, deadline_rules.Rule]:
    return deadline_rules.rules_for(services_of(request).settings)


# --- overdue ----------------------------------------------------------------------------------


@get("/overdue", name="workspace_overdue")
async def overdue(request: Request[Any, Any, Any]) -> Template:
    staff = await current_staff(request)
    principal = staff.policy()
    if not can(principal, "view_overdue"):
        raise not_found()
    today = clock.today()
    async with services_of(request).db.read() as s:
        rows = await deadline_lists.overdue_cases(s, principal, today)
        counts = (
            await deadline_lists.overdue_by_handler(s, principal, today)
            if can(principal, "view_statistics")
            else []
        )
        pending: list[deadline_extension.PendingExtension] = []
        if can(principal, "approve"):
            me = await s.get(User, staff.user_id)
            pending = await deadline_extension.pending_extensions(s, me) if me is not None else []
        cal = await load_calendar(s)
    missing = [y for y in (today.year, today.year + 1) if not cal.has_year(y)]
    return page(
        "overdue",
        staff=staff,
        rows=rows,
        counts=counts,
        pending=pending,
        missing_years=missing,
        stage_words=STAGE_WORDS,
        today=today,
    )


# --- calendar ---------------------------------------------------------------------------------


def _year(raw: str | None, default: int) -> int:
    try:
        year = int(raw or default)
    except ValueError:
        return default
    return year if 2000 <= year <= 2100 else default


async def _calendar_page(
    request: Request[Any, Any, Any],
    staff: StaffPrincipal,
    year: int,
    error: str | None = None,
    status: int = 200,
    *,
    schedule_error: ScheduleError | None = None,
    form_text: tuple[str, str] | None = None,
    done: str | None = None,
) -> Template:
    today = clock.today()
    async with services_of(request).db.read() as s:
        cal = await load_calendar(s)
        overrides = await overrides_in(s, year)
        confirmed = await s.get(CalendarYear, year)
        provisional = await provisional_count(s)
    try:
        days = cal.year_days(year)
        year_missing = False
    except CalendarYearMissing:
        days, year_missing = [], True
    missing = [y for y in (today.year, today.year + 1) if not cal.has_year(y)]
    holidays_text, workdays_text = form_text or schedule_text(overrides)
    return page(
        "calendar",
        status,
        staff=staff,
        year=year,
        days=days,
        overrides=overrides,
        year_missing=year_missing,
        missing_years=missing,
        covered=cal.covered_years(),
        error=error,
        package_year=year in package_years(),
        confirmed=confirmed,
        provisional=provisional,
        holidays_text=holidays_text,
        workdays_text=workdays_text,
        schedule_error=schedule_error,
        notice=YEAR_CONFIRMED if done == "confirmed" else None,
    )


@get("/calendar", name="workspace_calendar")
async def calendar_view(request: Request[Any, Any, Any]) -> Template:
    staff = await current_staff(request)
    if not can(staff.policy(), "manage_calendar"):
        raise not_found()
    return await _calendar_page(
        request,
        staff,
        _year(request.query_params.get("year"), clock.today().year),
        done=request.query_params.get("done"),
    )


@post("/calendar", name="workspace_calendar_edit")
async def calendar_edit(request: Request[Any, Any, Any]) -> Template | Redirect:
    staff = await current_staff(request)
    if not can(staff.policy(), "manage_calendar"):
        raise not_found()
    form = await read_form(request)
    try:
        day = dt.date.fromisoformat(field(form, "day", 10))
    except ValueError:
        year = _year(field(form, "year", 4), clock.today().year)
        return await _calendar_page(request, staff, year, _("Enter a date."), 400)
    kind = field(form, "kind", 10)
    async with services_of(request).db.write() as s:
        if kind == "remove":
            await remove_override(s, day, staff.user_id)
        elif kind in ("workday", "restday"):
            await set_override(s, day, kind == "workday", field(form, "note", 200), staff.user_id)
        else:
            return await _calendar_page(
                request, staff, day.year, _("Choose working day or rest day."), 400
            )
    return confirmed(Redirect(path=f"/workspace/calendar?year={day.year}", status_code=303))


@post("/calendar/year", name="workspace_calendar_year")
async def calendar_year(request: Request[Any, Any, Any]) -> Template | Redirect:
    """The complete schedule of a year (holiday ranges and 调休 days) in one form, confirmed."""
    staff = await current_staff(request)
    if not can(staff.policy(), "manage_calendar"):
        raise not_found()
    form = await read_form(request)
    year = _year(field(form, "year", 4), clock.today().year)
    text = (
        field(form, "holidays", 4000, multiline=True),
        field(form, "workdays", 4000, multiline=True),
    )
    try:
        if year in package_years():
            raise ScheduleError("The holiday data already covers %(year)s.", year=year)
        if not checked(form, "confirm"):
            raise ScheduleError(
                "Confirm that this is the complete schedule of %(year)s.", year=year
            )
        schedule = parse_schedule(year, *text)
    except ScheduleError as err:
        return await _calendar_page(
            request, staff, year, status=400, schedule_error=err, form_text=text
        )
    async with services_of(request).db.write() as s:
        await confirm_year(s, schedule, staff.user_id)
    return Redirect(path=f"/workspace/calendar?year={year}&done=confirmed", status_code=303)


# --- a case's deadlines -----------------------------------------------------------------------


async def _deadlines_page(
    request: Request[Any, Any, Any],
    staff: StaffPrincipal,
    case_id: str,
    error: str | None = None,
    status: int = 200,
) -> Template:
    services = services_of(request)
    today = clock.today()
    async with services.db.write() as s:
        case = await case_for(s, staff, case_id, "view", "approve_extension")
        rows = await deadlines.case_deadlines(s, case.id)
        cal = await load_calendar(s)
        key = await key_or_none(s, staff, case.id)
        items: list[dict[str, Any]] = []
        for d in rows:
            reason = None
            if key is not None and d.sealed_extension_reason and d.extension_message_id:
                reason = open_json(
                    key,
                    d.sealed_extension_reason,
                    field_aad(case.id, f"message:{d.extension_message_id}"),
                ).get("text")
            try:
                fraction = deadline_clock.progress(d, today, cal)
            except CalendarYearMissing:
                fraction = 0.0
            items.append(
                {
                    "d": d,
                    "percent": round(100 * fraction),
                    "overdue": deadline_clock.is_overdue(d, today),
                    "reason": reason,
                    "due_at": deadline_clock.due_at_local(d),
                    "pauses": await deadlines.pauses_of(s, d.id),
                }
            )
        may_manage = await _may(s, staff, case.id, "manage_deadline")
        may_approve = await _may(s, staff, case.id, "approve_extension")
        await audit.record(
            s, actor_user_id=staff.user_id, action="case.deadlines_view", case_id=case.id
        )
    return page(
        "deadlines",
        status,
        staff=staff,
        case=case,
        items=items,
        rules=_rules(request),
        may_manage=may_manage,
        may_approve=may_approve,
        stage_words=STAGE_WORDS,
        pause_words=PAUSE_WORDS,
        has_key=key is not None,
        error=error,
    )


async def _may(s: AsyncSession, staff: StaffPrincipal, case_id: str, action: str) -> bool:
    return await may_act_on_case(s, staff.policy(), case_id, action)


@get("/cases/{case_id:str}/deadlines", name="workspace_case_deadlines")
async def case_deadlines(request: Request[Any, Any, Any], case_id: FromPath[str]) -> Template:
    staff = await current_staff(request)
    return await _deadlines_page(request, staff, case_id)


def _back(case_id: str) -> Redirect:
    return Redirect(path=f"/workspace/cases/{case_id}/deadlines", status_code=303)


async def _deadline_of(s: AsyncSession, case_id: str, form: dict[str, list[str]]) -> CaseDeadline:
    d = await s.get(CaseDeadline, field(form, "deadline_id", 40))
    if d is None or d.case_id != case_id:
        raise deadline_rules.DeadlineError("This deadline is not running.")
    return d


async def _post(
    request: Request[Any, Any, Any],
    case_id: str,
    action: str,
    work: CaseWork,
    done: Redirect | None = None,
) -> Template | Redirect:
    """``case_post`` on the deadlines page; the deadline rules' refusals are shown there."""

    async def guarded(
        s: AsyncSession, staff: StaffPrincipal, case: Case, form: Form
    ) -> Redirect | None:
        try:
            return await work(s, staff, case, form)
        except deadline_rules.DeadlineError as err:
            raise Refused(str(err)) from None
        except CalendarYearMissing:
            raise Refused(CALENDAR_MISSING) from None

    return await case_post(
        request, case_id, (action,), guarded, _deadlines_page, done or _back(case_id)
    )


@post("/cases/{case_id:str}/deadline/pause", name="workspace_deadline_pause")
async def deadline_pause(
    request: Request[Any, Any, Any], case_id: FromPath[str]
) -> Template | Redirect:
    services = services_of(request)

    async def work(s: AsyncSession, staff: StaffPrincipal, case: Case, form: Form) -> None:
        key = await case_key(s, staff, case.id, 400)
        d = await _deadline_of(s, case.id, form)
        await deadlines.pause(
            s,
            services,
            case,
            key,
            d,
            staff.user_id,
            field(form, "reason", 24),
            field(form, "note", 2000, multiline=True),
        )

    return await _post(request, case_id, "manage_deadline", work)


@post("/cases/{case_id:str}/deadline/resume", name="workspace_deadline_resume")
async def deadline_resume(
    request: Request[Any, Any, Any], case_id: FromPath[str]
) -> Template | Redirect:
    async def work(s: AsyncSession, staff: StaffPrincipal, case: Case, form: Form) -> None:
        d = await _deadline_of(s, case.id, form)
        await deadlines.resume(s, case, d, staff.user_id)

    return await _post(request, case_id, "manage_deadline", work)


@post("/cases/{case_id:str}/deadline/extend", name="workspace_deadline_extend")
async def deadline_extend(
    request: Request[Any, Any, Any], case_id: FromPath[str]
) -> Template | Redirect:
    services = services_of(request)

    async def work(s: AsyncSession, staff: StaffPrincipal, case: Case, form: Form) -> None:
        try:
            days = int(field(form, "days", 4) or "0")
        except ValueError:
            days = 0
        key = await case_key(s, staff, case.id, 400)
        d = await _deadline_of(s, case.id, form)
        await deadline_extension.request_extension(
            s,
            services,
            case,
            key,
            d,
            staff.user_id,
            days,
            field(form, "reason", 2000, multiline=True),
            rules=_rules(request),
        )

    return await _post(request, case_id, "manage_deadline", work)


@post("/cases/{case_id:str}/deadline/approve-extension", name="workspace_deadline_approve")
async def deadline_approve(
    request: Request[Any, Any, Any], case_id: FromPath[str]
) -> Template | Redirect:
    async def work(s: AsyncSession, staff: StaffPrincipal, case: Case, form: Form) -> None:
        d = await _deadline_of(s, case.id, form)
        decision = field(form, "decision", 10)
        if decision not in ("approve", "refuse"):
            raise deadline_rules.DeadlineError("There is no extension request to decide.")
        await deadline_extension.approve_extension(
            s, case, d, staff.user_id, approve=decision == "approve"
        )

    to_overdue = Redirect(path="/workspace/overdue", status_code=303)
    return await _post(request, case_id, "approve_extension", work, to_overdue)


deadline_handlers = [
    overdue,
    calendar_view,
    calendar_edit,
    calendar_year,
    case_deadlines,
    deadline_pause,
    deadline_resume,
    deadline_extend,
    deadline_approve,
]

__all__ = ["deadline_handlers"]
