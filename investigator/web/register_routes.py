"""W2: intake officers register a report received by phone, WeChat, 公众号, e-mail, letter or
visit, on the reporter's behalf.

    GET  /workspace/register   (also /workspace/cases/new)   the form
    POST /workspace/register                                 commit; show the receipt code once

A report about the 法审风控中心 itself ("about_centre", offered when an independent reviewer
exists) takes the independent channel as on the portal: the registering officer cannot open
it afterwards. The same fields and checks as the portal form
(``portal.reporter.intake.parse_report``) and the same commit
(``portal.reporter.submission.submit``) with the channel recorded; no files here (the reporter
can add evidence later with the receipt code). The receipt code is in the body of the POST
response only, for the officer to pass on; it is never stored or logged in plaintext.
"""

from __future__ import annotations

import secrets
from typing import Any

from litestar import Request, get, post
from litestar.response import Template

import portal.reporter.submission as reporter_submission
from investigator.policy import can
from investigator.web.case_common import not_found, page, read_form, services_of
from investigator.web.guards import ServicesDep, StaffPrincipal, current_staff
from portal.kernel import audit
from portal.kernel.msgid import _
from portal.kernel.services import Services
from portal.reporter.arrival import NoReader, current_channel
from portal.reporter.intake import KINDS, RELATIONS, parse_report

CHANNELS: tuple[str, ...] = ("phone", "wechat", "official_account", "email", "letter", "visit")
CHOOSE_CHANNEL = _("Choose how the report was received.")
NO_READER = _(
    "Not registered: nobody could open this report (no intake officer or, for a name given, "
    "no identity custodian who is not named in it). Nothing was stored."
)
NO_REVIEWER = _(
    "Not registered: no independent reviewer has been appointed to open a report about the "
    "法审风控中心 itself. Nothing was stored."
)
SUBJECT_ROWS = 3


async def _form_page(
    services: Services,
    staff: StaffPrincipal,
    *,
    fields: dict[str, list[str]] | None = None,
    errors: dict[str, str] | None = None,
    token: str | None = None,
    status: int = 200,
) -> Template:
    return page(
        "register",
        status,
        staff=staff,
        channels=CHANNELS,
        categories=await reporter_submission.active_categories(services, stale_ok=True),
        kinds=KINDS,
        relations=RELATIONS,
        fields=fields or {},
        errors=errors or {},
        submission_token=token or secrets.token_urlsafe(32),
        subject_rows=SUBJECT_ROWS,
        independent_ready=(await current_channel(services.db)).independent_ready,
    )


async def _officer(request: Request[Any, Any, Any]) -> StaffPrincipal:
    staff = await current_staff(request)
    if not can(staff.policy(), "register_case"):
        raise not_found()
    return staff


@get(["/register", "/cases/new"], name="workspace_register")
async def register_form(request: Request[Any, Any, Any]) -> Template:
    staff = await _officer(request)
    return await _form_page(services_of(request), staff)


@post("/register", name="workspace_register_submit", status_code=200)
async def register_submit(request: Request[Any, Any, Any], services: ServicesDep) -> Template:
    staff = await _officer(request)
    fields = await read_form(request)
    token = (fields.get("submission_token") or [""])[0]
    channel = (fields.get("channel") or [""])[0]
    categories = [c.code for c in await reporter_submission.active_categories(services)]
    parsed = parse_report(fields, categories)
    errors = dict(parsed.errors)
    if channel not in CHANNELS:
        errors["channel"] = CHOOSE_CHANNEL
    if not 16 <= len(token) <= 100:
        errors["form"] = _("Your form has expired. Please reload the page.")
        token = ""
    report = parsed.report
    if report is not None and report.independent:
        state = await current_channel(services.db, report)
        if not state.accepts(report):
            errors["form"] = NO_REVIEWER
    if parsed.report is None or errors:
        return await _form_page(
            services, staff, fields=fields, errors=errors, token=token or None, status=400
        )
    targets = reporter_submission.new_targets(parsed.report.case_kinds)
    try:
        code, numbers = await reporter_submission.submit(
            services, parsed.report, targets, [], token, channel=channel
        )
    except NoReader:
        errors = {"form": NO_READER}
        return await _form_page(
            services, staff, fields=fields, errors=errors, token=token or None, status=400
        )
    except reporter_submission.DuplicateSubmission as dup:
        if dup.receipt is None:
            return page("register_done", 409, staff=staff, code=None, numbers=[])
        return page("register_done", staff=staff, code=dup.receipt, numbers=[])
    async with services.db.write() as s:
        for target in targets:
            await audit.record(
                s,
                actor_user_id=staff.user_id,
                action="case.register",
                case_id=target.case_id,
                detail=f"channel={channel}",
            )
    return page("register_done", staff=staff, code=code, numbers=numbers)


register_handlers: list[Any] = [register_form, register_submit]
