"""Transfers (转办, W3/W4, A2): the package a department receives, and its report back.

    POST /workspace/cases/{case_id}/transfer                    transfer: summary,
                                                                department, due date
    GET  /workspace/cases/{case_id}/transfer/{package_id}       prepare_package (the package's
                                                                creator): add
    POST /workspace/cases/{case_id}/transfer/{package_id}/files   redacted copies (streamed,
                                                                sealed under the package key)
    GET  /workspace/transfers                                   department liaisons: the
                                                                packages of their department
    POST /workspace/transfers/{package_id}/report-back          报备

A package carries the investigator's summary and redacted copies only: never an original file,
never the reporter's identity, never the case page. Its key is wrapped for the department's
liaisons and for the investigator who wrote it (so they can add the redacted copies after the
case has left their intake stage). Uploading redacted copies is allowed only to that creator,
while they are not excluded from the case (a subject or conflicted person never is): policy
action ``prepare_package``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from litestar import Request, get, post
from litestar.exceptions import NotFoundException
from litestar.params import FromPath
from litestar.response import Redirect, Template
from litestar.utils.scope.state import ScopeState
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from crypto.envelope import field_aad
from crypto.recipients import wrap_for_recipient
from investigator.domain import casework
from investigator.policy import can, may_act_on_package
from investigator.web.case_actions import run_action
from investigator.web.case_common import (
    Form,
    Refused,
    confirmed,
    field,
    not_found,
    page,
    read_form,
    services_of,
)
from investigator.web.case_page import open_package, package_key
from investigator.web.guards import StaffPrincipal, current_staff
from portal.case import metadata
from portal.case.errors import WorkflowError
from portal.case.evidence import (
    EvidenceSink,
    StoredFile,
    Target,
    make_document_working_copy,
    read_header,
)
from portal.http.csrf import verify_csrf_token
from portal.http.upload import FilePart, UploadError, read_multipart
from portal.kernel import audit, clock
from portal.kernel.db.models import (
    Case,
    Department,
    EvidenceFile,
    PackageWrap,
    TransferPackage,
    User,
)
from portal.kernel.msgid import _
from portal.kernel.services import Services

BAD_DATE = _("Give the due date as YYYY-MM-DD, today or later.")
ALREADY_REPORTED = _("The department has already reported back on this transfer.")
NO_FILES = _("Choose at least one file.")


def _due(value: str) -> dt.date:
    try:
        due = dt.date.fromisoformat(value)
    except ValueError:
        raise Refused(BAD_DATE) from None
    if due < clock.today():
        raise Refused(BAD_DATE)
    return due


@post("/cases/{case_id:str}/transfer", name="workspace_transfer")
async def transfer(request: Request[Any, Any, Any], case_id: FromPath[str]) -> Template | Redirect:
    services = services_of(request)

    async def work(s: AsyncSession, staff: StaffPrincipal, case: Case, form: Form) -> Redirect:
        summary = field(form, "summary", 20_000, multiline=True)
        if not summary:
            raise Refused(_("Write a summary for the department."))
        due = _due(field(form, "due_on", 10))
        package, pkey = await casework.transfer(
            s,
            services,
            case,
            staff.user_id,
            department_id=field(form, "department_id", 64),
            summary=summary,
            due_on=due,
        )
        me = await s.get(User, staff.user_id)
        if me is not None and await package_key(s, package.id, staff) is None:
            mine = field_aad(package.id, f"package-wrap:{me.id}")
            s.add(
                PackageWrap(
                    package_id=package.id,
                    user_id=me.id,
                    wrapped=wrap_for_recipient(
                        me.public_key, pkey, mine, suite=services.keyring.suite
                    ),
                )
            )
        return Redirect(path=f"/workspace/cases/{case.id}/transfer/{package.id}", status_code=303)

    return await run_action(request, case_id, ("transfer",), work)


async def _own_package(
    s: AsyncSession, staff: StaffPrincipal, case_id: str, package_id: str
) -> tuple[TransferPackage, bytes]:
    """The package and its key for its creator; NotFoundException for anyone else."""
    package = await s.get(TransferPackage, package_id[:64])
    if (
        package is None
        or package.case_id != case_id
        or not await may_act_on_package(s, staff.policy(), package.id, "prepare_package")
    ):
        raise not_found()
    pkey = await package_key(s, package.id, staff)
    if pkey is None:
        raise not_found()
    return package, pkey


async def _package_files(
    services: Services, s: AsyncSession, package: TransferPackage, pkey: bytes
) -> list[tuple[str, str]]:
    rows = (
        await s.execute(
            select(EvidenceFile)
            .where(EvidenceFile.package_id == package.id)
            .order_by(EvidenceFile.created_on)
        )
    ).scalars()
    out = []
    for row in rows:
        header = await read_header(services.files, row.case_id, row.id, row.storage_key, pkey)
        out.append((row.id, header.name))
    return out


async def _package_page(
    request: Request[Any, Any, Any],
    staff: StaffPrincipal,
    case_id: str,
    package_id: str,
    *,
    error: str | None = None,
    status: int = 200,
) -> Template:
    services = services_of(request)
    async with services.db.write() as s:
        package, pkey = await _own_package(s, staff, case_id, package_id)
        summary, report = open_package(package, pkey)
        files = await _package_files(services, s, package, pkey)
        department = await s.get(Department, package.department_id)
        case = await s.get(Case, case_id)
        await audit.record(
            s,
            actor_user_id=staff.user_id,
            action="transfer.view",
            case_id=case_id,
            detail=f"package={package.id}",
        )
    return page(
        "package",
        status,
        staff=staff,
        case=case,
        package=package,
        department=department.name if department else "",
        summary=summary,
        report=report,
        files=files,
        error=error,
        max_file_mb=services.settings.max_file_bytes // (1024 * 1024),
    )


@get("/cases/{case_id:str}/transfer/{package_id:str}", name="workspace_package")
async def package_page(
    request: Request[Any, Any, Any], case_id: FromPath[str], package_id: FromPath[str]
) -> Template:
    staff = await current_staff(request)
    return await _package_page(request, staff, case_id, package_id)


class _RedactedUploads:
    """One EvidenceSink per file part, sealed under the package key."""

    def __init__(self, services: Services, target: Target) -> None:
        self.services = services
        self.target = target

    async def open_sink(self, part: FilePart, _fields: dict[str, list[str]]) -> EvidenceSink:
        sink = EvidenceSink(
            self.services.files,
            [self.target],
            name=part.filename,
            content_type=part.content_type,
            suite=self.services.keyring.suite,
            uploaded_by="staff",
        )
        return await sink.open()

    async def discard(self, stored: list[StoredFile]) -> None:
        for f in stored:
            await self.services.files.delete(f.storage_key)

    async def cleaned(self, part: FilePart, stored: list[StoredFile]) -> StoredFile:
        """The metadata-stripped copy when one can be made (the unstripped one is deleted)."""
        working = [f for f in stored if f.kind == "working"]
        original = next(f for f in stored if f.kind == "original")
        if not working:
            kind = metadata.working_copy_kind(part.content_type, part.filename)
            if kind in ("pdf", "ooxml"):
                copy = await make_document_working_copy(
                    self.services.files,
                    original,
                    self.target.case_key,
                    part.filename,
                    part.content_type,
                    kind,
                    self.services.keyring.suite,
                )
                if copy is not None:
                    working = [copy]
        if not working:
            return original
        await self.services.files.delete(original.storage_key)
        return working[0]


@post(
    "/cases/{case_id:str}/transfer/{package_id:str}/files",
    name="workspace_package_files",
    opt={"exclude_from_csrf": True},
    request_max_body_size=None,  # read_multipart bounds every file, field and the file count
)
async def package_files(
    request: Request[Any, Any, Any], case_id: FromPath[str], package_id: FromPath[str]
) -> Template | Redirect:
    staff = await current_staff(request)
    services = services_of(request)
    async with services.db.read() as s:
        package, pkey = await _own_package(s, staff, case_id, package_id)
    uploads = _RedactedUploads(services, Target(case_id=case_id, case_key=pkey))

    def verify(token: str) -> bool:
        ok = verify_csrf_token(request, token)
        if ok:
            ScopeState.from_scope(request.scope).csrf_token = token
        return ok

    try:
        result = await read_multipart(
            request,
            verify_csrf=verify,
            open_sink=uploads.open_sink,
            discard=uploads.discard,
            max_file_bytes=services.settings.max_file_bytes,
            max_files=services.settings.max_files_per_submission,
        )
    except UploadError as err:
        if err.status == 403:
            raise NotFoundException() from None
        return await _package_page(
            request, staff, case_id, package_id, error=err.message, status=err.status
        )
    if not result.files:
        return await _package_page(request, staff, case_id, package_id, error=NO_FILES, status=400)
    kept: list[StoredFile] = []
    try:
        for part, stored in result.files:
            kept.append(await uploads.cleaned(part, stored))
        async with services.db.write() as s:
            package, _pkey = await _own_package(s, staff, case_id, package_id)
            for f in kept:
                s.add(
                    EvidenceFile(
                        id=f.file_id,
                        case_id=case_id,
                        kind="redacted",
                        package_id=package.id,
                        storage_key=f.storage_key,
                        uploaded_by="staff",
                        created_on=clock.today(),
                    )
                )
            await audit.record(
                s,
                actor_user_id=staff.user_id,
                action="transfer.add_files",
                case_id=case_id,
                detail=f"package={package.id} files={len(kept)}",
            )
    except BaseException:
        for f in kept:
            await services.files.delete(f.storage_key)
        raise
    return confirmed(
        Redirect(path=f"/workspace/cases/{case_id}/transfer/{package_id}", status_code=303)
    )


# --- the department's side ---


async def _liaison_packages(
    services: Services, s: AsyncSession, staff: StaffPrincipal
) -> list[dict[str, Any]]:
    if staff.department_id is None:
        return []
    rows = (
        await s.execute(
            select(TransferPackage, Case.number)
            .join(Case, Case.id == TransferPackage.case_id)
            .join(PackageWrap, PackageWrap.package_id == TransferPackage.id)
            .where(
                TransferPackage.department_id == staff.department_id,
                PackageWrap.user_id == staff.user_id,
            )
            .order_by(TransferPackage.due_on)
        )
    ).all()
    out = []
    for package, number in rows:
        if not await may_act_on_package(s, staff.policy(), package.id, "receive_package"):
            continue
        pkey = await package_key(s, package.id, staff)
        if pkey is None:
            continue
        summary, report = open_package(package, pkey)
        out.append(
            {
                "package": package,
                "number": number,
                "summary": summary,
                "report": report,
                "files": await _package_files(services, s, package, pkey),
            }
        )
        await audit.record(
            s,
            actor_user_id=staff.user_id,
            action="transfer.view",
            case_id=package.case_id,
            detail=f"package={package.id}",
        )
    return out


async def _transfers_page(
    request: Request[Any, Any, Any],
    staff: StaffPrincipal,
    *,
    error: str | None = None,
    status: int = 200,
) -> Template:
    services = services_of(request)
    async with services.db.write() as s:
        packages = await _liaison_packages(services, s, staff)
    return page("transfers", status, staff=staff, packages=packages, error=error)


@get("/transfers", name="workspace_transfers")
async def transfers(request: Request[Any, Any, Any]) -> Template:
    staff = await current_staff(request)
    if not can(staff.policy(), "view_transfers"):
        raise not_found()
    return await _transfers_page(request, staff)


@post("/transfers/{package_id:str}/report-back", name="workspace_report_back")
async def report_back(
    request: Request[Any, Any, Any], package_id: FromPath[str]
) -> Template | Redirect:
    staff = await current_staff(request)
    services = services_of(request)
    try:
        async with services.db.write() as s:
            package = await s.get(TransferPackage, package_id[:64])
            if package is None or not await may_act_on_package(
                s, staff.policy(), package.id, "receive_package"
            ):
                raise not_found()
            pkey = await package_key(s, package.id, staff)
            if pkey is None:
                raise not_found()
            form = await read_form(request)
            text = field(form, "text", 20_000, multiline=True)
            if not text:
                raise Refused(_("Say what the department did."))
            if package.reported_on is not None:
                raise Refused(ALREADY_REPORTED, 409)
            await casework.report_back(s, services, package, pkey, staff.user_id, text)
    except (Refused, WorkflowError) as exc:
        message = exc.message if isinstance(exc, Refused) else str(exc)
        code = exc.status if isinstance(exc, Refused) else 400
        return await _transfers_page(request, staff, error=message, status=code)
    return confirmed(Redirect(path="/workspace/transfers", status_code=303))


transfer_handlers: list[Any] = [transfer, package_page, package_files, transfers, report_back]
