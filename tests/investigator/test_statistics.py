"""Statistics (W14, W15): periods, figures, suppression, exclusions, charts, exports, audit."""

from __future__ import annotations

import csv
import datetime as dt
import importlib.util
import io
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st_h
from litestar import Litestar
from litestar.testing import TestClient
from openpyxl import load_workbook
from sqlalchemy import delete, func, insert, select, text

from investigator.domain import exports, periods
from investigator.domain import statistics as st
from portal.kernel.db.models import (
    AuditEntry,
    Case,
    CaseDeadline,
    Department,
    KeyWrap,
    Reward,
    Subject,
    new_id,
)
from portal.kernel.services import Services
from tests.investigator.ws_helpers import Desk, run, submit_case

D = dt.date

# --- periods and helpers ------------------------------------------------------------------------


def test_periods_and_their_previous_periods() -> None:
    today = D(2026, 5, 17)
    assert periods.parse_period({}, today) == periods.year_period(2026)
    m = periods.parse_period({"period": "month", "year": "2026", "month": "3"}, today)
    assert (m.start, m.end, m.previous().label) == (D(2026, 3, 1), D(2026, 3, 31), "2026-02")
    assert periods.month_period(2026, 1).previous().label == "2025-12"
    q = periods.parse_period({"period": "quarter", "year": "2026", "quarter": "1"}, today)
    assert (q.end, q.previous().label, q.previous().start) == (
        D(2026, 3, 31),
        "2025-Q4",
        D(2025, 10, 1),
    )
    c = periods.parse_period(
        {"period": "custom", "start": "2026-02-10", "end": "2026-02-19"}, today
    )
    assert (c.previous().start, c.previous().end) == (D(2026, 1, 31), D(2026, 2, 9))
    assert c.daily and len(c.buckets()) == 10
    assert (
        periods.year_period(2026).buckets()[0] == "2026-01"
        and len(periods.year_period(2026).buckets()) == 12
    )
    for bad in (
        {"period": "week"},
        {"period": "month", "month": "13"},
        {"period": "year", "year": "x"},
        {"period": "custom", "start": "2026-02-10", "end": "2026-02-01"},
        {"period": "custom", "start": "2020-01-01", "end": "2026-01-01"},
        {"period": "custom"},
    ):
        with pytest.raises(periods.PeriodError):
            periods.parse_period(bad, today)


def test_median_and_p90_from_a_histogram() -> None:
    assert st._percentiles({}) == (0, None, None)
    assert st._percentiles({3: 1}) == (1, 3.0, 3)
    # 1..10: median 5.5, P90 (nearest rank 9) = 9
    assert st._percentiles(dict.fromkeys(range(1, 11), 1)) == (10, 5.5, 9)
    assert st._percentiles({2: 5, 30: 1}) == (6, 2.0, 30)


@given(
    st_h.dictionaries(st_h.sampled_from("abcdefg"), st_h.integers(0, 6)),
    st_h.dictionaries(st_h.sampled_from("abcdefg"), st_h.integers(0, 6)),
)
def test_small_departments_cannot_be_worked_out_by_subtraction(
    now: dict[str, int], before: dict[str, int]
) -> None:
    rows = st._breakdown("department", now, before)
    by_key = {c.key: c for c in rows}
    # totals are kept, in both periods
    assert sum(c.value for c in rows) == sum(now.values())
    assert sum(c.previous for c in rows) == sum(before.values())
    for c in rows:
        if c.key != st.OTHER_DEPARTMENTS:  # a named department: never 1 or 2, in either period
            assert c.value == 0 or c.value >= 3, rows
            assert c.previous == 0 or c.previous >= 3, rows
    other = by_key.get(st.OTHER_DEPARTMENTS)
    if other is not None:
        folded = [
            k for k in set(now) | set(before) if k not in by_key and (now.get(k) or before.get(k))
        ]
        named = [k for k in by_key if k != st.OTHER_DEPARTMENTS and (now.get(k) or before.get(k))]
        # the row stands for two departments or more, unless no other department had a case
        assert len(folded) >= 2 or not named, (now, before, rows)


