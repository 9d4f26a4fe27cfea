"""Reporters' withdrawal requests (issue 18): the list and the decision.

    GET  /workspace/rights-requests                     the pending requests this person may
                                                        decide (``decide_rights``: approvers,
                                                        identity custodians)
    POST /workspace/rights-requests/{request_id}/decide grant or refuse, with a reason that
                                                        reaches the reporter (audited)
    GET  /workspace/identity-corrections                identity custodians: what reporters
                                                        corrected in their identity, before and
                                                        after (each case shown is audited as
                                                        ``identity.view``)

A request is listed and decided only when policy grants its deciding action on its case
(``investigator.domain.rights.DECIDING_ACTION``): withdrawing the report, an approver not on
the team; withdrawing the identity, an identity custodian not on the team. Everybody else gets
404.
"""

from __future__ import annotations

from typing import Any

from litestar import Request, get, post
from litestar.params import FromPath
from litestar.response import Redirect, Template

from investigator.domain import rights
from investigator.domain.casework import WorkflowError
from investigator.web.case_common import (
    Refused,
    field,
    not_found,
    page,
    read_form,
    services_of,
    staff_who_can,
)
from investigator.web.guards import StaffPrincipal
from portal.kernel import audit
from portal.kernel.db.models import RightsRequest
from portal.kernel.msgid import _

CHOOSE = _("Choose to grant or to refuse the request.")


async def _list_page(
    request: Request[Any, Any, Any],
    staff: StaffPrincipal,
    *,
    error: str | None = None,
    status: int = 200,
    form: dict[str, str] | None = None,
) -> Template:
    async with services_of(request).db.read() as s:
        pending = await rights.pending_for(s, staff.policy())
    return page(
        "rights_requests",
        status,
        staff=staff,
        pending=pending,
        error=error,
        form=form or {},
        done=request.query_params.get("done") == "1",
    )


@get("/rights-requests", name="workspace_rights_requests")
async def rights_requests(request: Request[Any, Any, Any]) -> Template:
    staff = await staff_who_can(request, "decide_rights")
    return await _list_page(request, staff)


@post("/rights-requests/{request_id:str}/decide", name="workspace_rights_decide")
async def rights_decide(
    request: Request[Any, Any, Any], request_id: FromPath[str]
) -> Template | Redirect:
    staff = await staff_who_can(request, "decide_rights")
    services = services_of(request)
    form: dict[str, str] = {}
    try:
        async with services.db.write() as s:
            req = await s.get(RightsRequest, request_id[:64])
            if req is None or not await rights.may_decide(s, staff.policy(), req):
                raise not_found()
            raw = await read_form(request)
            form = {
                "request": req.id,
                "decision": field(raw, "decision", 10),
                "reason": field(raw, "reason", rights.REASON_LIMIT, multiline=True),
            }
            if form["decision"] not in ("grant", "refuse"):
                raise Refused(CHOOSE)
            await rights.decide(
                s,
                req,
                staff.user_id,
                grant=form["decision"] == "grant",
                reason=form["reason"],
                suite=services.keyring.suite,
            )
    except Refused as exc:
        return await _list_page(request, staff, error=exc.message, status=exc.status, form=form)
    except WorkflowError as exc:
        return await _list_page(request, staff, error=str(exc), status=400, form=form)
    return Redirect(path="/workspace/rights-requests?done=1", status_code=303)


@get("/identity-corrections", name="workspace_identity_corrections")
async def identity_corrections(request: Request[Any, Any, Any]) -> Template:
    staff = await staff_who_can(request, "decide_identity")
    async with services_of(request).db.write() as s:
        items = await rights.corrections_for_custodian(s, staff.policy(), staff.private_key)
        for item in items:
            if not item.sealed:  # every reading of an identity is logged on its own (A3)
                await audit.record(
                    s, actor_user_id=staff.user_id, action="identity.view", case_id=item.case_id
                )
    return page("identity_corrections", staff=staff, items=items)


rights_handlers: list[Any] = [rights_requests, rights_decide, identity_corrections]
