"""Archive and destruction screens (W13, C5).

    POST /workspace/cases/{case_id}/archive                 archive a closed case (``archive``)
    GET  /workspace/archive                                 archived cases (``manage_archive``)
    POST /workspace/archive/{case_id}/hold                  set or clear a legal hold
    POST /workspace/archive/{case_id}/approve-destruction   one of the two approvals; once the
                                                            second is given and the retention
                                                            date has passed, the case is
                                                            destroyed at once

The archive list shows plaintext metadata only (number, category, outcome, dates, hold and
approvals) and leaves out cases the approver is excluded from (subject, conflict).
"""

from __future__ import annotations

from typing import Any

from litestar import Request, get, post
from litestar.params import FromPath
from litestar.response import Redirect, Template
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from investigator.domain import directory, retention
from investigator.policy import can, excluded_case_ids_clause
from investigator.web.case_common import (
    Form,
    Refused,
    allowed,
    case_for,
    case_post,
    field,
    not_found,
    page,
    read_form,
    services_of,
    to_case,
)
from investigator.web.guards import StaffPrincipal, current_staff
from portal.case.errors import WorkflowError
from portal.kernel import clock
from portal.kernel.db.models import ArchiveRecord, Case
from portal.kernel.msgid import _

DESTROYED = _("The case has been destroyed.")


async def _archive_page(
    request: Request[Any, Any, Any],
    staff: StaffPrincipal,
    *,
    error: str | None = None,
    notice: str | None = None,
    status: int = 200,
) -> Template:
    if not can(staff.policy(), "manage_archive"):
        raise not_found()
    today = clock.today()
    async with services_of(request).db.read() as s:
        rows = (
            await s.execute(
                select(Case, ArchiveRecord)
                .join(ArchiveRecord, ArchiveRecord.case_id == Case.id)
                .where(
                    Case.stage == "archived",
                    Case.destroyed_on.is_(None),
                    await excluded_case_ids_clause(staff.policy()),
                )
                .order_by(ArchiveRecord.retain_until, Case.number)
            )
        ).all()
        categories = await directory.categories(s)
        items = []
        for case, record in rows:
            approvers = {a.approver_id for a in await retention.approvals(s, case.id)}
            items.append(
                {
                    "case": case,
                    "record": record,
                    "approvals": len(approvers),
                    "mine": staff.user_id in approvers,
                    "due": record.retain_until <= today,
                    "may_approve": await allowed(s, staff, case.id, "approve_destruction"),
                    "may_hold": await allowed(s, staff, case.id, "legal_hold"),
                }
            )
    return page(
        "archive",
        status,
        staff=staff,
        items=items,
        categories=categories,
        error=error,
        notice=notice,
        today=today,
    )


@get("/archive", name="workspace_archive")
async def archive_list(request: Request[Any, Any, Any]) -> Template:
    staff = await current_staff(request)
    notice = DESTROYED if request.query_params.get("done") == "destroyed" else None
    return await _archive_page(request, staff, notice=notice)


@post("/cases/{case_id:str}/archive", name="workspace_case_archive")
async def archive_case(
    request: Request[Any, Any, Any], case_id: FromPath[str]
) -> Redirect | Template:
    staff = await current_staff(request)
    services = services_of(request)
    try:
        async with services.db.write() as s:
            case = await case_for(s, staff, case_id, "archive")
            await retention.archive(s, services.settings, case, staff.user_id)
    except WorkflowError as exc:
        return page("archive_error", 400, staff=staff, error=str(exc), case_id=case_id)
    return to_case(case_id)


async def _archive_again(
    request: Request[Any, Any, Any], staff: StaffPrincipal, _case_id: str, error: str, status: int
) -> Template:
    return await _archive_page(request, staff, error=error, status=status)


@post("/archive/{case_id:str}/hold", name="workspace_archive_hold")
async def archive_hold(
    request: Request[Any, Any, Any], case_id: FromPath[str]
) -> Redirect | Template:
    async def work(s: AsyncSession, staff: StaffPrincipal, case: Case, form: Form) -> None:
        hold = field(form, "hold", 5)
        if hold not in ("on", "off"):
            raise Refused(_("Choose to set or to clear the legal hold."))
        await retention.set_legal_hold(s, case.id, staff.user_id, hold=hold == "on")

    done = Redirect(path="/workspace/archive", status_code=303)
    return await case_post(request, case_id, ("legal_hold",), work, _archive_again, done)


@post("/archive/{case_id:str}/approve-destruction", name="workspace_archive_destroy")
async def approve_destruction(
    request: Request[Any, Any, Any], case_id: FromPath[str]
) -> Redirect | Template:
    staff = await current_staff(request)
    services = services_of(request)
    try:
        async with services.db.write() as s:
            case = await case_for(s, staff, case_id, "approve_destruction")
            form = await read_form(request)
            if field(form, "confirm", 5) != "yes":
                raise WorkflowError(_("Confirm that the destruction cannot be undone."))
            count = await retention.approve_destruction(s, case, staff.user_id)
            record = await s.get(ArchiveRecord, case.id)
            ready = (
                count >= retention.APPROVALS_NEEDED
                and record is not None
                and not record.legal_hold
                and record.retain_until <= clock.today()
            )
        if ready:
            await retention.destroy_case(services, case_id, staff.user_id)
            return Redirect(path="/workspace/archive?done=destroyed", status_code=303)
    except WorkflowError as exc:
        return await _archive_page(request, staff, error=str(exc), status=400)
    return Redirect(path="/workspace/archive", status_code=303)


archive_handlers: list[Any] = [archive_list, archive_case, archive_hold, approve_destruction]
