"""The inbox and case list pages: reading the filters from the query string, and the page.

    GET /workspace/cases?stage=&category=&channel=&severity=&due=N&overdue=1&number=
                        &sort=number|received|channel|category|severity|stage|due&dir=asc|desc
                        &page=&per_page=25|50|100

Every value is checked against its list of choices; anything else is ignored (the filter is
off), never echoed. The rows come from ``investigator.domain.worklist`` (policy-filtered).
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any
from urllib.parse import urlencode

from litestar import Request
from litestar.response import Template
from sqlalchemy import select

from investigator.domain import worklist
from investigator.policy import INTAKE_STAGES
from investigator.web.case_common import LEFT_VIEW_NOTICES, page, services_of
from investigator.web.guards import StaffPrincipal
from portal.case.stage import PUBLIC_STAGES
from portal.http.i18n import locale_of
from portal.kernel import labels
from portal.kernel.db.models import Category
from portal.kernel.msgid import _

_DIGITS = re.compile(r"^[0-9]{1,12}$")

# channels a case can come by (the web form, and those an intake officer registers: W2)
CHANNELS: tuple[str, ...] = tuple(labels.CHANNELS)
STATE_WORDS: dict[str, str] = {
    "ok": _("On time"),
    "warning": _("Due soon"),
    "overdue": _("Overdue"),
}
SORT_WORDS: dict[str, str] = {
    "number": _("Case number"),
    "received": _("Received"),
    "channel": _("Channel"),
    "category": _("Category"),
    "severity": _("Severity"),
    "stage": _("Stage"),
    "due": _("Deadline"),
}


def _int(raw: str, low: int, high: int) -> int | None:
    if not raw.isdigit() or len(raw) > 6:
        return None
    value = int(raw)
    return value if low <= value <= high else None


def read_query(
    params: Any, *, stage_choices: list[str], categories: dict[str, str], restrict: bool
) -> tuple[worklist.ListQuery, dict[str, str]]:
    """The query and the filters as they stand (only accepted values, for the form and links).
    ``restrict``: without a stage filter, list only the ``stage_choices`` (the inbox)."""

    def get(name: str) -> str:
        return str(params.get(name, "")).strip()[:40]

    kept: dict[str, str] = {}
    q = worklist.ListQuery(stages=tuple(stage_choices) if restrict else ())
    if (stage := get("stage")) in stage_choices:
        q, kept["stage"] = replace(q, stages=(stage,)), stage
    if (category := get("category")) in categories:
        q, kept["category"] = replace(q, category=category), category
    if (channel := get("channel")) in CHANNELS:
        q, kept["channel"] = replace(q, channel=channel), channel
    if (severity := get("severity")) in worklist.SEVERITIES:
        q, kept["severity"] = replace(q, severity=severity), severity
    if (due := _int(get("due"), 0, worklist.MAX_DUE_WITHIN)) is not None:
        q, kept["due"] = replace(q, due_within=due), str(due)
    if get("overdue") in ("1", "yes", "on"):
        q, kept["overdue"] = replace(q, overdue=True), "1"
    if _DIGITS.match(number := get("number")):
        q, kept["number"] = replace(q, number=number), number
    if (sort := get("sort")) in worklist.SORTS:
        q, kept["sort"] = replace(q, sort=sort), sort
        if get("dir") == "desc":
            q, kept["dir"] = replace(q, descending=True), "desc"
    if (per_page := _int(get("per_page"), 1, 100)) in worklist.PAGE_SIZES:
        q, kept["per_page"] = replace(q, per_page=per_page), str(per_page)
    if (number_of_page := _int(get("page"), 1, worklist.MAX_PAGE)) is not None:
        q = replace(q, page=number_of_page)
    return q, kept


def _href(base: str, kept: dict[str, str], **changes: str | int | None) -> str:
    params = {**kept, **{k: str(v) for k, v in changes.items() if v is not None}}
    for k, v in changes.items():
        if v is None:
            params.pop(k, None)
    return f"{base}?{urlencode(params)}" if params else base


def sort_links(base: str, kept: dict[str, str]) -> dict[str, dict[str, str]]:
    """Per sortable column: the link that sorts by it (again: the other way) and its state."""
    out: dict[str, dict[str, str]] = {}
    for key in worklist.SORTS:
        current = kept.get("sort") == key
        descending = current and kept.get("dir") == "desc"
        direction = "asc" if descending or not current else "desc"
        out[key] = {
            "href": _href(base, kept, sort=key, dir=direction, page=None),
            "aria": ("descending" if descending else "ascending") if current else "none",
        }
    return out


async def list_page(
    request: Request[Any, Any, Any], staff: StaffPrincipal, *, inbox: bool
) -> Template:
    base = "/workspace/inbox" if inbox else "/workspace/cases"
    locale = locale_of(request.scope)
    stage_choices = sorted(INTAKE_STAGES) if inbox else list(PUBLIC_STAGES)
    async with services_of(request).db.read() as s:
        categories = list((await s.execute(select(Category).order_by(Category.position))).scalars())
        names = {
            c.code: {"zh_TW": c.name_zh_tw, "en": c.name_en}.get(locale, c.name_zh_cn)
            for c in categories
        }
        query, kept = read_query(
            request.query_params, stage_choices=stage_choices, categories=names, restrict=inbox
        )
        result = await worklist.case_page(s, staff.policy(), query, locale=locale)
    return page(
        "inbox",
        staff=staff,
        notice=LEFT_VIEW_NOTICES.get(request.query_params.get("done", "")),
        inbox=inbox,
        base=base,
        result=result,
        cases=[row.case for row in result.rows],
        rows=result.rows,
        total=result.total,
        count_cap=worklist.COUNT_CAP,
        filters=kept,
        searched="number" in kept,
        filtered=any(k not in ("sort", "dir", "per_page") for k in kept),
        stage_choices=stage_choices,
        categories=categories,
        category_names=names,
        channels=CHANNELS,
        severities=worklist.SEVERITIES,
        state_words=STATE_WORDS,
        sort_words=SORT_WORDS,
        sort_links=sort_links(base, kept),
        page_sizes=worklist.PAGE_SIZES,
        prev_href=_href(base, kept, page=result.page - 1) if result.page > 1 else None,
        next_href=_href(base, kept, page=result.page + 1) if result.has_next else None,
    )
