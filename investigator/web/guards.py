"""Who is signed in to the workspace: ``current_staff(request)`` and the ``staff_guard``.

* A staff session is fully signed in only when its ``stage`` is ``"ok"`` (password and TOTP
  done); a pending session (between the password and the code) grants nothing.
* Roles and department are read from the database on every request, so a role change or a
  disabled account takes effect at once; a disabled or deleted account is signed out.
* An account that must change its password may reach only the routes that opt in with
  ``opt={"password_change": True}``; everything else redirects to /workspace/password.
* Refusals raise ``NotAuthorizedException``; ``redirect_to_signin`` (installed on the
  workspace router) turns it into a 303 to the sign-in page for HTML clients.

Handlers decide about cases with ``investigator.policy`` using ``principal.policy()``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from litestar import Request, Response
from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException
from litestar.handlers.base import BaseRouteHandler
from litestar.response import Redirect

from investigator.domain.auth import load_active_user
from investigator.domain.notices import unread_total
from investigator.policy import Principal
from investigator.roles import roles_of
from portal.http.sessions import current_session, end_session
from portal.kernel.services import Services

SIGNIN_PATH = "/workspace/"
PASSWORD_PATH = "/workspace/password"  # noqa: S105 - a URL path
_CACHE = "workspace_staff_principal"


@dataclass(frozen=True)
class StaffPrincipal:
    user_id: str
    username: str
    roles: frozenset[str]
    private_key: bytes
    department_id: str | None
    must_change_password: bool = False
    unread: int = 0  # unread workspace notices (the navigation shows the count)

    def policy(self) -> Principal:
        return Principal(self.user_id, self.roles, self.department_id)

    def __repr__(self) -> str:  # never print the private key
        return f"StaffPrincipal(user_id={self.user_id!r}, roles={sorted(self.roles)!r})"


class PasswordChangeRequired(NotAuthorizedException):
    """Signed in, but the password must be changed first."""


def services_of(connection: ASGIConnection[Any, Any, Any, Any]) -> Services:
    services: Services = connection.app.state["services"]
    return services


async def find_staff(request: Request[Any, Any, Any]) -> StaffPrincipal | None:
    """The signed-in staff member, or None (signing out a disabled or vanished account)."""
    cached = request.scope.get("state", {}).get(_CACHE)
    if isinstance(cached, StaffPrincipal):
        return cached
    data = current_session(request, "staff")
    if data is None or data.get("stage") != "ok":
        return None
    user_id = data.get("user_id")
    key_hex = data.get("private_key")
    if not isinstance(user_id, str) or not isinstance(key_hex, str):
        end_session(request)
        return None
    db = services_of(request).db
    user = await load_active_user(db, user_id)
    if user is None:
        end_session(request)
        return None
    roles = roles_of(user.roles)
    async with db.read() as session:
        unread = await unread_total(session, Principal(user.id, roles, user.department_id))
    principal = StaffPrincipal(
        user_id=user.id,
        username=user.username,
        roles=roles,
        private_key=bytes.fromhex(key_hex),
        department_id=user.department_id,
        must_change_password=user.must_change_password,
        unread=unread,
    )
    request.scope.setdefault("state", {})[_CACHE] = principal
    return principal


async def current_staff(request: Request[Any, Any, Any]) -> StaffPrincipal:
    """The signed-in staff member; ``NotAuthorizedException`` (303 to sign-in) otherwise."""
    principal = await find_staff(request)
    if principal is None:
        raise NotAuthorizedException()
    route_opt = request.route_handler.opt if request.scope.get("route_handler") else {}
    if principal.must_change_password and not route_opt.get("password_change"):
        raise PasswordChangeRequired()
    return principal


# The workspace routes anyone may reach: the sign-in steps themselves (the second step and the
# key enrolment hold a *pending* session), signing out and password recovery. Every other
# route of the workspace router needs a fully signed-in staff member (``staff_guard``).
PUBLIC_ROUTES: frozenset[str] = frozenset(
    {
        "workspace_home",  # the sign-in form, or the home page once signed in
        "workspace_signin",
        "workspace_totp",
        "workspace_totp_check",
        "workspace_totp_enrol",
        "workspace_totp_enrol_check",
        "workspace_signout",
        "workspace_recover",
        "workspace_recover_check",
    }
)


async def staff_guard(
    connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler
) -> None:
    """The workspace router's guard: a fully signed-in staff member, except on the routes that
    opt out by name (``PUBLIC_ROUTES``)."""
    if handler.name in PUBLIC_ROUTES:
        return
    if not isinstance(connection, Request):
        raise NotAuthorizedException()
    await current_staff(connection)


async def provide_staff(request: Request[Any, Any, Any]) -> StaffPrincipal:
    """Dependency ``staff``: the signed-in staff member (the guard has admitted them)."""
    return await current_staff(request)


def provide_services(request: Request[Any, Any, Any]) -> Services:
    """Dependency ``services``: the application's service container."""
    return services_of(request)


def redirect_to_signin(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """Exception handler for the workspace router: 303 to the sign-in (or password) page."""
    target = PASSWORD_PATH if isinstance(exc, PasswordChangeRequired) else SIGNIN_PATH
    return Redirect(path=target, status_code=303)
