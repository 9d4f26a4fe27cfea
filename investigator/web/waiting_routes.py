""" "Waiting for me" (issue 16): one page per person with what waits for their action.

GET /workspace/waiting     every signed-in staff member; the sections follow their roles
                           and every row follows ``investigator.policy``
                           (``investigator.domain.waiting``)
"""

from __future__ import annotations

from typing import Any

from litestar import Request, get
from litestar.response import Template

from investigator.domain.waiting import waiting_for
from investigator.web.case_common import page, services_of
from investigator.web.guards import current_staff
from portal.kernel.msgid import _

SECTION_WORDS: dict[str, str] = {
    "approvals": _("Approvals"),
    "identity": _("Identity disclosure requests"),
    "rewards": _("Reward decisions"),
    "report_backs": _("Report-backs to send"),
    "overdue": _("Overdue cases"),
    "messages": _("Reporter messages not yet answered"),
}
WHAT_WORDS: dict[str, str] = {
    "plan": _("Handling plan to approve"),
    "extension": _("Deadline extension to decide"),
    "identity": _("Identity disclosure request to decide"),
    "reward_decision": _("Reward proposal to decide"),
    "reward_payment": _("Approved reward to pay"),
    "report_back": _("Transferred matter to report back on"),
    "overdue": _("Deadline passed"),
    "message": _("The reporter wrote"),
}
EMPTY_WORDS: dict[str, str] = {
    "approvals": _("Nothing awaits your approval."),
    "identity": _("No identity disclosure request awaits your decision."),
    "rewards": _("No reward awaits your decision or payment."),
    "report_backs": _("No transferred matter awaits your report-back."),
    "overdue": _("No case in your view is overdue."),
    "messages": _("Every reporter message in your cases has been answered."),
}


@get("/waiting", name="workspace_waiting")
async def waiting(request: Request[Any, Any, Any]) -> Template:
    staff = await current_staff(request)
    async with services_of(request).db.read() as s:
        sections = await waiting_for(s, staff.policy())
    return page(
        "waiting",
        staff=staff,
        sections=sections,
        section_words=SECTION_WORDS,
        what_words=WHAT_WORDS,
        empty_words=EMPTY_WORDS,
        total=sum(section.count for section in sections),
    )


waiting_handlers: list[Any] = [waiting]