def test_one_small_department_takes_the_next_smallest_with_it() -> None:
    rows = st._breakdown("department", {"a": 1, "b": 4, "c": 9}, {})
    assert [(c.key, c.value) for c in rows] == [("c", 9), (st.OTHER_DEPARTMENTS, 5)]
    unchanged = st._breakdown("department", {"a": 3, "b": 4}, {"a": 0, "b": 5})
    assert [(c.key, c.value, c.previous) for c in unchanged] == [("b", 4, 5), ("a", 3, 0)]


def test_small_department_counts_are_suppressed() -> None:
    c = st.Count("d", 2, 7, suppress=True)
    assert (c.shown, c.shown_previous, c.change, c.hidden) == ("<3", "7", "", True)
    assert st.Count("d", 0, 4, suppress=True).shown == "0"
    assert st.Count("c", 2, 7).shown == "2" and st.Count("c", 2, 7).change == "-5"


def test_formula_cells_are_neutralised() -> None:
    assert [exports.safe_cell(v) for v in ("=1+1", "+1", "-2", "@SUM(A1)", "\tx", "ok", 5)] == [
        "'=1+1",
        "'+1",
        "'-2",
        "'@SUM(A1)",
        "'\tx",
        "ok",
        5,
    ]


# --- a synthetic world --------------------------------------------------------------------------

YEAR = 2025


async def seed(services: Services, subject_user: str | None = None) -> dict[str, Any]:
    """Cases of 2025 and 2024 inserted directly (metadata only, as the statistics read them)."""
    big, small, evil = new_id(), new_id(), new_id()
    ids: list[str] = []
    async with services.db.write() as s:
        await s.execute(
            insert(Department),
            [
                {"id": big, "name": "Purchasing", "active": True},
                {"id": small, "name": "Legal", "active": True},
                {"id": evil, "name": '=HYPERLINK("http://x")', "active": True},
            ],
        )
        rows = []
        spec = (
            # (received_on, kind, channel, department, anonymous, stage, outcome)
            *[
                (D(YEAR, 3, 2 + i), "report", "web", big, True, "concluded", "substantiated")
                for i in range(5)
            ],
            *[
                (D(YEAR, 4, 1 + i), "complaint", "phone", small, False, "rejected", "rejected")
                for i in range(2)
            ],
            (D(YEAR, 7, 1), "report", "letter", evil, False, "investigating", None),
            (D(YEAR, 7, 2), "report", "web", evil, True, "investigating", None),
            (D(YEAR, 7, 3), "report", "web", evil, True, "transferred", "transferred"),
            (D(YEAR - 1, 6, 1), "report", "web", big, True, "archived", "unsubstantiated"),
        )
        for n, (on, kind, channel, dep, anon, stage, outcome) in enumerate(spec):
            cid = new_id()
            ids.append(cid)
            rows.append(
                {
                    "id": cid,
                    "number": f"T{n:05d}",
                    "kind": kind,
                    "channel": channel,
                    "category": "bribery",
                    "reporter_relation": "employee",
                    "anonymous": anon,
                    "stage": stage,
                    "department_id": dep,
                    "outcome": outcome,
                    "received_on": on,
                    "content": b"\x00sealed",
                    "suite": 1,
                    "urgent": False,
                }
            )
        await s.execute(insert(Case), rows)
        # deadlines met in 2025: handling took 10, 20, 30, 40 and 50 days (one late, due 30)
        deadlines = []
        for i, took in enumerate((10, 20, 30, 40, 50)):
            start = D(YEAR, 3, 2 + i)
            deadlines.append(
                _deadline(
                    ids[i],
                    "handling",
                    start,
                    start + dt.timedelta(days=45),
                    start + dt.timedelta(days=took),
                )
            )
        # one running past due (the 2025-07-01 case), one running in time
        deadlines.append(_deadline(ids[7], "investigation", D(YEAR, 7, 1), D(YEAR, 7, 22), None))
        deadlines.append(_deadline(ids[8], "investigation", D(YEAR, 7, 2), D(YEAR + 5, 1, 1), None))
        await s.execute(insert(CaseDeadline), deadlines)
        # the same person (one keyed fingerprint) named in three cases
        fp = b"\x01" * 32
        await s.execute(
            insert(Subject),
            [
                {
                    "id": new_id(),
                    "case_id": ids[i],
                    "sealed": b"x",
                    "fingerprint": fp,
                    "user_id": None,
                    "department_id": big,
                }
                for i in (0, 1, 2)
            ]
            + (
                [
                    {
                        "id": new_id(),
                        "case_id": ids[3],
                        "sealed": b"x",
                        "fingerprint": None,
                        "user_id": subject_user,
                        "department_id": None,
                    }
                ]
                if subject_user
                else []
            ),
        )
    return {"ids": ids, "big": big, "small": small, "evil": evil}


