"""The statistics tables (W14) as plain tables, and as CSV and XLSX files.

``build_tables`` turns a ``statistics.Report`` into the list of ``Table`` the statistics page
shows as its data tables; the exports write exactly those tables, so the page, the printable
report, the CSV and the XLSX always agree. Small department counts are already added up
in one unnamed row by ``statistics`` (see ``_combine_small_departments``).

Formula injection: a spreadsheet runs a cell that starts with ``=``, ``+``, ``-`` or ``@`` (and
some read a leading tab or carriage return the same way). Every text cell that starts with one
of them is prefixed with ``'``, in the CSV and in the XLSX alike; numbers are written as numbers.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from openpyxl import Workbook

from investigator.domain.statistics import OTHER_DEPARTMENTS, Count, Report
from portal.kernel.msgid import _

Cell = str | int | float | None
Translate = Callable[[str], str]

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


DIMENSION_TITLES = {
    "kind": _("Cases by type"),
    "category": _("Cases by category"),
    "channel": _("Cases by channel"),
    "department": _("Cases by department"),
    "stage": _("Cases by stage"),
    "identity": _("Real-name and anonymous reports"),
    "outcome": _("Cases by outcome"),
}
# the first column's header of each breakdown table
DIMENSION_HEADERS = {
    "kind": _("Kind"),
    "category": _("Category"),
    "channel": _("Channel"),
    "department": _("Department"),
    "stage": _("Stage"),
    "identity": _("Identity"),
    "outcome": _("Outcome"),
}
WORDS = {
    "report": _("Report (举报)"),
    "complaint": _("Complaint (投诉)"),
    "both": _("Report and complaint"),
    "web": _("Web form"),
    "phone": _("Phone"),
    "wechat": _("WeChat"),
    "official_account": _("Official account (公众号)"),
    "email": _("E-mail"),
    "letter": _("Letter"),
    "visit": _("Visit"),
    "real_name": _("Real name"),
    "anonymous": _("Anonymous"),
    "substantiated": _("Substantiated"),
    "partly_substantiated": _("Partly substantiated"),
    "unsubstantiated": _("Unsubstantiated"),
    "transferred": _("Transferred"),
    "rejected": _("Rejected"),
    "none": _("None yet"),
    "received": _("Received"),
    "triage": _("Triage"),
    "accepted": _("Accepted"),
    "investigating": _("Investigating"),
    "handling": _("Handling"),
    "approval": _("Approval"),
    "implementing": _("Implementing"),
    "concluded": _("Concluded"),
    "reopened": _("Reopened"),
    "archived": _("Archived"),
    "proposed": _("Proposed"),
    "approved": _("Approved"),
    "refused": _("Refused"),
    "paid": _("Paid"),
    "subject": _("Persons named (by keyed name fingerprint)"),
    "staff_subject": _("Staff members named"),
    "department": _("Units named"),
    # deadline stages
    "initial_review": _("Initial review"),
    "transfer": _("Transfer to the responsible department"),
    "urgent_dispatch": _("Urgent dispatch"),
    "investigation": _("Investigation"),
    "feedback": _("Feedback to the reporter"),
    "acknowledgement": _("Acknowledgement of receipt"),
    "eu_feedback": _("Feedback to the reporter (three months)"),
}


@dataclass(frozen=True)
class Table:
    slug: str
    title: str
    headers: list[str]
    rows: list[list[Cell]]


def safe_cell(value: Cell) -> Cell:
    """A text cell a spreadsheet would run as a formula gets a leading ``'``."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def _number(shown: str) -> Cell:
    return int(shown) if shown.isdigit() else shown


def _label(report: Report, dim: str, key: str, t: Translate, locale: str) -> str:
    if dim == "department":
        if key == OTHER_DEPARTMENTS:
            return t(_("Other departments (those with 1 or 2 cases, added up)"))
        return report.department_names.get(key) or t(_("No department"))
    if dim == "category" and key in report.category_names:
        cn, tw, en = report.category_names[key]
        return tw if locale == "zh_TW" else en if locale == "en" else cn
    return t(WORDS[key]) if key in WORDS else key


def _fmt(value: float | None) -> Cell:
    return "" if value is None else value


