"""The auditor's view of the audit log: filters, case numbers and the CSV export (A5).

``parse_filter`` reads the page's query (person, case number, action, date range in UTC);
``search`` returns the matching entries newest first, each with the actor's user name, the
case's number (never its id) and its detail with staff and department ids replaced by their
names; ``to_csv`` writes them with translated actions, every text cell
made safe for spreadsheet programs (``investigator.domain.exports.safe_cell``).

Only log metadata is read: never case content.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from investigator.domain.exports import safe_cell
from portal.kernel import labels
from portal.kernel.db.models import AuditEntry, Case, Department, User
from portal.kernel.msgid import _

PAGE_SIZE = 100
EXPORT_LIMIT = 100_000
_NUMBER = re.compile(r"^[0-9]{1,12}$")
_ID = re.compile(r"^[0-9a-f]{32}$")
_ID_IN_TEXT = re.compile(r"\b[0-9a-f]{32}\b")

CSV_HEADERS = (
    _("Entry"),
    _("Time (UTC)"),
    _("Who"),
    _("Action"),
    _("Action code"),
    _("Case"),
    _("Detail"),
)


@dataclass(frozen=True)
class AuditFilter:
    actor_id: str = ""
    case_number: str = ""
    action: str = ""
    date_from: dt.date | None = None
    date_to: dt.date | None = None
    before: int = 0

    def query(self) -> dict[str, str]:
        """The filter as query parameters (without ``before``), for links and the export."""
        out = {
            "person": self.actor_id,
            "case": self.case_number,
            "action": self.action,
            "from": self.date_from.isoformat() if self.date_from else "",
            "to": self.date_to.isoformat() if self.date_to else "",
        }
        return {k: v for k, v in out.items() if v}

    def describe(self) -> str:
        """Plain metadata for the export's own audit entry."""
        return " ".join(f"{k}={v}" for k, v in sorted(self.query().items()))[:900]


@dataclass(frozen=True)
class AuditRow:
    id: int
    at: dt.datetime
    actor: str
    action: str
    case_number: str
    detail: str


def _date(raw: str) -> dt.date | None:
    try:
        return dt.date.fromisoformat(raw.strip()) if raw.strip() else None
    except ValueError:
        return None


def parse_filter(params: Mapping[str, str]) -> AuditFilter:
    """The filter from query parameters; anything malformed is ignored, never an error."""
    person = params.get("person", "").strip()
    number = params.get("case", "").strip()
    action = params.get("action", "").strip()
    try:
        before = max(0, int(params.get("before", "0") or 0))
    except ValueError:
        before = 0
    return AuditFilter(
        actor_id=person if _ID.match(person) else "",
        case_number=number if _NUMBER.match(number) else "",
        action=action if action in labels.AUDIT_ACTIONS else "",
        date_from=_date(params.get("from", "")),
        date_to=_date(params.get("to", "")),
        before=before,
    )


def _utc_midnight(day: dt.date) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)


def _statement(flt: AuditFilter) -> Select[AuditEntry, str, str]:
    stmt = (
        select(AuditEntry, User.username, Case.number)
        .outerjoin(User, User.id == AuditEntry.actor_user_id)
        .outerjoin(Case, Case.id == AuditEntry.case_id)
        .order_by(AuditEntry.id.desc())
    )
    if flt.actor_id:
        stmt = stmt.where(AuditEntry.actor_user_id == flt.actor_id)
    if flt.case_number:
        stmt = stmt.where(Case.number == flt.case_number)
    if flt.action:
        stmt = stmt.where(AuditEntry.action == flt.action)
    if flt.date_from:
        stmt = stmt.where(AuditEntry.at >= _utc_midnight(flt.date_from))
    if flt.date_to:
        stmt = stmt.where(AuditEntry.at < _utc_midnight(flt.date_to + dt.timedelta(days=1)))
    if flt.before:
        stmt = stmt.where(AuditEntry.id < flt.before)
    return stmt


async def id_names(session: AsyncSession) -> dict[str, str]:
    """Staff account and department ids -> user name / department name."""
    names: dict[str, str] = {}
    for stmt in (select(User.id, User.username), select(Department.id, Department.name)):
        for row_id, name in await session.execute(stmt):
            names[row_id] = name
    return names


def readable(detail: str, names: Mapping[str, str]) -> str:
    """The detail with the ids of staff accounts and departments replaced by their names
    (``user=wang`` rather than a 32-character id); other ids stay as they are."""
    return _ID_IN_TEXT.sub(lambda m: names.get(m[0], m[0]), detail)


async def search(session: AsyncSession, flt: AuditFilter, limit: int = PAGE_SIZE) -> list[AuditRow]:
    """The entries matching ``flt``, newest first, at most ``limit``; details readable."""
    rows = (await session.execute(_statement(flt).limit(limit))).all()
    names = await id_names(session)
    return [
        AuditRow(
            id=entry.id,
            at=entry.at,
            actor=username or "",
            action=entry.action,
            case_number=number or "",
            detail=readable(entry.detail, names),
        )
        for entry, username, number in rows
    ]


async def people(session: AsyncSession) -> list[tuple[str, str]]:
    """(user id, user name) of every staff account, for the person filter."""
    rows = await session.execute(select(User.id, User.username).order_by(User.username))
    return [(uid, name) for uid, name in rows.all()]


def action_label(action: str, translate: Callable[[str], str]) -> str:
    msgid = labels.audit_action_msgid(action)
    return translate(msgid if msgid is not None else labels.UNKNOWN)


def to_csv(rows: Sequence[AuditRow], translate: Callable[[str], str]) -> bytes:
    """UTF-8 with a byte-order mark; one line per entry; every text cell spreadsheet-safe."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([safe_cell(translate(h)) for h in CSV_HEADERS])
    for r in rows:
        writer.writerow(
            [
                r.id,
                r.at.strftime("%Y-%m-%d %H:%M:%S"),
                safe_cell(r.actor or "—"),
                safe_cell(action_label(r.action, translate)),
                safe_cell(r.action),
                safe_cell(r.case_number),
                safe_cell(r.detail),
            ]
        )
    return ("\ufeff" + out.getvalue()).encode("utf-8")