def _deadline(case_id: str, stage: str, start: D, due: D, met: D | None) -> dict[str, Any]:
    return {
        "id": new_id(),
        "case_id": case_id,
        "stage": stage,
        "unit": "calendar_days",
        "amount": 30,
        "starts_on": start,
        "due_on": due,
        "paused_days": 0,
        "extended": False,
        "extension_days": 0,
        "met_on": met,
        "notice_level": 0,
    }


@pytest.fixture
def desk(client: TestClient[Litestar], services: Services) -> Desk:
    d = Desk(client, services)
    d.add("auditor", "auditor")
    d.add("approver", "approver")
    d.add("named", "approver")  # named as a subject in one case
    d.add("inv", "investigator")
    d.add("admin", "administrator")
    return d


def _year(desk: Desk, who: str, extra: str = "") -> Any:
    return desk.get(who, f"/workspace/statistics?period=year&year={YEAR}{extra}")


def _tables(html: str) -> str:
    """The data tables of the page (what must not change when keys are dropped)."""
    return "\n".join(re.findall(r"<table class=\"stats-table\".*?</table>", html, re.S))


def _row(html: str, slug: str, label: str) -> list[str]:
    table = re.search(rf'<table class="stats-table" id="table-{slug}">(.*?)</table>', html, re.S)
    assert table, slug
    for tr in re.findall(r"<tr>(.*?)</tr>", table.group(1), re.S):
        cells = [
            re.sub(r"<[^>]+>", "", c) for c in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", tr, re.S)
        ]
        if cells and cells[0] == label:
            return cells
    raise AssertionError(f"no row {label!r} in {slug}")


def test_statistics_page_for_auditor_and_approver_only(desk: Desk) -> None:
    run(desk.client, lambda: seed(desk.services))
    for who in ("inv", "admin"):
        assert _year(desk, who).status_code == 404
        assert desk.get(who, "/workspace/statistics/export?format=csv").status_code == 404
    assert desk.anonymous().get("/workspace/statistics", follow_redirects=False).status_code == 303
    page = _year(desk, "auditor")
    assert page.status_code == 200, page.text
    html = page.text
    assert "Cases received: <strong>10</strong>" in html
    assert _row(html, "kind", "Report (举报)")[1:3] == ["8", "1"]
    assert _row(html, "kind", "Complaint (投诉)")[1:3] == ["2", "0"]
    assert _row(html, "identity", "Anonymous")[1] == "7"
    assert _row(html, "outcome", "Substantiated")[1] == "5"
    assert _row(html, "outcome", "Transferred")[1] == "1"
    assert _row(html, "outcome", "Rejected")[1] == "2"
    # department level: Legal (2 now) and Purchasing (1 the year before) are not named, they
    # are added up in one row; the department with 3 and 0 is named
    other = "Other departments (those with 1 or 2 cases, added up)"
    assert _row(html, "department", other)[1:3] == ["7", "&lt;3"]
    assert _row(html, "department", "=HYPERLINK(&#34;http://x&#34;)")[1:3] == ["3", "0"]
    department = re.search(r'id="table-department">(.*?)</table>', html, re.S)
    assert department and "Legal" not in department.group(1)
    assert "Purchasing" not in department.group(1)
    # handling time: 10..50 days, median 30, P90 50; one of five met late
    assert _row(html, "handling_time", "Handling")[1:4] == ["5", "30.0", "50"]
    comp = _row(html, "compliance", "Handling")
    assert comp[1:5] == ["5", "4", "1", "80.0"]
    assert _row(html, "compliance", "Investigation")[-1] == "1"  # running past due today
    assert _row(html, "repeats", "Persons named (by keyed name fingerprint)")[1:] == ["0", "1", "0"]
    assert "Purchasing head" not in html
    # the charts: accessible inline SVG, no style attribute, no script
    assert 'role="img" aria-labelledby="chart-trend-title chart-trend-desc"' in html
    assert '<title id="chart-kind-title">' in html and "<desc id=" in html
    assert "style=" not in html and "<script>" not in html
    assert "style-src 'self'" in page.headers["content-security-policy"]
    assert _year(desk, "approver").status_code == 200
    zh = desk.use("auditor").get(
        f"/workspace/statistics?period=month&year={YEAR}&month=3",
        headers={"accept-language": "zh-CN"},
    )
    assert zh.status_code == 200 and "按结果" in zh.text and "每日受理案件数" in zh.text
    bad = desk.get("auditor", "/workspace/statistics?period=custom&start=2025-02-01&end=2025-01-01")
    assert bad.status_code == 400 and "The range must run forward" in bad.text


