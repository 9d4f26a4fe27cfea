"""R9: what a reporter does is dated to the day, never to the time of day.

docs/security.md section 8: "Metadata dates that come from a reporter (receipt of a report,
messages, files, identity) are stored to the day". A real-name report with an evidence file,
then a message and another file from the follow-up page, all over HTTP and with no staff
action in between; then every row of every table that names the reporter's case or receipt
(``case_id``, ``cases.id``, ``receipt_id``, ``receipts.id``) is read back and:

* each of its temporal columns in the reporter's own tables (cases, receipts, messages,
  files, identities, case_events) is a ``Date`` column, holding the day of the submission;
* no temporal value anywhere in those rows (deadlines, audit entries, ...) carries a time of
  day: ``DateTime`` columns are empty or exactly midnight.

``submission_nonces`` is the documented exception (no column links it to a case or receipt);
it is left out here and named in docs/security.md.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from litestar import Litestar
from litestar.testing import TestClient
from sqlalchemy import Date, DateTime, or_, select

from portal.kernel import clock
from portal.kernel.db.models import Base
from portal.kernel.services import Services
from tests.portal.test_reporter_journeys import (
    case_page,
    multipart,
    receipt_of,
    report_fields,
    run_db,
    sign_in,
    submit,
)

REPORTER_TABLES = ("cases", "receipts", "messages", "files", "identities", "case_events")
_REPORTER_DAYS = ("received_on", "created_on", "added_on", "on")


def _linked_rows(client: TestClient[Litestar], case_id: str) -> dict[str, list[dict[str, Any]]]:
    async def go(s: Any) -> dict[str, list[dict[str, Any]]]:
        receipt_ids = {
            r
            for (r,) in await s.execute(
                select(Base.metadata.tables["key_wraps"].c.receipt_id).where(
                    Base.metadata.tables["key_wraps"].c.case_id == case_id
                )
            )
            if r
        }
        assert len(receipt_ids) == 1
        found: dict[str, list[dict[str, Any]]] = {}
        for table in Base.metadata.sorted_tables:
            c = table.c
            links = []
            if "case_id" in c:
                links.append(c.case_id == case_id)
            if "receipt_id" in c:
                links.append(c.receipt_id.in_(receipt_ids))
            if table.name == "cases":
                links.append(c.id == case_id)
            if table.name == "receipts":
                links.append(c.id.in_(receipt_ids))
            if not links:
                continue
            rows = (await s.execute(select(table).where(or_(*links)))).mappings().all()
            if rows:
                found[table.name] = [dict(r) for r in rows]
        return found

    return dict(run_db(client, go))


def test_R9_reporter_originated_rows_are_dated_to_the_day_only(
    reporter: TestClient[Litestar], services: Services, with_categories: None
) -> None:
    fields = report_fields(identity_mode="real_name", id_name="Zhao Liu", id_phone="13900000000")
    files = [("evidence", ("ledger.txt", b"page one of the ledger", "text/plain"))]
    response = submit(reporter, fields, files)
    assert response.status_code == 200, response.text
    code = receipt_of(response)
    assert sign_in(reporter, code).status_code == 303
    _page, csrf, ids = case_page(reporter)
    case_id = ids[0]
    sent = reporter.post(
        "/follow-up/message",
        data={"_csrf_token": csrf, "case_id": case_id, "text": "One more detail."},
        follow_redirects=False,
    )
    assert sent.status_code == 303
    body, hdrs = multipart(
        [
            ("_csrf_token", csrf),
            ("case_id", case_id),
            ("evidence", ("more.txt", b"another page", "text/plain")),
        ]
    )
    added = reporter.post("/follow-up/evidence", content=body, headers=hdrs, follow_redirects=False)
    assert added.status_code == 303, added.text
    today = clock.today()

    rows = _linked_rows(reporter, case_id)
    for name in REPORTER_TABLES:
        assert rows.get(name), f"no {name} row for the reporter's case"
    assert len(rows["messages"]) == 1 and len(rows["files"]) == 2  # the two files

    problems: list[str] = []
    for name, table_rows in rows.items():
        table = Base.metadata.tables[name]
        for column in table.columns:
            temporal = isinstance(column.type, Date | DateTime)
            if not temporal:
                continue
            if name in REPORTER_TABLES and not isinstance(column.type, Date):
                problems.append(f"{name}.{column.name} is {column.type}, not a day")
            for row in table_rows:
                value = row[column.name]
                if value is None:
                    continue
                if isinstance(value, dt.datetime):
                    if value.time() != dt.time(0, 0):
                        problems.append(f"{name}.{column.name} = {value.isoformat()}")
                elif name in REPORTER_TABLES and column.name in _REPORTER_DAYS:
                    assert value == today, (name, column.name, value)  # the day it happened
    assert not problems, "time of day stored for the reporter's actions:\n  " + "\n  ".join(
        problems
    )
