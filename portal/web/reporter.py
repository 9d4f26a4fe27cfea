"""Reporter routes: landing, new report (streamed, encrypted on arrival), receipt, follow-up.

Everything works with JavaScript disabled. The receipt code is only ever in the body of the
POST response that shows it (and in the POST that downloads it): never in a URL, a cookie, a
session or a log. A reporter gets a session only after signing in with a receipt code.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from typing import Any

from litestar import Request, Response, get, post
from litestar.exceptions import NotFoundException
from litestar.response import Redirect, Template
from litestar.utils.scope.state import ScopeState

from crypto.errors import MalformedReceiptError
from crypto.receipts import RECEIPT_MAX_INPUT, format_receipt, normalize_receipt
from portal.case import reporter_contact, sealing
from portal.case.access import ReporterAccess
from portal.case.evidence import EvidenceSink, StoredFile, Target, make_document_working_copy
from portal.case.stage import PUBLIC_STAGES
from portal.http.csrf import verify_csrf_token
from portal.http.page_cache import StampedTemplate
from portal.http.sessions import current_session, start_session
from portal.http.upload import FilePart, UploadError, UploadResult, read_multipart
from portal.kernel import metrics, redis_state
from portal.kernel.db.engine import DatabaseUnavailable
from portal.kernel.services import Services
from portal.kernel.settings import Settings
from portal.kernel.throttle import AttemptCounter, Busy, TokenBucket
from portal.reporter import arrival, followup, in_doubt, submission
from portal.reporter import rights as reporter_rights
from portal.reporter.intake import KINDS, RELATIONS, ReportInput, parse_report

UPLOAD_SLACK = 2 * 1024 * 1024


def services_of(request: Request[Any, Any, Any]) -> Services:
    services: Services = request.app.state["services"]
    return services


def _page(name: str, status: int = 200, **context: Any) -> Template:
    return Template(template_name=f"portal/{name}.html", context=context, status_code=status)


# --- public pages ------------------------------------------------------------------------------


async def _channel(services: Services, report: ReportInput | None = None) -> arrival.ChannelState:
    """Whether reports (``report``) are taken: from the cached staff, a closed answer checked."""
    return await arrival.current_channel(services.db, report)


def _closed_page() -> Template:
    """No report is taken that nobody could open (C7): nothing of it was stored."""
    return _page("closed", status=503)


@get("/", name="landing")
async def landing(request: Request[Any, Any, Any]) -> Template:
    services = services_of(request)
    try:
        channel: arrival.ChannelState | None = await _channel(services)
    except DatabaseUnavailable:  # the landing page needs no database: it just cannot tell
        channel = None
    return _page("landing", onion=services.settings.onion_address, channel=channel)


@get("/help", name="help")
async def out_of_scope_help() -> Template:
    return _page("help")


async def _form_context(services: Services, **extra: Any) -> dict[str, Any]:
    if extra.get("channel") is None:  # the independent option says whether it can be used
        extra["channel"] = await _channel(services)
    return {
        "categories": await submission.active_categories(services, stale_ok=True),
        "kinds": KINDS,
        "relations": RELATIONS,
        "max_file_mb": services.settings.max_file_bytes // (1024 * 1024),
        "max_files": services.settings.max_files_per_submission,
        "fields": {},
        "errors": {},
        "lost_files": [],
        "submission_token": secrets.token_urlsafe(32),
        "subject_rows": 3,
        **extra,
    }


@get("/report/new", name="report_form")
async def report_form(request: Request[Any, Any, Any]) -> Template:
    services = services_of(request)
    channel = await _channel(services)
    if not channel.open:
        return _closed_page()
    context = await _form_context(services, channel=channel)
    # the blank form is the same for every visitor but for the tokens: rendered once
    token = context.pop("submission_token")
    categories = tuple(
        (c.code, c.name_zh_cn, c.name_zh_tw, c.name_en) for c in context["categories"]
    )
    return StampedTemplate(
        "portal/report_form.html",
        key=(categories, channel, context["max_file_mb"], context["max_files"]),
        context=context,
        stamps={"submission_token": token},
    )


# --- the streaming submission ------------------------------------------------------------------


class _Uploads:
    """Creates the case keys when the first file arrives and a sink per file part."""

    def __init__(
        self,
        services: Services,
        fixed_targets: list[Target] | None = None,
        *,
        new_receipt: bool = False,
    ) -> None:
        self.services = services
        self.targets: list[Target] | None = fixed_targets
        # a new report: its receipt's derivation starts once the form token is verified
        self.new_receipt = new_receipt
        self.receipt: submission.PendingReceipt | None = None

    def targets_for(self, fields: dict[str, list[str]]) -> list[Target]:
        if self.targets is None:
            kind = (fields.get("kind") or ["report"])[0]
            kinds = ["report", "complaint"] if kind == "both" else ["report"]
            self.targets = submission.new_targets(kinds)
        return self.targets

    async def open_sink(self, part: FilePart, fields: dict[str, list[str]]) -> EvidenceSink:
        sink = EvidenceSink(
            self.services.files,
            self.targets_for(fields),
            name=part.filename,
            content_type=part.content_type,
            suite=self.services.keyring.suite,
        )
        return await sink.open()

    async def discard(self, stored: list[StoredFile]) -> None:
        for f in stored:
            await self.services.files.delete(f.storage_key)

    async def discard_all(self, result: UploadResult) -> None:
        for _part, stored in result.files:
            await self.discard(stored)
        result.files.clear()

    async def read(self, request: Request[Any, Any, Any]) -> UploadResult:
        settings = self.services.settings

        def verify(token: str) -> bool:
            # the route is excluded from the CSRF middleware, so the token it would have put in
            # the scope for the page's forms (receipt download, re-rendered form) is set here
            ok = verify_csrf_token(request, token)
            if ok:
                ScopeState.from_scope(request.scope).csrf_token = token
                if self.new_receipt and self.receipt is None:
                    self.receipt = submission.PendingReceipt(self.services)
            return ok

        return await read_multipart(
            request,
            verify_csrf=verify,
            open_sink=self.open_sink,
            discard=self.discard,
            max_file_bytes=settings.max_file_bytes,
            max_files=settings.max_files_per_submission,
        )


async def _document_working_copies(
    services: Services, uploads: _Uploads, result: UploadResult, extra: list[StoredFile]
) -> None:
    """Adds a readable working copy of each PDF or Office original to ``extra`` as it is made
    (so that a failure part way leaves the ones already made where the caller discards them)."""
    from portal.case import metadata

    keys = {t.case_id: t.case_key for t in uploads.targets or []}
    for part, stored in result.files:
        kind = metadata.working_copy_kind(part.content_type, part.filename)
        if kind != "pdf" and kind != "ooxml":
            continue
        for original in stored:
            if original.kind != "original":
                continue
            copy = await make_document_working_copy(
                services.files,
                original,
                keys[original.case_id],
                part.filename,
                part.content_type,
                kind,
                services.keyring.suite,
            )
            if copy is not None:
                extra.append(copy)


def _upload_error_page(err: UploadError) -> Template:
    return _page("upload_error", status=err.status, message=err.message)


def _max_body(settings: Settings) -> int:
    return settings.max_file_bytes * settings.max_files_per_submission + UPLOAD_SLACK


@post("/report", name="report_submit", opt={"exclude_from_csrf": True}, status_code=200)
async def report_submit(request: Request[Any, Any, Any]) -> Template:
    services = services_of(request)
    # refused before any part of the body is parsed: no file reaches the store, no row, no
    # receipt; the body is read and dropped so that the browser receives the page (a server
    # that answers mid-upload and closes makes browsers show a connection error instead)
    if not (await _channel(services)).open:
        async for _chunk in request.stream():
            pass
        return _closed_page()
    return await _take_report(services, _Uploads(services, new_receipt=True), request)


async def _take_report(
    services: Services, uploads: _Uploads, request: Request[Any, Any, Any]
) -> Template:
    try:
        result = await uploads.read(request)
    except UploadError as err:
        return _upload_error_page(err)
    copies: list[StoredFile] = []  # working copies made for this submission
    try:
        return await _file_report(services, uploads, result, copies)
    except BaseException:  # e.g. the database is down: the sealed uploads must not stay behind
        await _discard(uploads, result, copies)
        raise


async def _discard(uploads: _Uploads, result: UploadResult, copies: list[StoredFile]) -> None:
    """Nothing of a submission that is not filed stays in the store."""
    await uploads.discard_all(result)
    await uploads.discard(copies)
    copies.clear()


async def _file_report(
    services: Services, uploads: _Uploads, result: UploadResult, copies: list[StoredFile]
) -> Template:
    """File what was read as a report; anything this raises leaves the uploads to the caller."""
    categories = await submission.category_codes(services, result.first("category"))
    parsed = parse_report(
        result.fields,
        categories,
        files=[p.field for p, _ in result.files],
        require_privacy_ack=True,
    )
    token = result.first("submission_token")
    if parsed.report is None or not (16 <= len(token) <= 100):
        lost = [p.filename for p, _ in result.files]
        await uploads.discard_all(result)
        errors = parsed.errors or {"form": "Your form has expired. Please reload the page."}
        context = await _form_context(
            services,
            fields=result.fields,
            errors=errors,
            lost_files=lost,
            submission_token=token if 16 <= len(token) <= 100 else secrets.token_urlsafe(32),
            subject_rows=max(3, len(result.fields.get("subject_name", []))),
        )
        return _page("report_form", status=400, **context)
    report = parsed.report
    if not (await _channel(services, report)).accepts(report):
        await uploads.discard_all(result)
        return _closed_page()
    targets = uploads.targets or submission.new_targets(report.case_kinds)
    # the first file may have come before `kind` was read as both: keep kinds and keys aligned
    targets = targets[: len(report.case_kinds)]
    if len(targets) < len(report.case_kinds):
        targets += submission.new_targets(report.case_kinds[len(targets) :])
    stored = [
        f for _, files in result.files for f in files if f.case_id in {t.case_id for t in targets}
    ]
    await _document_working_copies(services, uploads, result, copies)
    try:
        code, _numbers = await submission.submit(
            services, report, targets, stored + copies, token, pending=uploads.receipt
        )
    except submission.DuplicateSubmission as dup:
        await _discard(uploads, result, copies)
        if dup.receipt is None:
            return _page("duplicate", status=409)
        code = dup.receipt
    except arrival.NoReader:  # e.g. every intake officer is accused: no receipt, nothing kept
        await _discard(uploads, result, copies)
        return _closed_page()
    except DatabaseUnavailable as err:
        if err.in_doubt:  # the report may have been filed: its files wait for the database
            kept = [f for _, files in result.files for f in files] + copies
            in_doubt.settle_later(services, [f.storage_key for f in kept])
            result.files.clear()
            copies.clear()
        raise
    metrics.SUBMISSIONS.inc()
    return _page("receipt", code=code)


@post("/receipt/download", name="receipt_download", status_code=200)
async def receipt_download(request: Request[Any, Any, Any]) -> Response[str]:
    form = await request.form()
    raw = str(form.get("code", ""))
    try:
        code = format_receipt(normalize_receipt(raw))
    except MalformedReceiptError:
        raise NotFoundException from None
    body = (
        "Receipt code / 查询码:\n\n"
        f"    {code}\n\n"
        "Keep it secret and safe. It is the only way to follow your report.\n"
        "请妥善保管此查询码，这是查看举报进展的唯一凭证。\n"
    )
    return Response(
        content=body,
        media_type="text/plain; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="receipt.txt"'},
    )


# --- follow-up ------------------------------------------------------------------------------------

_bucket: dict[int, TokenBucket] = {}


def _global_bucket(services: Services) -> TokenBucket:
    key = id(services)
    if key not in _bucket:
        _bucket[key] = redis_state.receipt_bucket(services.settings)  # Redis if REDIS_URL
    return _bucket[key]


def _counter(services: Services) -> AttemptCounter:
    return AttemptCounter(
        sealing.server_subkey(services, "receipt-attempts"),
        free_attempts=services.settings.receipt_session_budget,
    )


def _access(request: Request[Any, Any, Any]) -> ReporterAccess | None:
    data = current_session(request, "reporter")
    if data is None:
        return None
    return ReporterAccess(
        receipt_id=data["receipt_id"],
        wrap_key=bytes.fromhex(data["wrap_key"]),
        lookup_token=bytes.fromhex(data["lookup_token"]),
    )


@get("/follow-up", name="followup_signin")
async def followup_signin(request: Request[Any, Any, Any]) -> Template | Redirect:
    if _access(request) is not None:
        return Redirect(path="/follow-up/case", status_code=303)
    return _page(
        "followup_signin",
        attempts=_counter(services_of(request)).encode(0),
        max_len=RECEIPT_MAX_INPUT,
        failed=False,
    )


@post("/follow-up", name="followup_signin_post", status_code=200)
async def followup_signin_post(request: Request[Any, Any, Any]) -> Template | Redirect:
    services = services_of(request)
    form = await request.form()
    raw = str(form.get("code", ""))
    counter = _counter(services)
    attempts = counter.decode(str(form.get("attempts", "")))
    try:
        normalize_receipt(raw)  # the format is public: junk is refused before any token
    except MalformedReceiptError:
        return _page(
            "followup_signin",
            status=400,
            attempts=counter.encode(attempts),
            max_len=RECEIPT_MAX_INPUT,
            failed=True,
            malformed=True,
        )
    delay = counter.delay_for(attempts)
    if delay:
        await asyncio.sleep(delay)
    waited = time.perf_counter()
    try:
        await _global_bucket(services).take()  # RedisUnavailable: 503, never 429
    except Busy:
        return _page("busy", status=429)
    finally:
        metrics.RECEIPT_QUEUE_WAIT.observe(time.perf_counter() - waited)
    access = await followup.sign_in_with_receipt(services, raw)
    if access is None:
        return _page(
            "followup_signin",
            status=400,
            attempts=counter.encode(attempts + 1),
            max_len=RECEIPT_MAX_INPUT,
            failed=True,
        )
    start_session(
        request,
        "reporter",
        {
            "receipt_id": access.receipt_id,
            "wrap_key": access.wrap_key.hex(),
            "lookup_token": access.lookup_token.hex(),
        },
    )
    return Redirect(path="/follow-up/case", status_code=303)


def _require(request: Request[Any, Any, Any]) -> ReporterAccess:
    access = _access(request)
    if access is None:
        raise _SignInAgain
    return access


class _SignInAgain(Exception):
    pass


def _signin_again(_request: Request[Any, Any, Any], _exc: Exception) -> Response[Any]:
    return Redirect(path="/follow-up", status_code=303)


def done_redirect(what: str) -> Redirect:
    """Back to the follow-up page with what was done (a code the page turns into words)."""
    return Redirect(path=f"/follow-up/case?done={what}", status_code=303)


async def rights_context(
    services: Services, access: ReporterAccess, *, show_identity: bool = False
) -> dict[str, Any]:
    """What the follow-up page shows about the reporter's data and requests. The identity's
    values are decrypted only when the reporter asks to see them (``?show=identity``), so the
    page they usually open, maybe on a shared screen, never carries their name."""
    return {
        "show_identity": show_identity,
        "identities": await reporter_rights.my_identities(
            services, access, open_values=show_identity
        ),
        "rights_requests": await reporter_rights.my_requests(services, access),
    }


async def followup_page(
    request: Request[Any, Any, Any],
    access: ReporterAccess,
    *,
    status: int = 200,
    notice: str = "",
    show_identity: bool = False,
    **extra: Any,
) -> Template:
    """The follow-up page: the reporter's cases, their personal data and rights requests."""

    services = services_of(request)
    views = await followup.reporter_view(services, access)
    return _page(
        "followup",
        status=status,
        cases=views,
        stages=PUBLIC_STAGES,
        max_file_mb=services.settings.max_file_bytes // (1024 * 1024),
        notice=notice,
        has_notify_address=await reporter_contact.has_address(services, access.receipt_id),
        **await rights_context(services, access, show_identity=show_identity),
        **extra,
    )


@get("/follow-up/case", name="followup_case")
async def followup_case(request: Request[Any, Any, Any]) -> Template:
    access = _require(request)
    return await followup_page(
        request,
        access,
        notice=request.query_params.get("done", ""),
        show_identity=request.query_params.get("show") == "identity",
    )
