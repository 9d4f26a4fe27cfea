"""Case screens of the workspace (W2 to W5, A1 to A3, A5).

    GET  /workspace/cases                 the case list: metadata only, current deadline,
                                          filters, sorting, search by case number, pages
                                          (``case_lists``)
    GET  /workspace/inbox                 intake officers: the same, in the intake stages
    GET  /workspace/cases/{case_id}       the case page (audited as ``case.view``)
    GET  /workspace/files/{file_id}       download one file, always as an attachment

The POST actions on a case live in ``case_actions``, transfers in ``transfer_routes``,
identity requests in ``identity_routes`` and registration in ``register_routes``;
``case_handlers`` below collects them all for ``workspace_router``.

Every refusal is ``NotFoundException`` (404), exactly as for a missing case.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

from litestar import Request, get
from litestar.params import FromPath
from litestar.response import Stream, Template
from sqlalchemy.ext.asyncio import AsyncSession

from investigator.policy import can
from investigator.web.case_actions import action_handlers
from investigator.web.case_common import (
    allowed,
    case_for,
    key_or_none,
    not_found,
    page,
    services_of,
    share_with_intake,
)
from investigator.web.case_lists import list_page
from investigator.web.case_page import case_page_context, package_key
from investigator.web.guards import StaffPrincipal, current_staff
from investigator.web.identity_routes import identity_handlers
from investigator.web.register_routes import register_handlers
from investigator.web.transfer_routes import transfer_handlers
from portal.case.evidence import read_header, read_plaintext
from portal.kernel import audit
from portal.kernel.db.models import EvidenceFile, TransferPackage

_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]")


@get("/cases", name="workspace_cases")
async def case_list(request: Request[Any, Any, Any]) -> Template:
    staff = await current_staff(request)
    if not can(staff.policy(), "list_cases"):
        raise not_found()
    return await list_page(request, staff, inbox=False)


@get("/inbox", name="workspace_inbox")
async def inbox(request: Request[Any, Any, Any]) -> Template:
    staff = await current_staff(request)
    if not can(staff.policy(), "view_inbox"):
        raise not_found()
    return await list_page(request, staff, inbox=True)


@get("/cases/{case_id:str}", name="workspace_case")
async def case_page(request: Request[Any, Any, Any], case_id: FromPath[str]) -> Template:
    staff = await current_staff(request)
    services = services_of(request)
    async with services.db.write() as s:
        case = await case_for(s, staff, case_id, "view")
        await share_with_intake(s, staff, case)
        context = await case_page_context(services, s, staff, case)
        await audit.record(s, actor_user_id=staff.user_id, action="case.view", case_id=case.id)
    return page("case", **context)


def _disposition(name: str) -> str:
    fallback = _SAFE_NAME.sub("_", name)[:100].strip("._") or "file"
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"


async def _file_key(
    session: AsyncSession, staff: StaffPrincipal, row: EvidenceFile
) -> bytes | None:
    """The key that opens the file, when policy lets this staff member download it."""
    if row.package_id is None:
        action = "view_original" if row.kind == "original" else "view"
        if not await allowed(session, staff, row.case_id, action):
            return None
        return await key_or_none(session, staff, row.case_id)
    package = await session.get(TransferPackage, row.package_id)
    if package is None or package.case_id != row.case_id:
        return None
    if not await allowed(session, staff, row.case_id, "view_transfer", "view"):
        return None
    return await package_key(session, package.id, staff)


@get("/files/{file_id:str}", name="workspace_file")
async def download(request: Request[Any, Any, Any], file_id: FromPath[str]) -> Stream:
    staff = await current_staff(request)
    services = services_of(request)
    async with services.db.write() as s:
        row = await s.get(EvidenceFile, file_id[:64])
        if row is None:
            raise not_found()
        key = await _file_key(s, staff, row)
        if key is None:
            raise not_found()
        header = await read_header(services.files, row.case_id, row.id, row.storage_key, key)
        await audit.record(
            s,
            actor_user_id=staff.user_id,
            action="file.download",
            case_id=row.case_id,
            detail=f"file={row.id} kind={row.kind}",
        )
        case_id, storage_key = row.case_id, row.storage_key

    async def body() -> AsyncIterator[bytes]:
        async for chunk in read_plaintext(services.files, case_id, file_id, storage_key, key):
            yield chunk

    return Stream(
        body(),
        media_type="application/octet-stream",
        headers={
            "Content-Disposition": _disposition(header.name),
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "no-store",
        },
    )


case_handlers: list[Any] = [
    case_list,
    inbox,
    case_page,
    download,
    *action_handlers,
    *transfer_handlers,
    *identity_handlers,
    *register_handlers,
]

__all__ = ["case_handlers"]
