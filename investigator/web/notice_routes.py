"""Notices in the workspace (issue 16 item 3): every notice, mail or no mail.

    GET  /workspace/notices              my notices, newest first, with unread counts per kind
                                         (``?unread=1`` only the unread, ``?page=N``)
    POST /workspace/notices/read         mark them read (all, or the ``id`` values sent), audited

Nobody sees a notice about a case they are excluded from (``investigator.domain.notices``).
"""

from __future__ import annotations

from typing import Any

from litestar import Request, get, post
from litestar.response import Redirect, Template

from investigator.domain import notices
from investigator.web.case_common import page, read_form, services_of
from investigator.web.guards import current_staff
from portal.kernel.msgid import _

KIND_WORDS = {
    "new_cases": _("New reports received"),
    "urgent": _("Urgent case: you are on duty"),
    "assigned": _("You were added to an investigation team"),
    "reporter_message": _("A reporter sent a message"),
    "deadline_warning_50": _("Half of a deadline's time is used"),
    "deadline_warning_80": _("A deadline's time is 80 per cent used"),
    "deadline_overdue": _("Deadline overdue (supervision notice)"),
    "deadline": _("Deadline warning or overdue notice"),
    "approval": _("Waiting for your approval"),
    "identity_request": _("An identity disclosure request waits for a decision"),
    "rights_request": _("A reporter's withdrawal request waits for a decision"),
}
UNKNOWN_KIND = _("Notice")
READ_DONE = _("The notices were marked as read.")


def _int(raw: str | None, default: int) -> int:
    try:
        return max(1, min(int(raw or default), 10_000))
    except ValueError:
        return default


@get("/notices", name="workspace_notices")
async def notices_page(request: Request[Any, Any, Any]) -> Template:
    staff = await current_staff(request)
    unread_only = request.query_params.get("unread") == "1"
    number = _int(request.query_params.get("page"), 1)
    async with services_of(request).db.read() as s:
        rows, total = await notices.list_notices(
            s, staff.policy(), unread_only=unread_only, page=number
        )
        counts = await notices.unread_counts(s, staff.policy())
    return page(
        "notices",
        staff=staff,
        rows=rows,
        total=total,
        page_number=number,
        pages=max(1, -(-total // notices.PAGE_SIZE)),
        unread_only=unread_only,
        counts=sorted(
            counts.items(),
            key=lambda kv: (
                list(KIND_WORDS).index(kv[0]) if kv[0] in KIND_WORDS else len(KIND_WORDS)
            ),
        ),
        kind_words=KIND_WORDS,
        unknown_kind=UNKNOWN_KIND,
        notice=READ_DONE if request.query_params.get("done") == "read" else None,
    )


@post("/notices/read", name="workspace_notices_read")
async def notices_read(request: Request[Any, Any, Any]) -> Redirect:
    staff = await current_staff(request)
    form = await read_form(request)
    raw = form.get("id")
    ids = [int(v) for v in raw if v.isdigit()] if raw else None
    async with services_of(request).db.write() as s:
        await notices.mark_read(s, staff.policy(), ids)
    return Redirect(path="/workspace/notices?done=read", status_code=303)


notice_handlers: list[Any] = [notices_page, notices_read]
