"""The privacy notice and the reporter's rights on the follow-up page (issue 18).

    GET  /privacy                      the notice (PIPL Art. 17), with the organisation's values
    POST /follow-up/identity/correct   correct the identity held about the reporter
    POST /follow-up/rights             ask to withdraw the report or the identity

The domain is ``portal.reporter.rights`` and ``portal.kernel.org_settings``; these handlers
only read forms and answer with a redirect to the follow-up page and a notice (``?done=``).
"""

from __future__ import annotations

from typing import Any

from litestar import Request, get, post
from litestar.exceptions import NotFoundException
from litestar.response import Redirect, Template

from portal.case.access import NotYours
from portal.kernel import org_settings
from portal.kernel.db.engine import DatabaseUnavailable
from portal.kernel.services import Services
from portal.reporter import rights as reporter_rights
from portal.reporter.intake import parse_identity
from portal.web.reporter import _require, done_redirect, followup_page, services_of


async def org_values(services: Services) -> org_settings.OrgValues:
    async with services.db.read() as s:
        return await org_settings.load(s, services.settings)


@get("/privacy", name="privacy_notice")
async def privacy_notice(request: Request[Any, Any, Any]) -> Template:
    services = services_of(request)
    try:
        values: org_settings.OrgValues = await org_values(services)
    except DatabaseUnavailable:  # the notice is still worth showing with the defaults
        values = org_settings.defaults(services.settings)
    return Template(template_name="portal/privacy.html", context={"org": values})


@post("/follow-up/identity/correct", name="followup_identity_correct")
async def followup_identity_correct(request: Request[Any, Any, Any]) -> Redirect | Template:

    access = _require(request)
    form = await request.form()
    fields = {k: [str(v)] for k, v in form.items()}
    case_id = str(form.get("case_id", ""))[:64]
    identity, errors = parse_identity(fields)
    if identity is None:
        return await followup_page(
            request, access, status=400, show_identity=True, correction_errors=errors,
            correction_fields=fields, correction_case=case_id,
        )  # fmt: skip
    try:
        await reporter_rights.correct_identity(services_of(request), access, case_id, identity)
    except NotYours:
        raise NotFoundException from None
    except reporter_rights.NoIdentity:
        return done_redirect("identity_unreadable")
    except reporter_rights.NothingChanged:
        return done_redirect("identity_unchanged")
    return done_redirect("identity_corrected")


@post("/follow-up/rights", name="followup_rights")
async def followup_rights(request: Request[Any, Any, Any]) -> Redirect:

    access = _require(request)
    form = await request.form()
    kind = str(form.get("kind", ""))
    if kind not in reporter_rights.REQUEST_KINDS:
        return done_redirect("empty")
    try:
        await reporter_rights.ask(
            services_of(request), access, str(form.get("case_id", ""))[:64], kind
        )
    except NotYours:
        raise NotFoundException from None
    except reporter_rights.NoIdentity:
        return done_redirect("identity_unreadable")
    except reporter_rights.AlreadyAsked:
        return done_redirect("rights_waiting")
    return done_redirect("rights_asked")


privacy_handlers: list[Any] = [privacy_notice, followup_identity_correct, followup_rights]
