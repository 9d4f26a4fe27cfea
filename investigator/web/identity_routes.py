"""Identity disclosure decisions for identity custodians (A3).

    GET  /workspace/identity-requests                  pending requests the custodian may decide
    POST /workspace/identity-requests/{request_id}/decide   approve or refuse; tell the reporter
                                                       (default on)

A request is listed, and may be decided, only when policy grants ``decide_identity`` on its
case: a custodian who is a subject, conflicted, or on the team never sees it. The requester's
reason is sealed under the case key; it is shown when the custodian holds that key. A
custodian who holds the identity key and decides (either way) shares it with the custodians
appointed since the report arrived (``investigator.domain.keyshare``), so they can decide too.
"""

from __future__ import annotations

from typing import Any

from litestar import Request, get, post
from litestar.params import FromPath
from litestar.response import Redirect, Template
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from crypto.envelope import field_aad
from investigator.domain import casework
from investigator.domain.casefile import NoKey
from investigator.policy import can, may_act_on_case
from investigator.web.case_common import (
    NO_KEY,
    Refused,
    checked,
    confirmed,
    field,
    key_or_none,
    not_found,
    page,
    read_form,
    services_of,
    share_with_custodians,
)
from investigator.web.guards import StaffPrincipal, current_staff
from portal.case.errors import WorkflowError
from portal.case.sealing import open_json
from portal.kernel.db.models import Case, IdentityRequest, User
from portal.kernel.msgid import _

CHOOSE_DECISION = _("Choose to approve or to refuse the request.")


async def _pending(s: AsyncSession, staff: StaffPrincipal) -> list[dict[str, Any]]:
    rows = (
        await s.execute(
            select(IdentityRequest, Case.number, User.display_name)
            .join(Case, Case.id == IdentityRequest.case_id)
            .join(User, User.id == IdentityRequest.requester_id)
            .where(IdentityRequest.status == "pending")
            .order_by(IdentityRequest.created_at)
        )
    ).all()
    out = []
    for req, number, requester in rows:
        if req.requester_id == staff.user_id:
            continue
        if not await may_act_on_case(s, staff.policy(), req.case_id, "decide_identity"):
            continue
        reason: str | None = None
        key = await key_or_none(s, staff, req.case_id)
        if key is not None:
            doc = open_json(
                key, req.sealed_reason, field_aad(req.case_id, f"identity-request:{req.id}")
            )
            reason = str(doc.get("reason", ""))
        out.append({"request": req, "number": number, "requester": requester, "reason": reason})
    return out


async def _list_page(
    request: Request[Any, Any, Any],
    staff: StaffPrincipal,
    *,
    error: str | None = None,
    status: int = 200,
) -> Template:
    async with services_of(request).db.read() as s:
        pending = await _pending(s, staff)
    return page("identity_requests", status, staff=staff, pending=pending, error=error)


@get("/identity-requests", name="workspace_identity_requests")
async def identity_requests(request: Request[Any, Any, Any]) -> Template:
    staff = await current_staff(request)
    if not can(staff.policy(), "decide_identity"):
        raise not_found()
    return await _list_page(request, staff)


@post("/identity-requests/{request_id:str}/decide", name="workspace_identity_decide")
async def decide(request: Request[Any, Any, Any], request_id: FromPath[str]) -> Template | Redirect:
    staff = await current_staff(request)
    try:
        async with services_of(request).db.write() as s:
            req = await s.get(IdentityRequest, request_id[:64])
            if req is None or not await may_act_on_case(
                s, staff.policy(), req.case_id, "decide_identity"
            ):
                raise not_found()
            form = await read_form(request)
            decision = field(form, "decision", 10)
            if decision not in ("approve", "refuse"):
                raise Refused(CHOOSE_DECISION)
            await casework.decide_identity(
                s,
                req,
                staff.user_id,
                staff.private_key,
                approve=decision == "approve",
                tell_reporter=checked(form, "tell_reporter"),
            )
            case = await s.get(Case, req.case_id)
            if case is not None:
                await share_with_custodians(s, staff, case)
    except Refused as exc:
        return await _list_page(request, staff, error=exc.message, status=exc.status)
    except WorkflowError as exc:
        return await _list_page(request, staff, error=str(exc), status=400)
    except NoKey:
        return await _list_page(request, staff, error=NO_KEY, status=409)
    return confirmed(Redirect(path="/workspace/identity-requests", status_code=303))


identity_handlers: list[Any] = [identity_requests, decide]
