"""Administration pages: staff accounts (administrator) and the audit log (auditor).

    GET  /workspace/users                         staff accounts (manage_users)
    POST /workspace/users                         create an account; its one-time password is
                                                  shown once on the answer page
    POST /workspace/users/{user_id}/disable       disable an account (it is signed out)
    POST /workspace/users/{user_id}/enable        enable it again
    GET  /workspace/users/{user_id}               one account: its roles and department
    POST /workspace/users/{user_id}               change them (never one's own account)
    POST /workspace/users/{user_id}/reset-two-step  forget a lost authenticator: the next
                                                  sign-in (password first) enrols a new one
    GET  /workspace/audit?person=&case=&action=&from=&to=&before=ID
                                                  the audit log, newest first, filtered by
                                                  person, case number, action and UTC dates,
                                                  and whether its hash chain verifies
                                                  (read_audit)
    GET  /workspace/audit/export?<same filters>   the filtered log as CSV (audited)

The administrator manages accounts and never sees case content; the auditor reads the log and
never case content (A1). Refusals answer 404 like every workspace refusal. Every change is
audited.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from litestar import Request, Response, get, post
from litestar.params import FromPath
from litestar.response import Redirect, Template
from sqlalchemy import select

from investigator.domain import audit_log
from investigator.domain.staff import StaffError, add_user, change_roles, list_users, reset_two_step
from investigator.policy import may_manage_account
from investigator.roles import ROLE_LABELS, WORKSPACE_ROLES, RoleError, roles_of
from investigator.web.case_common import (
    NO_STORE,
    confirmed,
    field,
    not_found,
    page,
    read_form,
    services_of,
    staff_who_can,
)
from investigator.web.guards import StaffPrincipal
from portal.http.i18n import locale_of
from portal.kernel import audit, audit_anchor, clock
from portal.kernel.db.models import Department, User
from portal.kernel.i18n import translations
from portal.kernel.labels import AUDIT_ACTIONS


async def _admin(request: Request[Any, Any, Any]) -> StaffPrincipal:
    return await staff_who_can(request, "manage_users")


def _manageable(staff: StaffPrincipal, user: User | None) -> User:
    """The account, when the administrator may manage it (policy: never an independent
    reviewer's, which is the installation owner's); else 404, as for no such account."""
    if user is None or not may_manage_account(staff.policy(), roles_of(user.roles)):
        raise not_found()
    return user


async def _users_page(
    request: Request[Any, Any, Any], me: StaffPrincipal, *, status: int = 200, **extra: Any
) -> Template:
    services = services_of(request)
    users = await list_users(services.db)
    async with services.db.read() as s:
        departments = {d.id: d.name for d in (await s.execute(select(Department))).scalars()}
    context: dict[str, Any] = {
        "form": {},
        "error": "",
        "new_user": None,
        "one_time_password": "",
        **extra,
    }
    return page(
        "users",
        status=status,
        users=users,
        roles=WORKSPACE_ROLES,
        role_labels=ROLE_LABELS,
        departments=departments,
        me=me.user_id,
        staff=me,
        **context,
    )


@get("/users", name="workspace_users")
async def users_view(request: Request[Any, Any, Any]) -> Template:
    return await _users_page(request, await _admin(request))


@post("/users", name="workspace_users_add")
async def users_add(request: Request[Any, Any, Any]) -> Template:
    staff = await _admin(request)
    services = services_of(request)
    form = await read_form(request)
    roles = [r for r in form.get("roles", []) if r in WORKSPACE_ROLES]
    try:
        new = await add_user(
            services.db,
            services.argon2,
            pepper=services.keyring.password_pepper,
            username=field(form, "username", 40),
            display_name=field(form, "display_name", 200),
            roles=roles,
            email=field(form, "email", 254) or None,
            department=field(form, "department", 200) or None,
        )
    except (StaffError, RoleError) as exc:
        return await _users_page(request, staff, status=400, form=form, error=str(exc))
    async with services.db.write() as s:
        await audit.record(
            s,
            actor_user_id=staff.user_id,
            action="user.add",
            detail=f"user={new.user.id} roles={new.user.roles}",
        )
    return await _users_page(
        request, staff, new_user=new.user, one_time_password=new.one_time_password
    )


async def _set_disabled(request: Request[Any, Any, Any], user_id: str, disabled: bool) -> Redirect:
    staff = await _admin(request)
    if user_id == staff.user_id and disabled:
        raise not_found()  # an administrator cannot lock the last door behind them
    async with services_of(request).db.write() as s:
        user = _manageable(staff, await s.get(User, user_id))
        user.disabled = disabled
        await audit.record(
            s,
            actor_user_id=staff.user_id,
            action="user.disable" if disabled else "user.enable",
            detail=f"user={user_id}",
        )
    return confirmed(Redirect(path="/workspace/users", status_code=303))


@post("/users/{user_id:str}/disable", name="workspace_users_disable")
async def users_disable(request: Request[Any, Any, Any], user_id: FromPath[str]) -> Redirect:
    return await _set_disabled(request, user_id, True)


@post("/users/{user_id:str}/enable", name="workspace_users_enable")
async def users_enable(request: Request[Any, Any, Any], user_id: FromPath[str]) -> Redirect:
    return await _set_disabled(request, user_id, False)


async def _account_page(
    request: Request[Any, Any, Any],
    user_id: str,
    *,
    status: int = 200,
    error: str = "",
    form: dict[str, list[str]] | None = None,
) -> Template:
    staff = await _admin(request)
    async with services_of(request).db.read() as s:
        user = await s.get(User, user_id)
        if user is None:
            raise not_found()
        departments = list(
            (
                await s.execute(
                    select(Department).where(Department.active.is_(True)).order_by(Department.name)
                )
            ).scalars()
        )
    return page(
        "account",
        status=status,
        staff=staff,
        user=user,
        roles=WORKSPACE_ROLES,
        role_labels=ROLE_LABELS,
        departments=departments,
        error=error,
        form=form,
    )


@get("/users/{user_id:str}", name="workspace_account")
async def account_view(request: Request[Any, Any, Any], user_id: FromPath[str]) -> Template:
    staff = await _admin(request)
    if user_id == staff.user_id:
        raise not_found()  # another administrator changes an administrator's roles
    async with services_of(request).db.read() as s:
        _manageable(staff, await s.get(User, user_id))
    return await _account_page(request, user_id)


@post("/users/{user_id:str}", name="workspace_account_roles")
async def account_roles(
    request: Request[Any, Any, Any], user_id: FromPath[str]
) -> Template | Redirect:
    staff = await _admin(request)
    if user_id == staff.user_id:
        raise not_found()
    form = await read_form(request)
    roles = [r for r in form.get("roles", []) if r in WORKSPACE_ROLES]
    department = field(form, "department_id", 64) or None
    try:
        async with services_of(request).db.write() as s:
            user = _manageable(staff, await s.get(User, user_id))
            await change_roles(s, user, roles, department, actor_user_id=staff.user_id)
    except (StaffError, RoleError) as exc:
        return await _account_page(request, user_id, status=400, error=str(exc), form=form)
    return confirmed(Redirect(path="/workspace/users", status_code=303))


@post("/users/{user_id:str}/reset-two-step", name="workspace_users_reset_two_step")
async def users_reset_two_step(request: Request[Any, Any, Any], user_id: FromPath[str]) -> Redirect:
    staff = await _admin(request)
    if user_id == staff.user_id:
        raise not_found()  # another administrator resets an administrator's authenticator
    async with services_of(request).db.write() as s:
        user = _manageable(staff, await s.get(User, user_id))
        await reset_two_step(s, user, actor_user_id=staff.user_id)
    return confirmed(Redirect(path="/workspace/users", status_code=303))


def _anchors(data_dir: Path) -> tuple[dict[int, str], bool]:
    """The anchor file's anchors; True when it exists but cannot be read or contradicts
    itself (shown as a broken chain)."""
    path = audit_anchor.anchor_path(data_dir)
    try:
        return audit_anchor.read_anchors(path), False
    except FileNotFoundError:
        return {}, False
    except (OSError, audit_anchor.AnchorError):
        return {}, True


@get("/audit", name="workspace_audit")
async def audit_view(request: Request[Any, Any, Any]) -> Template:
    staff = await staff_who_can(request, "read_audit")
    services = services_of(request)
    flt = audit_log.parse_filter(request.query_params)
    async with services.db.read() as s:
        entries = await audit_log.search(s, flt)
        people = await audit_log.people(s)
    anchors, anchor_problem = _anchors(services.settings.data_dir)
    result = await audit.verify(services.db, anchors=anchors)
    async with services.db.write() as s:
        viewed = await audit.record(
            s, actor_user_id=staff.user_id, action="audit.view", detail=flt.describe()
        )
    query = flt.query()
    return page(
        "audit",
        staff=staff,
        entries=entries,
        people=people,
        actions=sorted(AUDIT_ACTIONS),
        flt=flt,
        query=urlencode(query),
        filtered=bool(query),
        result=result,
        anchor_problem=anchor_problem,
        anchored=len(anchors),
        # the head to write down or mail (A5): this view's own entry, anchored as it committed
        head=f"{viewed.id}:{viewed.hash}",
        next_before=entries[-1].id if len(entries) == audit_log.PAGE_SIZE else None,
    )


@get("/audit/export", name="workspace_audit_export")
async def audit_export(request: Request[Any, Any, Any]) -> Response[bytes]:
    """The filtered log as CSV (every entry that matches, up to EXPORT_LIMIT), audited."""
    staff = await staff_who_can(request, "read_audit")
    services = services_of(request)
    flt = audit_log.parse_filter({**request.query_params, "before": ""})
    async with services.db.write() as s:
        rows = await audit_log.search(s, flt, limit=audit_log.EXPORT_LIMIT)
        await audit.record(
            s, actor_user_id=staff.user_id, action="audit.export", detail=flt.describe()
        )
    body = audit_log.to_csv(rows, translations(locale_of(request.scope)).gettext)
    name = f"audit-log-{clock.today().isoformat()}.csv"
    return Response(
        content=body,
        media_type="text/csv; charset=utf-8",
        headers={**NO_STORE, "Content-Disposition": f'attachment; filename="{name}"'},
    )


admin_handlers: list[Any] = [
    users_view,
    users_add,
    users_disable,
    users_enable,
    users_reset_two_step,
    account_view,
    account_roles,
    audit_view,
    audit_export,
]
