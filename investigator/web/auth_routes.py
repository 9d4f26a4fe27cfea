"""Workspace sign-in, second factor, password change and sign-out (A4).

Routes (all under /workspace; every POST is CSRF-checked by the app's middleware):

    GET  /workspace/              home page when signed in, else the sign-in page
    POST /workspace/signin        user name + password
    GET  /workspace/totp          the code page (pending session, enrolled account)
    POST /workspace/totp          the code
    GET  /workspace/totp/enrol    QR code and secret for a new authenticator (pending session)
    POST /workspace/totp/enrol    the first code from the new authenticator
    GET  /workspace/password      change password (forced at first sign-in)
    POST /workspace/password      new password; answers with the new recovery key, once
    POST /workspace/signout       end the session (GET answers 405)
    GET  /workspace/recover       forgotten password: user name, recovery key, new password
    POST /workspace/recover       answers with the next recovery key, once

Sessions: the password step starts a *pending* staff session (``stage`` = ``totp`` or
``enrol``) with a fresh id, valid for ``PENDING_SECONDS`` and ``MAX_TOTP_FAILURES`` wrong
codes; the second step starts the signed-in session (``stage`` = ``ok``) with another fresh id.
"""

from __future__ import annotations

import time
from typing import Any

from litestar import Request, get, post
from litestar.handlers import HTTPRouteHandler
from litestar.response import Redirect, Template

from investigator.domain import totp
from investigator.domain.auth import (
    MAX_TOTP_FAILURES,
    PasswordRejected,
    SigninFailed,
    StaffAuth,
)
from investigator.domain.calendar import load_calendar
from investigator.domain.calendar_years import provisional_count, years_to_confirm
from investigator.domain.duty_roster import nobody_on_duty
from investigator.domain.staff import MISSING_ROLE_WARNINGS, missing_key_roles
from investigator.policy import can
from investigator.web.guards import (
    PASSWORD_PATH,
    SIGNIN_PATH,
    StaffPrincipal,
    current_staff,
    find_staff,
    services_of,
)
from portal.http.sessions import current_session, end_session, start_session
from portal.kernel import audit, clock
from portal.kernel.msgid import _

PENDING_SECONDS = 5 * 60
_MAX_FIELD = 1024
_NO_STORE = {"Cache-Control": "no-store"}


# Shown for every password-step failure, whatever the cause.
SIGNIN_FAILED = _("The user name or password is not correct.")
CODE_FAILED = _("That code was not accepted. Wait for the next code and try again.")
PENDING_EXPIRED = _("Your sign-in took too long. Please sign in again.")
NOBODY_ON_DUTY = _(
    "Nobody is on duty: an urgent report would alert no one. Put at least one person on the "
    "duty roster on the notifications page."
)
CURRENT_PASSWORD_WRONG = _("The current password is not correct.")
PASSWORDS_DIFFER = _("The two new passwords are not the same.")
RECOVERY_FAILED = _("The user name or recovery key is not correct.")
# crypto.passwords.password_problems messages, listed here so they are translated.
_PASSWORD_PROBLEMS = (
    _("Use at least 12 characters."),
    _("Use at most 256 characters."),
    _("This password is too easy to guess."),
    _("The password must not contain the user name."),
    _("The password must not contain your name."),
    _("Avoid keyboard patterns such as qwerty or 1qaz2wsx."),
    _("Avoid a single name or word with only digits or symbols added, such as a name and a year."),
    _("Choose a password different from the current one."),
)


async def _form(request: Request[Any, Any, Any]) -> dict[str, str]:
    form = await request.form()
    out: dict[str, str] = {}
    for name in form:
        value = form.get(name)
        if isinstance(value, str):
            out[name] = value[:_MAX_FIELD] if name != "password" else value
    return out


def _page(name: str, status: int = 200, **context: Any) -> Template:
    return Template(
        template_name=f"investigator/{name}.html",
        context=context,
        status_code=status,
        headers=_NO_STORE,
    )


def _signin_page(error: str | None = None) -> Template:
    return _page("signin", error=error)