def test_a_subject_never_counts_the_case_about_them(desk: Desk) -> None:
    run(desk.client, lambda: seed(desk.services, subject_user=desk.user_id("named")))
    assert "Cases received: <strong>10</strong>" in _year(desk, "approver").text
    mine = _year(desk, "named").text
    assert "Cases received: <strong>9</strong>" in mine
    assert _row(mine, "handling_time", "Handling")[1] == "4"
    assert _row(mine, "repeats", "Staff members named")[1:] == ["0", "0", "0"]


def test_numbers_need_no_case_key(desk: Desk) -> None:
    """Drop every key wrap: the statistics are the same (plaintext metadata only)."""
    run(desk.client, lambda: seed(desk.services))
    run(desk.client, lambda: submit_case(desk.services, token="stats-tok-1"))
    before = _tables(_year(desk, "auditor").text)

    async def drop() -> int:
        async with desk.services.db.write() as s:
            await s.execute(delete(KeyWrap))
            return int((await s.execute(select(func.count()).select_from(KeyWrap))).scalar_one())

    assert run(desk.client, drop) == 0
    assert _tables(_year(desk, "auditor").text) == before


def test_csv_and_xlsx_exports_and_the_printable_report_are_audited(desk: Desk) -> None:
    seeded = run(desk.client, lambda: seed(desk.services))

    async def add_reward() -> None:
        async with desk.services.db.write() as s:
            await s.execute(
                insert(Reward).values(
                    id=new_id(),
                    case_id=seeded["ids"][0],
                    status="paid",
                    amount=5000,
                    recovered_amount=200000,
                    sealed_basis=b"x",
                    proposed_by=desk.user_id("approver"),
                    proposed_on=D(YEAR, 9, 1),
                )
            )

    run(desk.client, add_reward)
    q = f"period=year&year={YEAR}"
    got = desk.get("auditor", f"/workspace/statistics/export?format=csv&{q}")
    assert got.status_code == 200
    assert got.headers["content-disposition"] == f'attachment; filename="statistics-{YEAR}.csv"'
    assert got.headers["content-type"].startswith("text/csv")
    text = got.content.decode("utf-8")
    assert text.startswith("\ufeff")
    rows = list(csv.reader(io.StringIO(text[1:])))
    assert ['\'=HYPERLINK("http://x")', "3", "0", "3"] in rows
    assert ["Paid", "1", "5000", "200000"] in rows
    assert ["Other departments (those with 1 or 2 cases, added up)", "7", "<3", ""] in rows
    assert not any(r and r[0] in ("Legal", "Purchasing") for r in rows)
    texts = [c for r in rows for c in r if not re.fullmatch(r"-?\d+(\.\d+)?", c)]
    assert texts and not any(c.startswith(("=", "+", "-", "@")) for c in texts)
    xl = desk.get("auditor", f"/workspace/statistics/export?format=xlsx&{q}")
    assert xl.status_code == 200 and xl.headers["content-disposition"].endswith('.xlsx"')
    book = load_workbook(io.BytesIO(xl.content))
    cells = [c for ws in book.worksheets for r in ws.iter_rows() for c in r if c.value is not None]
    assert any(c.value == '\'=HYPERLINK("http://x")' for c in cells)
    assert all(c.data_type != "f" for c in cells)
    dept = book["department"]
    assert [c.value for c in dept[2]][1:3] == [str(YEAR), str(YEAR - 1)]
    assert desk.get("auditor", f"/workspace/statistics/export?format=pdf&{q}").status_code == 404
    report = desk.get(
        "auditor", f"/workspace/statistics/report?period=quarter&year={YEAR}&quarter=1"
    )
    assert report.status_code == 200 and f"Statistics report {YEAR}-Q1" in report.text
    assert "compared with</" not in report.text and f"{YEAR - 1}-Q4" in report.text
    _year(desk, "auditor")

    async def actions() -> list[tuple[str, str]]:
        async with desk.services.db.read() as s:
            rows = await s.execute(
                select(AuditEntry.action, AuditEntry.detail)
                .where(AuditEntry.action.like("statistics.%"))
                .order_by(AuditEntry.id)
            )
            return [(a, d) for a, d in rows.all()]

    logged = run(desk.client, actions)
    assert [a for a, _ in logged] == [
        "statistics.export",
        "statistics.export",
        "statistics.report",
        "statistics.view",
    ]
    assert logged[0][1] == f"period=year from={YEAR}-01-01 to={YEAR}-12-31 format=csv"


