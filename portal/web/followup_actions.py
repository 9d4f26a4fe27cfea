"""What a signed-in reporter does from the follow-up page: messages, evidence, identity and more."""

from __future__ import annotations

from typing import Any

from litestar import Request, post
from litestar.exceptions import NotFoundException
from litestar.response import Redirect, Template

from portal.case import reporter_contact
from portal.case.access import NotYours
from portal.case.evidence import Target
from portal.http.sessions import end_session
from portal.http.upload import UploadError
from portal.kernel.db.engine import DatabaseUnavailable
from portal.reporter import arrival, followup, in_doubt
from portal.reporter.intake import parse_identity
from portal.web.reporter import (
    _document_working_copies,
    _require,
    _upload_error_page,
    _Uploads,
    done_redirect,
    followup_page,
    services_of,
)


async def _form_text(request: Request[Any, Any, Any], name: str, limit: int = 20_000) -> str:
    from portal.kernel.text import clean_text

    form = await request.form()
    return clean_text(str(form.get(name, "")), limit, multiline=True)


@post("/follow-up/message", name="followup_message")
async def followup_message(request: Request[Any, Any, Any]) -> Redirect | Template:
    access = _require(request)
    form = await request.form()
    text = await _form_text(request, "text")
    if not text:
        return done_redirect("empty")
    try:
        await followup.reporter_reply(
            services_of(request), access, str(form.get("case_id", "")), text
        )
    except NotYours:
        raise NotFoundException from None
    return done_redirect("message")


@post("/follow-up/evidence", name="followup_evidence", opt={"exclude_from_csrf": True})
async def followup_evidence(request: Request[Any, Any, Any]) -> Redirect | Template:
    access = _require(request)
    services = services_of(request)
    async with services.db.read() as s:
        keys = await followup.reporter_case_keys(s, access)
    uploads = _Uploads(services)

    def pick(fields: dict[str, list[str]]) -> list[Target]:
        case_id = (fields.get("case_id") or [""])[0]
        if case_id not in keys:
            raise UploadError(404, "Not found.")
        return [Target(case_id=case_id, case_key=keys[case_id])]

    uploads.targets_for = pick  # type: ignore[method-assign]
    try:
        result = await uploads.read(request)
    except UploadError as err:
        return _upload_error_page(err)
    if not result.files:
        return done_redirect("nofile")
    stored = [f for _, files in result.files for f in files]
    uploads.targets = pick(result.fields)
    try:
        await _document_working_copies(services, uploads, result, stored)
        await followup.reporter_add_files(services, access, stored)
    except DatabaseUnavailable as err:
        if err.in_doubt:  # they may have been added: they wait for the database to tell
            in_doubt.settle_later(services, [f.storage_key for f in stored])
        else:
            await uploads.discard(stored)
        raise
    except BaseException:
        await uploads.discard(stored)
        raise
    return done_redirect("evidence")


@post("/follow-up/identity", name="followup_identity")
async def followup_identity(request: Request[Any, Any, Any]) -> Redirect | Template:
    access = _require(request)
    form = await request.form()
    fields = {k: [str(v)] for k, v in form.items()}
    identity, errors = parse_identity(fields)
    if identity is None:
        return await followup_page(
            request, access, status=400, identity_errors=errors, identity_fields=fields
        )
    try:
        await followup.reporter_add_identity(services_of(request), access, identity)
    except arrival.NoReader:
        return done_redirect("identity_closed")
    return done_redirect("identity")


@post("/follow-up/feedback", name="followup_feedback")
async def followup_feedback(request: Request[Any, Any, Any]) -> Redirect:
    access = _require(request)
    form = await request.form()
    kind = str(form.get("kind", ""))
    if kind not in ("satisfied", "dissatisfied", "rehandling_requested"):
        return done_redirect("empty")
    text = await _form_text(request, "text", 4000)
    try:
        await followup.reporter_feedback(
            services_of(request), access, str(form.get("case_id", "")), kind, text
        )
    except NotYours:
        raise NotFoundException from None
    return done_redirect("feedback")


@post("/follow-up/retaliation", name="followup_retaliation")
async def followup_retaliation(request: Request[Any, Any, Any]) -> Redirect:
    access = _require(request)
    form = await request.form()
    text = await _form_text(request, "text")
    if not text:
        return done_redirect("empty")
    try:
        await followup.report_retaliation(
            services_of(request), access, str(form.get("case_id", "")), text
        )
    except NotYours:
        raise NotFoundException from None
    except arrival.NoReader:
        return done_redirect("closed")
    return done_redirect("retaliation")


@post("/follow-up/reward-claim", name="followup_reward_claim")
async def followup_reward_claim(request: Request[Any, Any, Any]) -> Redirect:
    """W11: claim an approved reward; details sealed for the reward officers only."""
    from portal.case.errors import WorkflowError
    from portal.kernel.text import clean_text
    from portal.reporter.rewards import reporter_claim

    access = _require(request)
    form = await request.form()
    try:
        await reporter_claim(
            services_of(request),
            access,
            str(form.get("case_id", "")),
            name=clean_text(str(form.get("name", "")), 100),
            contact=clean_text(str(form.get("contact", "")), 200),
            payment=clean_text(str(form.get("payment", "")), 1000, multiline=True),
        )
    except NotYours:
        raise NotFoundException from None
    except WorkflowError:
        return done_redirect("empty")
    return done_redirect("reward")


@post("/follow-up/notify-address", name="followup_notify_address")
async def followup_notify_address(request: Request[Any, Any, Any]) -> Redirect:
    """Optional "notify me at this address" (issue 7): only ever "there is news" mails."""
    access = _require(request)
    form = await request.form()
    services = services_of(request)
    if str(form.get("remove", "")) == "yes":
        await reporter_contact.remove_address(services, access.receipt_id)
        return done_redirect("address_removed")
    try:
        await reporter_contact.set_address(
            services, access.receipt_id, str(form.get("address", ""))[:1000]
        )
    except reporter_contact.BadAddress:
        return done_redirect("bad_address")
    return done_redirect("address")


@post("/follow-up/sign-out", name="followup_signout")
async def followup_signout(request: Request[Any, Any, Any]) -> Redirect:
    end_session(request)
    return Redirect(path="/", status_code=303)
