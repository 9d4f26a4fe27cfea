"""Archive and destruction screens (W13, C5).

    GET  /workspace/closed                                  intake officers: rejected and
                                                            transferred cases closed without a
                                                            team, waiting to be archived
                                                            (``archive_closed``; metadata only)
    POST /workspace/cases/{case_id}/archive                 archive a closed case (``archive``);
                                                            whoever loses the case with it is
                                                            told where it went
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
from investigator.policy import can, excluded_case_ids_clause, offered, role_scope_clause
from investigator.web.case_common import (
    Form,
    Refused,
    allowed,
    away_if_unseen,
    case_for,
    case_post,
    confirmed,
    field,
    not_found,
    page,
    read_form,
    services_of,
    to_case,
)
from investigator.web.guards import StaffPrincipal, current_staff
from portal.case.errors import WorkflowError
from portal.case.stage import PUBLIC_STAGES
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
                    # an independent reviewer keeps the archive of the independent cases only
                    role_scope_clause(staff.policy(), "approver"),
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
            # an archived case leaves an intake officer's view: back to their list, told where
            # it went; a lead keeps it and sees the case page confirm it
            if not await allowed(s, staff, case.id, "view") and can(
                staff.policy(), "archive_closed"
            ):
                return Redirect(path=f"{CLOSED_PATH}?done=archived", status_code=303)
            away = await away_if_unseen(s, staff, case.id, "archived")
    except WorkflowError as exc:
        return page("archive_error", 400, staff=staff, error=str(exc), case_id=case_id)
    return away or confirmed(to_case(case_id))


CLOSED_PATH = "/workspace/closed"
ARCHIVED = _(
    "The case was archived. It is now in the archive, kept by the approvers until its "
    "retention period ends; it is no longer in your view."
)


@get("/closed", name="workspace_closed")
async def closed_list(request: Request[Any, Any, Any]) -> Template:
    """Cases closed without a team (rejected, transferred) that this intake officer may
    archive: plaintext metadata only, since the case itself has left the intake stages."""
    staff = await current_staff(request)
    if not can(staff.policy(), "archive_closed"):
        raise not_found()
    principal = staff.policy()
    async with services_of(request).db.read() as s:
        cases = (
            await s.execute(
                select(Case)
                .where(
                    Case.stage.in_(("rejected", "transferred")),
                    Case.destroyed_on.is_(None),
                    await excluded_case_ids_clause(principal),
                    # an independent reviewer closes the independent cases only
                    role_scope_clause(principal, "intake_officer"),
                )
                .order_by(Case.closed_on, Case.number)
            )
        ).scalars()
        items = []
        for case in cases:
            offers = await offered(s, principal, case.id)
            items.append({"case": case, "may_archive": "archive" in offers})
    notice = ARCHIVED if request.query_params.get("done") == "archived" else None
    return page("closed", staff=staff, items=items, stages=PUBLIC_STAGES, notice=notice)


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


archive_handlers: list[Any] = [
    archive_list,
    archive_case,
    closed_list,
    archive_hold,
    approve_destruction,
]