def _pending(request: Request[Any, Any, Any], stage: str) -> dict[str, Any] | None:
    """The pending sign-in session at ``stage``, or None (ending it when it is stale)."""
    data = current_session(request, "staff")
    if data is None or data.get("stage") != stage:
        return None
    if time.time() > float(data.get("pending_until", 0)):
        end_session(request)
        return None
    return data


def _complete(request: Request[Any, Any, Any], pending: dict[str, Any]) -> Redirect:
    start_session(
        request,
        "staff",
        {
            "stage": "ok",
            "user_id": pending["user_id"],
            "private_key": pending["private_key"],
        },
    )
    return Redirect(path=SIGNIN_PATH, status_code=303)


def _code_failed(
    request: Request[Any, Any, Any], pending: dict[str, Any], page: str, **ctx: Any
) -> Template:
    failures = int(pending.get("totp_failures", 0)) + 1
    if failures >= MAX_TOTP_FAILURES:
        end_session(request)
        return _signin_page(PENDING_EXPIRED)
    pending["totp_failures"] = failures
    return _page(page, error=CODE_FAILED, **ctx)


def _enrol_context(pending: dict[str, Any]) -> dict[str, Any]:
    secret = str(pending["totp_secret"])
    uri = totp.provisioning_uri(secret, str(pending["username"]))
    return {"qr": totp.qr_data_uri(uri), "secret": totp.grouped(secret)}


