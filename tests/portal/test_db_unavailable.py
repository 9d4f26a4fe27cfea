"""The database out of reach (O4, issue 8): 503 with Retry-After and the calm "temporarily
unavailable" page, in the reporter portal and the workspace; nothing stored; /healthz says so.

The app starts normally, then its services get a `Database` whose PostgreSQL URL names a
loopback port nothing listens on (connection refused), as if the database had gone away under
the running portal; putting the real one back shows that nothing needs a restart. The real
restart under load is tests/faults/test_postgres_restart.py.
"""

from __future__ import annotations

import logging
import socket
import sqlite3
import time
from collections.abc import Iterator
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import TestClient
from sqlalchemy import exc

from portal.kernel.db.engine import RETRY_AFTER_S, Database, DatabaseUnavailable, is_unavailable
from portal.kernel.settings import Settings
from tests.portal.test_reporter_journeys import (
    ATTEMPTS_RE,
    CSRF_RE,
    count_cases,
    form_tokens,
    report_fields,
    stored_files,
    submit,
)

LEAKS = (
    "Traceback",
    'File "',
    "asyncpg",
    "sqlalchemy",
    "Refused",
    "Errno",
    "postgres",
    "127.0.0.1",
    "DatabaseUnavailable",
)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Outage:
    """Swaps the app's database for an unreachable one, and back."""

    def __init__(self, client: TestClient[Litestar]) -> None:
        self.client = client
        self.services: Any = client.app.state["services"]
        self.real: Database = self.services.db
        self.port = _closed_port()
        self.down = Database(f"postgresql+asyncpg://portal:s3cret-pw@127.0.0.1:{self.port}/portal")
        self.down.pre_commit_hooks = list(self.real.pre_commit_hooks)

    def begin(self) -> None:
        self.services.db = self.down

    def end(self) -> None:
        self.services.db = self.real


@pytest.fixture
def outage(client: TestClient[Litestar]) -> Iterator[Outage]:
    client.headers["accept-language"] = "en"
    result = Outage(client)
    try:
        yield result
    finally:
        result.end()
        client.blocking_portal.call(result.down.dispose)


def _assert_unavailable_page(response: Any, port: int) -> None:
    assert response.status_code == 503, response.status_code
    assert response.headers["retry-after"] == str(RETRY_AFTER_S)
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["cache-control"] == "no-store"
    assert "content-security-policy" in response.headers
    assert 'class="error-page"' in response.text
    for leak in (*LEAKS, str(port)):
        assert leak not in response.text, leak


def test_reporter_pages_answer_503_and_recover_without_restart(
    client: TestClient[Litestar], outage: Outage, readers: list[str]
) -> None:
    outage.begin()
    page = client.get("/report/new")
    _assert_unavailable_page(page, outage.port)
    assert "Temporarily unavailable" in page.text
    assert "was not saved" in page.text
    chinese = client.get("/report/new", headers={"accept-language": "zh-CN"})
    _assert_unavailable_page(chinese, outage.port)
    assert "服务暂时不可用" in chinese.text
    taiwan = client.get("/report/new", headers={"accept-language": "zh-TW"})
    assert "服務暫時無法使用" in taiwan.text
    # pages that need no database keep working
    assert client.get("/").status_code == 200
    assert client.get("/follow-up").status_code == 200
    outage.end()
    assert client.get("/report/new").status_code == 200


def test_a_refused_submission_stores_nothing(
    client: TestClient[Litestar], outage: Outage, settings: Settings
) -> None:
    tokens = form_tokens(client)  # the form was loaded before the outage
    before = stored_files(settings)
    outage.begin()
    files = [
        ("evidence", ("a.bin", b"x" * 50_000, "application/octet-stream")),
        ("evidence", ("b.txt", b"some notes", "text/plain")),
    ]
    answer = submit(client, report_fields(), files, tokens=tokens)
    _assert_unavailable_page(answer, outage.port)
    assert stored_files(settings) == before  # the sealed uploads were removed again
    outage.end()
    assert count_cases(client) == 0
    # trying again with the same form succeeds
    again = submit(client, report_fields(), files, tokens=tokens)
    assert again.status_code == 200
    assert count_cases(client) == 1


def test_a_submission_refused_after_its_files_were_read_stores_nothing(
    client: TestClient[Litestar], outage: Outage, settings: Settings, readers: list[str]
) -> None:
    """The database goes away between the categories check and the check that somebody can
    open the report (the read-mostly staff list has to be read again): the sealed uploads,
    and the readable working copy of a PDF, are removed, whichever step fails."""
    from portal.kernel.readmostly import _Entry
    from portal.reporter.arrival import STAFF
    from portal.reporter.submission import CATEGORIES

    tokens = form_tokens(client)
    before = stored_files(settings)
    outage.begin()
    # the categories are still cached for this database; the staff list has aged: good enough
    # to let the upload begin, not to decide where the report goes
    CATEGORIES._entries[outage.down] = CATEGORIES._entries[outage.real]
    staff = STAFF._entries[outage.real].value
    STAFF._entries[outage.down] = _Entry(staff, time.monotonic() - STAFF.ttl_s - 1)
    files = [
        ("evidence", ("a.bin", b"x" * 50_000, "application/octet-stream")),
        ("evidence", ("c.pdf", b"%PDF-1.4\n" + b"y" * 10_000, "application/pdf")),
    ]
    answer = submit(client, report_fields(), files, tokens=tokens)
    _assert_unavailable_page(answer, outage.port)
    assert stored_files(settings) == before
    outage.end()
    assert count_cases(client) == 0
    assert submit(client, report_fields(), files, tokens=tokens).status_code == 200
    assert count_cases(client) == 1


