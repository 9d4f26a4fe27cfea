"""Protection screens (W12).

    GET  /workspace/cases/{case_id}/protection            risk assessment, plan, leniency
    POST /workspace/cases/{case_id}/protection/plan       save the assessment and the plan
    POST /workspace/cases/{case_id}/protection/leniency   add a leniency record

Policy action ``manage_protection`` (team members; intake officers during intake); 404
otherwise. Everything written here is sealed under the case key.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from litestar import Request, get, post
from litestar.params import FromPath
from litestar.response import Redirect, Template
from sqlalchemy.ext.asyncio import AsyncSession

from investigator.domain import protection
from investigator.domain.casework import RISKS
from investigator.web.case_common import (
    CaseWork,
    Form,
    Refused,
    case_for,
    case_key,
    case_post,
    field,
    key_or_none,
    page,
    services_of,
)
from investigator.web.guards import ServicesDep, Staff, StaffPrincipal
from portal.kernel.db.models import Case
from portal.kernel.msgid import _

BAD_DATE = _("Give the end of monitoring as a date (YYYY-MM-DD), or leave it empty.")


def _to_page(case_id: str) -> Redirect:
    return Redirect(path=f"/workspace/cases/{case_id}/protection", status_code=303)


async def _protection_page(
    request: Request[Any, Any, Any],
    staff: StaffPrincipal,
    case_id: str,
    error: str | None = None,
    status: int = 200,
) -> Template:
    async with services_of(request).db.read() as s:
        case = await case_for(s, staff, case_id, "manage_protection")
        key = await key_or_none(s, staff, case.id)
        plan = leniency = None
        if key is not None:
            plan = await protection.open_plan(s, case.id, key)
            leniency = await protection.list_leniency(s, case.id, key)
        linked = await protection.retaliation_cases(s, case.id)
    return page(
        "protection",
        status,
        staff=staff,
        case=case,
        sealed=key is None,
        plan=plan,
        leniency=leniency or [],
        linked=linked,
        risks=RISKS,
        measures=protection.MEASURES,
        internal_only=protection.INTERNAL_ONLY,
        error=error,
    )


@get("/cases/{case_id:str}/protection", name="workspace_protection")
async def protection_page(
    request: Request[Any, Any, Any], case_id: FromPath[str], staff: Staff
) -> Template:
    return await _protection_page(request, staff, case_id)


async def _post(
    request: Request[Any, Any, Any], case_id: str, work: CaseWork
) -> Template | Redirect:
    return await case_post(
        request, case_id, ("manage_protection",), work, _protection_page, _to_page(case_id)
    )


@post("/cases/{case_id:str}/protection/plan", name="workspace_protection_plan")
async def protection_plan(
    request: Request[Any, Any, Any], case_id: FromPath[str], services: ServicesDep
) -> Template | Redirect:

    async def work(s: AsyncSession, staff: StaffPrincipal, case: Case, form: Form) -> None:
        key = await case_key(s, staff, case.id, 400)
        raw_day = field(form, "monitor_until", 20)
        try:
            monitor_until = dt.date.fromisoformat(raw_day) if raw_day else None
        except ValueError:
            raise Refused(BAD_DATE) from None
        await protection.save_plan(
            s,
            services,
            case,
            key,
            staff.user_id,
            risk=field(form, "risk", 10),
            assessment=field(form, "assessment", 4000, multiline=True),
            contact=field(form, "contact", 200),
            monitor_until=monitor_until,
            measures=field(form, "measures", 4000, multiline=True),
        )

    return await _post(request, case_id, work)


@post("/cases/{case_id:str}/protection/leniency", name="workspace_protection_leniency")
async def protection_leniency(
    request: Request[Any, Any, Any], case_id: FromPath[str], services: ServicesDep
) -> Template | Redirect:

    async def work(s: AsyncSession, staff: StaffPrincipal, case: Case, form: Form) -> None:
        key = await case_key(s, staff, case.id, 400)
        party, _sep, measure = field(form, "measure", 60).partition(":")
        await protection.add_leniency(
            s,
            services,
            case,
            key,
            staff.user_id,
            party=party,
            measure=measure,
            person=field(form, "person", 200),
            reason=field(form, "reason", 4000, multiline=True),
        )

    return await _post(request, case_id, work)


protection_handlers: list[Any] = [protection_page, protection_plan, protection_leniency]
