"""Notification settings (issue 7).

    GET  /workspace/notifications        which mails I receive (the kinds my roles are offered),
                                         the address they go to, what was sent to me (counts);
                                         for an administrator also the duty roster (值班)
    POST /workspace/notifications        save my choice (``users.notify_prefs``), audited
    POST /workspace/notifications/duty   the duty roster: who is told about urgent cases at once
                                         (``manage_settings``: administrators), audited

The mails themselves carry counts only (``investigator.domain.notify``).
"""

from __future__ import annotations

from typing import Any

from litestar import Request, get, post
from litestar.response import Redirect, Template
from sqlalchemy import select

from investigator.domain import duty_roster, notify, notify_kinds
from investigator.policy import can
from investigator.roles import roles_of
from investigator.web.case_common import not_found, page, read_form, services_of
from investigator.web.guards import StaffPrincipal, current_staff
from portal.kernel.db.models import User
from portal.kernel.msgid import _

KIND_LABELS = {
    "new_cases": _("New reports received (counts, sent in batches a few times a day)"),
    "assigned": _("I was added to an investigation team"),
    "reporter_message": _("A reporter sent a message on a case I work on"),
    "deadline": _("Deadline warnings (half and most of the time used) and overdue notices"),
    "approval": _("Something waits for my approval"),
    "identity_request": _("An identity disclosure request waits for a decision"),
    "rights_request": _(
        "A reporter's request to withdraw a report or an identity waits for a decision"
    ),
}
URGENT_LABEL = _("Urgent cases while I was on duty")
SAVED = _("Your notification settings were saved.")
DUTY_SAVED = _("The duty roster was saved.")


def _sent_by_label(sent: list[tuple[str, int]]) -> list[tuple[str, int]]:
    """Counts per mail line: the three deadline notices are one line."""
    totals: dict[str, int] = {}
    for kind, count in sent:
        label = KIND_LABELS.get(notify_kinds.pref_kind(kind), URGENT_LABEL)
        totals[label] = totals.get(label, 0) + count
    return list(totals.items())


async def _page(
    request: Request[Any, Any, Any], staff: StaffPrincipal, notice: str | None = None
) -> Template:
    services = services_of(request)
    async with services.db.read() as s:
        me = await s.get(User, staff.user_id)
        assert me is not None
        roles = roles_of(me.roles)
        chosen = notify_kinds.parse_prefs(me.notify_prefs, roles)
        duty = {u.id for u in await duty_roster.on_duty(s)}
        roster_saved = await duty_roster.roster_saved(s)
        am_on_duty = staff.user_id in duty
        everyone: list[User] = []
        if can(staff.policy(), "manage_settings"):
            everyone = list(
                (
                    await s.execute(
                        select(User).where(User.disabled.is_(False)).order_by(User.display_name)
                    )
                ).scalars()
            )
    sent = await notify.sent_log(services, staff.user_id)
    return page(
        "notifications",
        staff=staff,
        kinds=[(k, KIND_LABELS[k], k in chosen) for k in notify_kinds.offered_kinds(roles)],
        email=me.email,
        am_on_duty=am_on_duty,
        everyone=everyone,
        duty=duty,
        sent=_sent_by_label(sent),
        roster_saved=roster_saved,
        notice=notice,
    )


@get("/notifications", name="workspace_notifications")
async def notifications(request: Request[Any, Any, Any]) -> Template:
    staff = await current_staff(request)
    done = request.query_params.get("done")
    notice = SAVED if done == "saved" else DUTY_SAVED if done == "duty" else None
    return await _page(request, staff, notice)


@post("/notifications", name="workspace_notifications_save")
async def save_notifications(request: Request[Any, Any, Any]) -> Redirect:
    staff = await current_staff(request)
    form = await read_form(request)
    async with services_of(request).db.write() as s:
        me = await s.get(User, staff.user_id)
        assert me is not None
        await notify_kinds.set_prefs(s, me, form.get("kind", []))
    return Redirect(path="/workspace/notifications?done=saved", status_code=303)


@post("/notifications/duty", name="workspace_notifications_duty")
async def save_duty(request: Request[Any, Any, Any]) -> Redirect:
    staff = await current_staff(request)
    if not can(staff.policy(), "manage_settings"):
        raise not_found()
    form = await read_form(request)
    async with services_of(request).db.write() as s:
        await duty_roster.set_on_duty(s, staff.user_id, [v[:64] for v in form.get("on_duty", [])])
    return Redirect(path="/workspace/notifications?done=duty", status_code=303)


notify_handlers: list[Any] = [notifications, save_notifications, save_duty]
