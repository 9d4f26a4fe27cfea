"""The auditor's log (issue 16, item 7; A5): case numbers not ids, actions in words, filters by
person, case, action and date, and an audited, spreadsheet-safe CSV export."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re

import pytest
from litestar import Litestar
from litestar.testing import TestClient
from sqlalchemy import func, select

from investigator.domain import audit_log
from portal.kernel import audit
from portal.kernel.db.models import AuditEntry, Case
from portal.kernel.services import Services
from tests.investigator.ws_helpers import Desk, run, submit_case
from tests.visible import visible_text

_ROW = re.compile(r"<tr><td>(\d+)</td>")


@pytest.fixture
def desk(client: TestClient[Litestar], services: Services) -> Desk:
    d = Desk(client, services)
    d.add("wang", "intake_officer")
    d.add("zhou", "auditor")
    return d


def _world(desk: Desk) -> tuple[str, str]:
    """Two cases the intake officer opened; returns (case id, case number) of the first."""
    ids = [
        str(
            run(
                desk.client,
                lambda n=n: submit_case(desk.services, token=f"audit-log-{n}-" + "x" * 20),
            )[0]
        )
        for n in range(2)
    ]
    for case_id in ids:
        assert desk.get("wang", f"/workspace/cases/{case_id}").status_code == 200

    async def number() -> str:
        async with desk.services.db.read() as s:
            case = await s.get(Case, ids[0])
            assert case is not None
            return case.number

    return ids[0], str(run(desk.client, number))


def _entries(html: str) -> list[int]:
    return [int(x) for x in _ROW.findall(html)]


async def _action_of(services: Services, entry_id: int) -> AuditEntry:
    async with services.db.read() as s:
        entry = await s.get(AuditEntry, entry_id)
        assert entry is not None
        return entry


def test_log_shows_case_numbers_and_actions_in_words(desk: Desk) -> None:
    case_id, number = _world(desk)
    desk.client.headers["accept-language"] = "zh-CN"
    page = desk.get("zhou", "/workspace/audit")
    assert page.status_code == 200
    shown = visible_text(page.text)
    assert number in shown and case_id not in shown  # the number, never the id
    assert "打开案件" in shown and "case.view" not in shown  # "Opened a case", not the code
    assert "登录" in shown and "signin.success" not in shown


def test_details_name_people_not_their_ids(desk: Desk) -> None:
    wang = desk.user_id("wang")

    async def add() -> None:
        async with desk.services.db.write() as s:
            await audit.record(
                s, actor_user_id=desk.user_id("zhou"), action="team.add", detail=f"user={wang}"
            )

    run(desk.client, add)
    page = desk.get("zhou", "/workspace/audit?action=team.add").text
    details = re.findall(r'<code class="audit-detail" translate="no">([^<]*)</code>', page)
    assert details == ["user=wang"], details


def test_filters_by_person_case_action_and_date(desk: Desk) -> None:
    case_id, number = _world(desk)
    wang = desk.user_id("wang")
    everything = _entries(desk.get("zhou", "/workspace/audit").text)
    assert len(everything) >= 6

    by_person = desk.get("zhou", f"/workspace/audit?person={wang}").text
    ids = _entries(by_person)
    assert ids and len(ids) < len(everything)
    for entry_id in ids:
        assert (
            run(desk.client, lambda i=entry_id: _action_of(desk.services, i)).actor_user_id == wang
        )
    assert f'<option value="{wang}" selected>' in by_person

    by_case = _entries(desk.get("zhou", f"/workspace/audit?case={number}").text)
    assert by_case
    for entry_id in by_case:
        assert run(desk.client, lambda i=entry_id: _action_of(desk.services, i)).case_id == case_id

    by_action = _entries(desk.get("zhou", "/workspace/audit?action=case.view").text)
    assert len(by_action) == 2
    for entry_id in by_action:
        assert (
            run(desk.client, lambda i=entry_id: _action_of(desk.services, i)).action == "case.view"
        )

    today = dt.datetime.now(dt.UTC).date()
    yesterday = (today - dt.timedelta(days=1)).isoformat()
    assert _entries(desk.get("zhou", f"/workspace/audit?to={yesterday}").text) == []
    assert len(_entries(desk.get("zhou", f"/workspace/audit?from={today.isoformat()}").text)) >= 6
    # combined, and malformed values are ignored rather than refused
    both = desk.get("zhou", f"/workspace/audit?person={wang}&action=case.view&case=<x>&from=nope")
    assert both.status_code == 200 and len(_entries(both.text)) == 2


def test_csv_export_is_audited_translated_and_injection_safe(desk: Desk) -> None:
    case_id, number = _world(desk)

    async def hostile() -> None:
        async with desk.services.db.write() as s:
            await audit.record(
                s,
                actor_user_id=desk.user_id("wang"),
                action="file.download",
                case_id=case_id,
                detail='=HYPERLINK("http://evil.example","x")',
            )

    run(desk.client, hostile)

    async def exports() -> int:
        async with desk.services.db.read() as s:
            q = (
                select(func.count())
                .select_from(AuditEntry)
                .where(AuditEntry.action == "audit.export")
            )
            return int((await s.execute(q)).scalar_one())

    assert run(desk.client, exports) == 0
    desk.client.headers["accept-language"] = "zh-CN"
    r = desk.get("zhou", f"/workspace/audit/export?case={number}")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/csv")
    assert r.headers["content-disposition"].startswith("attachment;")
    assert r.headers["cache-control"] == "no-store"
    assert run(desk.client, exports) == 1  # the export is itself in the log
    assert r.content.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert rows[0][:4] == ["条目", "时间（UTC）", "操作人", "操作"]
    body = rows[1:]
    assert body and all(row[5] == number for row in body)
    hostile_row = next(row for row in body if row[4] == "file.download")
    assert hostile_row[3] == "下载文件"
    assert hostile_row[6].startswith("'=")  # a spreadsheet shows it, never runs it
    for row in body:
        for cell in row:
            assert not cell.startswith(("=", "+", "-", "@")), row


def test_safe_cells_cover_every_formula_start() -> None:
    rows = [
        audit_log.AuditRow(
            id=1,
            at=dt.datetime(2026, 12, 3, 8, 0, tzinfo=dt.UTC),
            actor=start + "cmd",
            action="signin.success",
            case_number="",
            detail=start + "1+1",
        )
        for start in ("=", "+", "-", "@", "\t", "\r")
    ]
    data = audit_log.to_csv(rows, lambda m: m).decode("utf-8-sig")
    for row in list(csv.reader(io.StringIO(data)))[1:]:
        assert row[2].startswith("'") and row[6].startswith("'"), row
        assert row[3] == "Signed in"
