"""Shared helpers for the case screens: form reading, pages, the 404 answer, case loading.

Every handler of the case screens follows one shape::

    staff = await current_staff(request)
    async with services.db.write() as s:
        case = await case_for(s, staff, case_id, "some_action")   # 404 when policy says no
        ...
        await audit.record(s, ...)

``case_for`` asks ``investigator.policy`` and raises ``NotFoundException`` for a refusal, a
missing case and a destroyed case alike, so an answer never confirms that a case exists.
``case_post`` is that shape for a form posted on a case: the handler only supplies the work
and the page that shows a refusal. The case page and every form posted on a case then call
``share_with_intake``: a key holder working on an intake-stage case shares its key with the
intake officers who joined since the report arrived (``investigator.domain.keyshare``). Likewise a
holder of the identity key who reads the identity (the case page) or decides an identity
request calls ``share_with_custodians``: the identity key goes to the identity custodians
appointed since.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from litestar import Request
from litestar.exceptions import NotFoundException
from litestar.response import Redirect, Template
from sqlalchemy.ext.asyncio import AsyncSession

from investigator.domain.casefile import NoKey, staff_key
from investigator.domain.keyshare import (
    IDENTITY_RULE,
    INTAKE_RULE,
    share_identity_key,
    share_intake_key,
)
from investigator.policy import can, may_act_on_case
from investigator.web.guards import StaffPrincipal, current_staff
from portal.case.errors import WorkflowError
from portal.kernel.db.models import Case
from portal.kernel.msgid import _
from portal.kernel.services import Services
from portal.kernel.text import clean_text

NO_STORE = {"Cache-Control": "no-store"}
MAX_FIELD = 20_000


NO_KEY = _("You do not hold the key of this case, so this cannot be done.")

# Why a case just left the actor's view, said on the case list they are sent to (``?done=`` on
# /workspace/cases, no case id in the URL) instead of a case page that would answer 404.
LEFT_VIEW_NOTICES: dict[str, str] = {
    "team_formed": _(
        "The case now has its investigation team and has left the intake stages, "
        "so you no longer have access to it."
    ),
    "rejected": _(
        "The case was not accepted; the reporter sees the reason. It is no longer in your view."
    ),
    "plan_decided": _(
        "Your decision on the handling plan was recorded. The case has left the approval "
        "stage, so it is no longer in your view."
    ),
    "conflict": _(
        "Your conflict of interest was recorded. You withdrew from the case and no longer see it."
    ),
    "left_team": _(
        "The change to the team was saved. You are no longer on the case's team, so it has "
        "left your view."
    ),
    "archived": _(
        "The case was archived. It is now in the archive, kept by the approvers until its "
        "retention period ends; it is no longer in your view."
    ),
}

# ``?saved=1`` on the page a saved form returns to: the layout confirms it (every saved form
# says so)
SAVED = "saved"


def confirmed(redirect: Redirect) -> Redirect:
    """The same redirect with ``saved=1`` in its query, so the page it leads to confirms the
    save; unchanged when it already carries a notice (``saved=`` or ``done=``)."""
    url = str(redirect.url)
    path, hash_mark, anchor = url.partition("#")
    if "saved=" in path or "done=" in path:
        return redirect
    joiner = "&" if "?" in path else "?"
    return Redirect(path=f"{path}{joiner}{SAVED}=1{hash_mark}{anchor}", status_code=303)


Form = dict[str, list[str]]
# the work of a form posted on a case: returns where to go, or None for the default
CaseWork = Callable[[AsyncSession, StaffPrincipal, Case, Form], Awaitable[Redirect | None]]
# the page again with a message: (request, staff, case_id, message, status)
ErrorPage = Callable[[Request[Any, Any, Any], StaffPrincipal, str, str, int], Awaitable[Template]]


class Refused(Exception):
    """A form that cannot be carried out: the page again, with a message."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


def services_of(request: Request[Any, Any, Any]) -> Services:
    services: Services = request.app.state["services"]
    return services


async def read_form(request: Request[Any, Any, Any]) -> dict[str, list[str]]:
    """The urlencoded form as lists of strings (file parts, if any, are ignored)."""
    form = await request.form()
    out: dict[str, list[str]] = {}
    for name, value in form.multi_items():
        if isinstance(value, str):
            out.setdefault(name, []).append(value[:MAX_FIELD])
    return out


def field(
    form: dict[str, list[str]], name: str, limit: int = 200, *, multiline: bool = False
) -> str:
    values = form.get(name) or [""]
    return clean_text(values[0], limit, multiline=multiline)


def checked(form: dict[str, list[str]], name: str) -> bool:
    return field(form, name) in ("yes", "on", "1", "true")


def page(name: str, status: int = 200, **context: Any) -> Template:
    return Template(
        template_name=f"investigator/{name}.html",
        context=context,
        status_code=status,
        headers=NO_STORE,
    )


