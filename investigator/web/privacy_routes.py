"""The organisation's privacy settings and the poster (issue 18), for administrators.

    GET  /workspace/privacy   the handler, contact, portal address and retention periods shown
                              on the privacy notice (/privacy) and used by the archive step
    POST /workspace/privacy   save them (validated; audited as ``privacy.settings`` with the
                              names of the changed values)
    GET  /workspace/poster    an A4 poster to print: what can be reported, that anonymity is
                              protected, how to follow up, the portal address and its QR code
                              (drawn on the server, ``investigator.domain.poster``)

Policy: ``manage_settings`` (administrator); everybody else gets 404 like every refusal.
"""

from __future__ import annotations

from typing import Any

from litestar import Request, get, post
from litestar.response import Template

from investigator.domain.poster import qr_svg
from investigator.web.case_common import page, read_form, services_of, staff_who_can
from investigator.web.guards import StaffPrincipal
from portal.kernel import audit, org_settings

FIELDS = (
    "handler_name",
    "contact",
    "portal_address",
    "retention_substantiated_years",
    "retention_unsubstantiated_years",
    "retention_identity_years",
    "log_retention_months",
)


async def _admin(request: Request[Any, Any, Any]) -> StaffPrincipal:
    return await staff_who_can(request, "manage_settings")


def _form_of(values: org_settings.OrgValues) -> dict[str, str]:
    return {name: str(getattr(values, name)) for name in FIELDS}


@get("/privacy", name="workspace_privacy")
async def privacy_settings(request: Request[Any, Any, Any]) -> Template:
    staff = await _admin(request)
    services = services_of(request)
    async with services.db.read() as s:
        values = await org_settings.load(s, services.settings)
    return page(
        "privacy_settings",
        staff=staff,
        form=_form_of(values),
        errors={},
        limits={n: org_settings.limits_of(n) for n in FIELDS},
        saved=request.query_params.get("saved") == "1",
    )


@post("/privacy", name="workspace_privacy_save")
async def privacy_settings_save(request: Request[Any, Any, Any]) -> Template:
    staff = await _admin(request)
    services = services_of(request)
    raw = await read_form(request)
    form = {name: (raw.get(name) or [""])[0] for name in FIELDS}
    async with services.db.write() as s:
        current = await org_settings.load(s, services.settings)
        values, errors = org_settings.validate(form, current)
        if values is None:
            return page(
                "privacy_settings",
                status=400,
                staff=staff,
                form=form,
                errors=errors,
                limits={n: org_settings.limits_of(n) for n in FIELDS},
                saved=False,
            )
        changed = await org_settings.save(s, values, current, staff.user_id)
        await audit.record(
            s,
            actor_user_id=staff.user_id,
            action="privacy.settings",
            detail=f"changed={','.join(changed) or '-'}",
        )
    return page(
        "privacy_settings",
        staff=staff,
        form=_form_of(values),
        errors={},
        limits={n: org_settings.limits_of(n) for n in FIELDS},
        saved=True,
    )


@get("/poster", name="workspace_poster")
async def poster(request: Request[Any, Any, Any]) -> Template:
    staff = await _admin(request)
    services = services_of(request)
    async with services.db.read() as s:
        values = await org_settings.load(s, services.settings)
    address = values.portal_address
    return page(
        "poster",
        staff=staff,
        address=address,
        qr=qr_svg(address) if address else "",
        org=values,
    )


privacy_handlers: list[Any] = [privacy_settings, privacy_settings_save, poster]