def test_summaries_follow_every_change(desk: Desk) -> None:
    """The triggers keep the summaries right through updates and deletes: the numbers after
    changes equal those of a fresh backfill (what a full recount gives)."""
    seeded = run(desk.client, lambda: seed(desk.services))
    ids = seeded["ids"]

    async def change() -> None:
        async with desk.services.db.write() as s:
            case = await s.get(Case, ids[7])
            assert case is not None
            case.stage, case.outcome, case.department_id = "concluded", "unsubstantiated", None
            open_dl = (
                await s.execute(select(CaseDeadline).where(CaseDeadline.case_id == ids[7]))
            ).scalar_one()
            open_dl.met_on = D(YEAR, 7, 30)  # 29 days, late (due 07-22)
            await s.execute(delete(Subject).where(Subject.case_id == ids[2]))
            await s.execute(delete(CaseDeadline).where(CaseDeadline.case_id == ids[0]))

    run(desk.client, change)
    html = _year(desk, "auditor").text
    assert _row(html, "outcome", "Unsubstantiated")[1] == "1"
    assert _row(html, "stage", "Concluded")[1] == "6"
    # the one case without a department is added up with others, never shown alone
    assert _row(html, "department", "Other departments (those with 1 or 2 cases, added up)")
    with pytest.raises(AssertionError, match="no row"):
        _row(html, "department", "No department")
    assert _row(html, "handling_time", "Handling")[1] == "4"
    assert _row(html, "compliance", "Investigation")[1:4] == ["1", "0", "1"]
    assert _row(html, "repeats", "Persons named (by keyed name fingerprint)")[1:] == ["1", "0", "0"]

    async def recount() -> list[tuple[Any, ...]]:
        path = (
            Path(__file__).resolve().parents[2]
            / "portal/kernel/db/migrations/versions/0007_statistics.py"
        )
        spec = importlib.util.spec_from_file_location("m0007", path)
        assert spec is not None and spec.loader is not None
        m = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(m)
        tables = ("stats_case_days", "stats_deadline_days", "stats_handler_days")
        async with desk.services.db.write() as s:
            dialect = s.get_bind().dialect.name
            before = [
                sorted(
                    tuple(r)
                    for r in (await s.execute(text(f"SELECT * FROM {t} WHERE n <> 0"))).all()
                )
                for t in tables
            ]
            keys = sorted(
                tuple(r)
                for r in (
                    await s.execute(text("SELECT * FROM stats_subject_keys WHERE cases <> 0"))
                ).all()
            )
            for t in (*tables, "stats_subject_keys"):
                await s.execute(text(f"DELETE FROM {t}"))
            for statement in m.backfill(dialect):
                await s.execute(text(statement))
            after = [
                sorted(tuple(r) for r in (await s.execute(text(f"SELECT * FROM {t}"))).all())
                for t in tables
            ]
            keys_after = sorted(
                tuple(r) for r in (await s.execute(text("SELECT * FROM stats_subject_keys"))).all()
            )
        assert before == after
        assert keys == keys_after
        return keys

    assert run(desk.client, recount)