def auth_handlers(auth: StaffAuth) -> list[HTTPRouteHandler]:
    """The sign-in route handlers, bound to one ``StaffAuth``."""

    @get("/", name="workspace_home")
    async def home(request: Request[Any, Any, Any]) -> Template | Redirect:
        principal = await find_staff(request)
        if principal is None:
            if _pending(request, "totp") is not None:
                return Redirect(path="/workspace/totp", status_code=303)
            if _pending(request, "enrol") is not None:
                return Redirect(path="/workspace/totp/enrol", status_code=303)
            return _signin_page()
        if principal.must_change_password:
            return Redirect(path=PASSWORD_PATH, status_code=303)
        warnings: list[str] = []
        db = services_of(request).db
        if can(principal.policy(), "manage_users"):
            missing = await missing_key_roles(db)
            warnings = [MISSING_ROLE_WARNINGS[role] for role in missing]
        calendar_years: list[int] = []
        provisional = 0
        async with db.read() as session:
            if can(principal.policy(), "manage_settings") and await nobody_on_duty(session):
                warnings.append(NOBODY_ON_DUTY)
            if can(principal.policy(), "manage_calendar"):
                cal = await load_calendar(session)
                calendar_years = years_to_confirm(cal, clock.today())
                provisional = await provisional_count(session) if calendar_years else 0
        return _page(
            "home",
            staff=principal,
            can=lambda action: can(principal.policy(), action),
            warnings=warnings,
            calendar_years=calendar_years,
            provisional=provisional,
        )

    @post("/signin", name="workspace_signin")
    async def signin(request: Request[Any, Any, Any]) -> Template | Redirect:
        form = await _form(request)
        services = services_of(request)
        try:
            step = await auth.check_password(
                services.db,
                form.get("username", ""),
                form.get("password", ""),
                pepper=services.keyring.password_pepper,
            )
        except SigninFailed:
            end_session(request)
            return _signin_page(SIGNIN_FAILED)
        pending: dict[str, Any] = {
            "stage": "totp" if step.enrolled else "enrol",
            "user_id": step.user_id,
            "username": step.username,
            "private_key": step.private_key.hex(),
            "pending_until": time.time() + PENDING_SECONDS,
            "totp_failures": 0,
        }
        if not step.enrolled:
            pending["totp_secret"] = totp.new_secret()
        start_session(request, "staff", pending)
        target = "/workspace/totp" if step.enrolled else "/workspace/totp/enrol"
        return Redirect(path=target, status_code=303)

    @get("/totp", name="workspace_totp")
    async def totp_page(request: Request[Any, Any, Any]) -> Template | Redirect:
        if _pending(request, "totp") is None:
            return Redirect(path=SIGNIN_PATH, status_code=303)
        return _page("totp")

    @post("/totp", name="workspace_totp_check")
    async def totp_check(request: Request[Any, Any, Any]) -> Template | Redirect:
        form = await _form(request)
        pending = _pending(request, "totp")
        if pending is None:
            return _signin_page(PENDING_EXPIRED)
        services = services_of(request)
        try:
            await auth.check_totp(
                services.db,
                services.keyring.server_key,
                str(pending["user_id"]),
                form.get("code", ""),
            )
        except SigninFailed:
            return _code_failed(request, pending, "totp")
        return _complete(request, pending)

    @get("/totp/enrol", name="workspace_totp_enrol")
    async def enrol_page(request: Request[Any, Any, Any]) -> Template | Redirect:
        pending = _pending(request, "enrol")
        if pending is None:
            return Redirect(path=SIGNIN_PATH, status_code=303)
        return _page("enrol_totp", **_enrol_context(pending))

    @post("/totp/enrol", name="workspace_totp_enrol_check")
    async def enrol_check(request: Request[Any, Any, Any]) -> Template | Redirect:
        form = await _form(request)
        pending = _pending(request, "enrol")
        if pending is None:
            return _signin_page(PENDING_EXPIRED)
        services = services_of(request)
        try:
            await auth.finish_enrolment(
                services.db,
                services.keyring.server_key,
                str(pending["user_id"]),
                str(pending["totp_secret"]),
                form.get("code", ""),
                suite=services.keyring.suite,
            )
        except SigninFailed:
            return _code_failed(request, pending, "enrol_totp", **_enrol_context(pending))
        return _complete(request, pending)

    @get("/password", name="workspace_password", opt={"password_change": True})
    async def password_page(request: Request[Any, Any, Any]) -> Template:
        principal = await current_staff(request)
        return _page("password", staff=principal)

    @post("/password", name="workspace_password_change", opt={"password_change": True})
    async def password_change(request: Request[Any, Any, Any]) -> Template:
        principal = await current_staff(request)
        form = await _form(request)
        new = form.get("new_password", "")
        if new != form.get("new_password_again", ""):
            return _page("password", 400, staff=principal, errors=[PASSWORDS_DIFFER])
        services = services_of(request)
        try:
            recovery_key = await auth.change_password(
                services.db,
                user_id=principal.user_id,
                private_key=principal.private_key,
                new_password=new,
                pepper=services.keyring.password_pepper,
                current_password=None
                if principal.must_change_password
                else form.get("current_password", ""),
            )
        except PasswordRejected as exc:
            return _page("password", 400, staff=principal, errors=exc.problems)
        except SigninFailed:
            return _page("password", 400, staff=principal, errors=[CURRENT_PASSWORD_WRONG])
        return _page("recovery_key", staff=principal, recovery_key=recovery_key)

    @post("/signout", name="workspace_signout")
    async def signout(request: Request[Any, Any, Any]) -> Redirect:
        principal = await find_staff(request)
        if principal is not None:
            async with services_of(request).db.write() as s:
                await audit.record(s, actor_user_id=principal.user_id, action="signout")
        end_session(request)
        return Redirect(path=SIGNIN_PATH, status_code=303)

    @get("/recover", name="workspace_recover")
    async def recover_page() -> Template:
        return _page("recover")

    @post("/recover", name="workspace_recover_check")
    async def recover(request: Request[Any, Any, Any]) -> Template:
        form = await _form(request)
        new = form.get("new_password", "")
        if new != form.get("new_password_again", ""):
            return _page("recover", 400, errors=[PASSWORDS_DIFFER])
        try:
            services = services_of(request)
            recovery_key = await auth.recover(
                services.db,
                username=form.get("username", ""),
                recovery_key=form.get("recovery_key", ""),
                new_password=new,
                pepper=services.keyring.password_pepper,
            )
        except PasswordRejected as exc:
            return _page("recover", 400, errors=exc.problems)
        except SigninFailed:
            return _page("recover", 400, errors=[RECOVERY_FAILED])
        end_session(request)
        return _page("recovery_key", recovery_key=recovery_key, recovered=True)

    return [
        home,
        signin,
        totp_page,
        totp_check,
        enrol_page,
        enrol_check,
        password_page,
        password_change,
        signout,
        recover_page,
        recover,
    ]


__all__ = ["StaffPrincipal", "auth_handlers"]
