"""Case exports (A2, W13): ZIP downloads, always attachments with nosniff and no-store.

    GET /workspace/cases/{case_id}/export        the team lead's archive ZIP (``export_case``)
    GET /workspace/transfers/{package_id}/export the liaison's transfer package ZIP
                                                 (``view_transfer`` and a package key wrap)

Anyone else gets 404, the same answer as for a case that does not exist: a subject or a
conflicted person (the originals rule) included, whatever their roles. Every export is
audited with its size; the ZIP is built in memory (``investigator.domain.case_export``).
"""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get
from litestar.params import FromPath

from investigator.domain.case_export import ExportTooLarge, case_archive, package_archive
from investigator.policy import may_act_on_package
from investigator.web.case_common import case_for, key_or_none, not_found, page
from investigator.web.case_page import package_key
from investigator.web.guards import ServicesDep, Staff
from portal.kernel import audit
from portal.kernel.db.models import Case, TransferPackage
from portal.kernel.msgid import _

TOO_LARGE = _("The export is larger than the configured limit. Ask the administrator to raise it.")


def _zip(data: bytes, filename: str) -> Response[bytes]:
    return Response(
        content=data,
        media_type="application/octet-stream",
        headers={
            "Content-Disposition": f'attachment; filename="{filename}"',
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "no-store",
        },
    )


@get("/cases/{case_id:str}/export", name="workspace_case_export")
async def export_case(
    request: Request[Any, Any, Any],
    case_id: FromPath[str],
    staff: Staff,
    services: ServicesDep,
) -> Response[Any]:
    async with services.db.write() as s:
        case = await case_for(s, staff, case_id, "export_case")
        key = await key_or_none(s, staff, case.id)
        if key is None:
            raise not_found()
        try:
            data = await case_archive(services, s, case, key)
        except ExportTooLarge:
            return page("archive_error", 413, staff=staff, error=TOO_LARGE, case_id=case.id)
        await audit.record(
            s,
            actor_user_id=staff.user_id,
            action="case.export",
            case_id=case.id,
            detail=f"kind=archive bytes={len(data)}",
        )
        number = case.number
    return _zip(data, f"case-{number}.zip")


@get("/transfers/{package_id:str}/export", name="workspace_package_export")
async def export_package(
    request: Request[Any, Any, Any],
    package_id: FromPath[str],
    staff: Staff,
    services: ServicesDep,
) -> Response[Any]:
    async with services.db.write() as s:
        package = await s.get(TransferPackage, package_id[:64])
        if package is None or not await may_act_on_package(
            s, staff.policy(), package.id, "receive_package"
        ):
            raise not_found()
        pkey = await package_key(s, package.id, staff)
        case = await s.get(Case, package.case_id)
        if pkey is None or case is None:
            raise not_found()
        try:
            data = await package_archive(services, s, package, pkey, case.number)
        except ExportTooLarge:
            return page("archive_error", 413, staff=staff, error=TOO_LARGE, case_id=case.id)
        await audit.record(
            s,
            actor_user_id=staff.user_id,
            action="transfer.export",
            case_id=package.case_id,
            detail=f"package={package.id} bytes={len(data)}",
        )
        number = case.number
    return _zip(data, f"transfer-{number}.zip")


export_handlers: list[Any] = [export_case, export_package]