def to_case(case_id: str, anchor: str = "") -> Redirect:
    return Redirect(path=f"/workspace/cases/{case_id}{anchor}", status_code=303)


def not_found() -> NotFoundException:
    """The one refusal: the same as for a case that does not exist."""
    return NotFoundException()


async def staff_who_can(request: Request[Any, Any, Any], action: str) -> StaffPrincipal:
    """The signed-in staff member if policy grants them the role-level ``action``; else 404."""
    staff = await current_staff(request)
    if not can(staff.policy(), action):
        raise not_found()
    return staff


async def allowed(
    session: AsyncSession, staff: StaffPrincipal, case_id: str, *actions: str
) -> bool:
    """True when policy grants at least one of ``actions`` on the case."""
    principal = staff.policy()
    for action in actions:
        if await may_act_on_case(session, principal, case_id, action):
            return True
    return False


async def away_if_unseen(
    session: AsyncSession, staff: StaffPrincipal, case_id: str, done: str
) -> Redirect | None:
    """None while the staff member may still view the case; otherwise the redirect to the case
    list with the notice ``done`` names (a key of ``LEFT_VIEW_NOTICES``)."""
    if await allowed(session, staff, case_id, "view"):
        return None
    query = f"?done={done}" if done in LEFT_VIEW_NOTICES else ""
    return Redirect(path=f"/workspace/cases{query}", status_code=303)


async def case_for(
    session: AsyncSession, staff: StaffPrincipal, case_id: str, *actions: str
) -> Case:
    """The case when policy grants one of ``actions``; ``NotFoundException`` otherwise."""
    if len(case_id) > 64 or not await allowed(session, staff, case_id, *actions):
        raise not_found()
    case = await session.get(Case, case_id)
    if case is None:  # pragma: no cover - policy already refused a missing case
        raise not_found()
    return case


async def key_or_none(session: AsyncSession, staff: StaffPrincipal, case_id: str) -> bytes | None:
    try:
        return await staff_key(session, case_id, staff.user_id, staff.private_key)
    except NoKey:
        return None


async def share_with_intake(session: AsyncSession, staff: StaffPrincipal, case: Case) -> None:
    """The staff member works on the case: when it is in an intake stage and they hold its key,
    wrap it for the current intake officers who lack it (``investigator.domain.keyshare``)."""
    if not INTAKE_RULE.applies(case):
        return  # outside intake: no key is unwrapped on the way
    key = await key_or_none(session, staff, case.id)
    if key is not None:
        await share_intake_key(session, case, key, staff.user_id)


async def share_with_custodians(session: AsyncSession, staff: StaffPrincipal, case: Case) -> None:
    """The staff member may view the case's identity and holds its identity key: wrap that key
    for the current identity custodians who lack it (``investigator.domain.keyshare``)."""
    if not IDENTITY_RULE.applies(case):
        return
    if not await may_act_on_case(session, staff.policy(), case.id, "view_identity"):
        return
    try:
        key = await staff_key(session, case.id, staff.user_id, staff.private_key, "identity")
    except NoKey:
        return
    await share_identity_key(session, case, key, staff.user_id)


async def case_key(
    session: AsyncSession, staff: StaffPrincipal, case_id: str, status: int = 409
) -> bytes:
    """The staff member's key of the case; ``Refused(NO_KEY, status)`` when they hold none."""
    key = await key_or_none(session, staff, case_id)
    if key is None:
        raise Refused(NO_KEY, status)
    return key


async def case_post(
    request: Request[Any, Any, Any],
    case_id: str,
    actions: tuple[str, ...],
    work: CaseWork,
    error_page: ErrorPage,
    done: Redirect | None = None,
) -> Template | Redirect:
    """A form posted on a case: the signed-in staff member, policy (404 on no, before the
    form is read), the form, then ``work`` in one write transaction. A ``Refused`` or a
    ``WorkflowError`` (400) rolls everything back and answers ``error_page`` with its message;
    otherwise the redirect ``work`` returns, else ``done``, else the case page."""
    staff = await current_staff(request)
    try:
        async with services_of(request).db.write() as s:
            case = await case_for(s, staff, case_id, *actions)
            form = await read_form(request)
            redirect = await work(s, staff, case, form)
            await share_with_intake(s, staff, case)
    except Refused as exc:
        return await error_page(request, staff, case_id, exc.message, exc.status)
    except WorkflowError as exc:
        return await error_page(request, staff, case_id, str(exc), 400)
    return confirmed(redirect or done or to_case(case_id))


__all__ = [
    "LEFT_VIEW_NOTICES",
    "NO_KEY",
    "NO_STORE",
    "CaseWork",
    "ErrorPage",
    "Form",
    "Refused",
    "allowed",
    "away_if_unseen",
    "case_for",
    "case_key",
    "case_post",
    "checked",
    "confirmed",
    "field",
    "key_or_none",
    "not_found",
    "page",
    "read_form",
    "services_of",
    "share_with_custodians",
    "share_with_intake",
    "to_case",
]