def test_follow_up_sign_in_answers_503(client: TestClient[Litestar], outage: Outage) -> None:
    page = client.get("/follow-up")
    csrf = CSRF_RE.search(page.text)
    attempts = ATTEMPTS_RE.search(page.text)
    assert csrf and attempts
    outage.begin()
    answer = client.post(
        "/follow-up",
        data={
            "_csrf_token": csrf.group(1),
            "attempts": attempts.group(1),
            "code": "1234 5678 9012 3456 7890 1234 5678",
        },
        follow_redirects=False,
    )
    _assert_unavailable_page(answer, outage.port)


def test_workspace_sign_in_answers_503(client: TestClient[Litestar], outage: Outage) -> None:
    page = client.get("/workspace/")
    assert page.status_code == 200
    csrf = CSRF_RE.search(page.text)
    assert csrf
    outage.begin()
    answer = client.post(
        "/workspace/signin",
        data={"_csrf_token": csrf.group(1), "username": "someone", "password": "a password"},
        follow_redirects=False,
    )
    _assert_unavailable_page(answer, outage.port)
    assert "Temporarily unavailable" in answer.text


def test_json_clients_get_a_one_line_503(client: TestClient[Litestar], outage: Outage) -> None:
    outage.begin()
    answer = client.get("/report/new", headers={"accept": "application/json"})
    assert answer.status_code == 503
    assert answer.headers["retry-after"] == str(RETRY_AFTER_S)
    assert answer.json() == {"error": "service unavailable", "status": 503}


def test_healthz_reports_the_database(client: TestClient[Litestar], outage: Outage) -> None:
    up = client.get("/healthz")
    assert up.status_code == 200 and up.json() == {"status": "ok"}
    outage.begin()
    down = client.get("/healthz")
    assert down.status_code == 503
    assert down.json() == {"status": "unavailable", "database": "unavailable"}
    assert down.headers["retry-after"] == str(RETRY_AFTER_S)
    outage.end()
    assert client.get("/healthz").status_code == 200


def test_the_outage_is_logged_once_without_secrets_or_request_data(
    client: TestClient[Litestar], outage: Outage, caplog: pytest.LogCaptureFixture
) -> None:
    outage.begin()
    with caplog.at_level(logging.INFO):
        for _ in range(3):
            answer = client.get("/report/new", headers={"user-agent": "CANARY-UA-DB"})
            assert answer.status_code == 503
    records = [r for r in caplog.records if r.name == "portal.db"]
    assert len(records) == 1, [r.getMessage() for r in records]
    message = records[0].getMessage()
    assert message.startswith("database unavailable (") and "Error" in message
    assert records[0].exc_info is None
    for secret in ("CANARY-UA-DB", "s3cret-pw", "postgresql", str(outage.port)):
        assert secret not in caplog.text, secret
    assert not [r for r in caplog.records if r.name == "portal.errors"]  # not a 500


# --- the classification -------------------------------------------------------------------


class _PgError(Exception):
    def __init__(self, sqlstate: str) -> None:
        super().__init__("detail")
        self.sqlstate = sqlstate


def _wrapped(orig: BaseException, cls: type[exc.DBAPIError] = exc.DBAPIError) -> exc.DBAPIError:
    error = cls("SELECT secret FROM t", {"p": 1}, orig)
    error.__cause__ = orig
    return error


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (_wrapped(_PgError("57P03")), True),  # cannot connect now (starting / shutting down)
        (_wrapped(_PgError("57P01")), True),  # admin shutdown
        (_wrapped(_PgError("08006")), True),  # connection failure
        (_wrapped(_PgError("53300")), True),  # too many connections
        (_wrapped(sqlite3.OperationalError("database is locked"), exc.OperationalError), True),
        (exc.TimeoutError("QueuePool limit reached"), True),
        (_wrapped(_PgError("23505"), exc.IntegrityError), False),  # unique violation
        (_wrapped(_PgError("42P01"), exc.ProgrammingError), False),  # no such table: a bug
        (_wrapped(sqlite3.OperationalError("no such table: x"), exc.OperationalError), False),
        (OSError("disk full"), False),  # e.g. the file store: not the database
        (RuntimeError("x"), False),
    ],
)
def test_is_unavailable(error: BaseException, expected: bool) -> None:
    assert is_unavailable(error) is expected


def test_a_lost_connection_is_unavailable() -> None:
    error = exc.DBAPIError("SELECT 1", None, Exception("gone"), connection_invalidated=True)
    assert is_unavailable(error)


async def test_other_errors_inside_a_transaction_keep_their_type(services: Any) -> None:
    db: Database = services.db
    with pytest.raises(OSError, match="disk full"):
        async with db.write():
            raise OSError("disk full")
    with pytest.raises(exc.IntegrityError):
        async with db.read():
            raise _wrapped(_PgError("23505"), exc.IntegrityError)
    assert await db.ping()


async def test_an_unreachable_database_raises_database_unavailable() -> None:
    db = Database(f"postgresql+asyncpg://portal@127.0.0.1:{_closed_port()}/portal")
    try:
        with pytest.raises(DatabaseUnavailable):
            async with db.write():
                raise AssertionError("the block must not run without a connection")
        assert not await db.ping()
    finally:
        await db.dispose()


def test_files_of_a_cut_off_commit_wait_for_the_database(
    client: TestClient[Litestar], outage: Outage
) -> None:
    """The settling of a cut-off submission's files asks again until the database answers."""
    from portal.reporter import in_doubt

    outage.begin()
    key = "0" * 40  # no row refers to it: deleted once the database can say so
    pending = client.blocking_portal.start_task_soon(in_doubt.settle, outage.services, [key], 0.01)
    time.sleep(0.5)
    assert not pending.done()  # still waiting: the database does not answer
    outage.end()
    assert pending.result(timeout=40) == 1