def build_tables(report: Report, t: Translate, locale: str) -> list[Table]:
    """The data tables of the statistics page, in the viewer's language."""
    now, before = report.period.label, report.previous.label
    trend_rows: list[list[Cell]] = [[b, n] for b, n in report.trend]
    trend_rows.append([t(_("Total")) + f" {now}", report.total])
    trend_rows.append([t(_("Total")) + f" {before}", report.previous_total])
    tables = [
        Table("trend", t(_("Cases received")), [t(_("Period")), t(_("Cases received"))], trend_rows)
    ]
    for dim, rows in report.breakdowns.items():
        tables.append(
            Table(
                dim,
                t(DIMENSION_TITLES[dim]),
                [t(DIMENSION_HEADERS[dim]), now, before, t(_("Change"))],
                [
                    [
                        _label(report, dim, c.key, t, locale),
                        _number(c.shown),
                        _number(c.shown_previous),
                        c.delta if c.delta is not None else "",
                    ]
                    for c in rows
                ],
            )
        )
    tables.append(
        Table(
            "handling_time",
            t(_("Handling time per stage (calendar days)")),
            [
                t(_("Stage")),
                t(_("Deadlines met")),
                t(_("Median")),
                t(_("P90")),
                t(_("Median")) + f" {before}",
            ],
            [
                [
                    t(WORDS.get(r.stage, r.stage)),
                    r.count,
                    _fmt(r.median),
                    _fmt(r.p90),
                    _fmt(r.previous_median),
                ]
                for r in report.times
            ],
        )
    )
    tables.append(
        Table(
            "compliance",
            t(_("Deadline compliance per stage")),
            [
                t(_("Stage")),
                t(_("Deadlines met")),
                t(_("On time")),
                t(_("Late")),
                t(_("On time (%)")),
                t(_("On time (%)")) + f" {before}",
                t(_("Overdue now")),
            ],
            [
                [
                    t(WORDS.get(r.stage, r.stage)),
                    r.met,
                    r.on_time,
                    r.late,
                    _fmt(r.rate),
                    _fmt(r.previous_rate),
                    r.open_overdue,
                ]
                for r in report.compliance
            ],
        )
    )
    tables.append(
        Table(
            "handlers",
            t(_("Overdue and late deadlines per handler")),
            [t(_("Handler")), t(_("Overdue now")), t(_("Met late")), t(_("Deadlines met"))],
            [[r.name, r.overdue_now, r.met_late, r.met] for r in report.handlers],
        )
    )
    tables.append(
        Table(
            "rewards",
            t(_("Rewards and recoveries")),
            [t(_("Status")), t(_("Rewards")), t(_("Amount (RMB)")), t(_("Recovered (RMB)"))],
            [[t(WORDS[r.status]), r.count, r.amount, r.recovered] for r in report.rewards],
        )
    )
    tables.append(
        Table(
            "repeats",
            t(_("Repeat subjects (不良记录台账)")),
            [
                t(_("Counted by")),
                t(_("Named in 2 cases")),
                t(_("Named in 3 or 4 cases")),
                t(_("Named in 5 or more")),
            ],
            [
                [t(WORDS[r.what]), r.named_in_2, r.named_in_3_4, r.named_in_5_more]
                for r in report.repeats
            ],
        )
    )
    return tables


def breakdown_items(report: Report, dim: str, t: Translate, locale: str) -> list[tuple[str, int]]:
    """(label, value) for a bar chart; suppressed values are left out of the chart."""
    rows: Sequence[Count] = report.breakdowns.get(dim, [])
    return [(_label(report, dim, c.key, t, locale), c.value) for c in rows if not c.hidden]


def to_csv(tables: Sequence[Table]) -> bytes:
    """UTF-8 with a byte-order mark (so spreadsheet programs read Chinese right); one block
    per table: its title, its header row, its rows, a blank line."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    for table in tables:
        writer.writerow([safe_cell(table.title)])
        writer.writerow([safe_cell(h) for h in table.headers])
        for row in table.rows:
            writer.writerow([safe_cell(c) for c in row])
        writer.writerow([])
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def to_xlsx(tables: Sequence[Table]) -> bytes:
    """One worksheet per table (title in the first row, headers in the second)."""
    book = Workbook()
    first = True
    for table in tables:
        sheet = book.active if first else book.create_sheet()
        assert sheet is not None
        first = False
        sheet.title = table.slug[:31]
        sheet.append([safe_cell(table.title)])
        sheet.append([safe_cell(h) for h in table.headers])
        for row in table.rows:
            sheet.append([safe_cell(c) for c in row])
        for cells in sheet.iter_rows():
            for cell in cells:
                if isinstance(cell.value, str):
                    cell.data_type = "s"  # never a formula, whatever the text
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()
