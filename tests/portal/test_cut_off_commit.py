"""A submission whose COMMIT is cut off (the database stops or crashes at that very moment):
the reporter gets the "temporarily unavailable" page, and nobody can tell at once whether the
report was filed. Its sealed files are kept until the database answers again; then the ones a
filed report refers to stay and the others are deleted. Sending the form again gives the
receipt of the report that was filed, with its files, or files it now (issue 8, O4).

The cut is made with SQLAlchemy session events on the submission's transaction only: raised
before the COMMIT (the report was not filed) or after it (it was). The error raised is one
the portal reads as "database unreachable" (SQLite's busy timeout running out).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import TestClient
from sqlalchemy import event, exc, select, text
from sqlalchemy.orm import Session

from portal.kernel.db.engine import Database, DatabaseUnavailable
from portal.kernel.db.models import EvidenceFile
from portal.kernel.settings import Settings
from portal.reporter import in_doubt
from tests.portal.test_reporter_journeys import (
    case_page,
    count_cases,
    form_tokens,
    multipart,
    receipt_of,
    report_fields,
    run_db,
    sign_in,
    stored_files,
    submit,
)

IN_DOUBT = "it cannot tell yet whether it was saved"
FILES = [
    ("evidence", ("a.bin", b"x" * 60_000, "application/octet-stream")),
    ("evidence", ("b.txt", b"some notes", "text/plain")),
]


def _lost() -> exc.OperationalError:
    cause = sqlite3.OperationalError("database is locked")
    error = exc.OperationalError("COMMIT", None, cause)
    error.__cause__ = cause  # as SQLAlchemy raises it
    return error


class CutCommit:
    """Cuts the COMMIT of the next transaction that records evidence files, once."""

    def __init__(self, when: str) -> None:
        self.when = when  # "before_commit" (not filed) or "after_commit" (filed)
        self.cut = 0

    def _flushed(self, session: Session, _context: Any) -> None:
        if any(isinstance(o, EvidenceFile) for o in session.new):
            session.info["records_files"] = True

    def _commit(self, session: Session) -> None:
        if session.info.pop("records_files", False) and not self.cut:
            self.cut += 1
            raise _lost()

    def __enter__(self) -> CutCommit:
        event.listen(Session, "after_flush", self._flushed)
        event.listen(Session, self.when, self._commit)
        return self

    def __exit__(self, *_exc: object) -> None:
        event.remove(Session, "after_flush", self._flushed)
        event.remove(Session, self.when, self._commit)


def _settled(timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while in_doubt._settling and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not in_doubt._settling, "the cut-off submission's files were never settled"


def _file_keys(client: TestClient[Litestar]) -> set[str]:
    async def q(s: Any) -> set[str]:
        return set((await s.execute(select(EvidenceFile.storage_key))).scalars())

    return set(run_db(client, q))


def _objects(settings: Settings) -> set[str]:
    return {p.name for p in (settings.files_dir / "objects").glob("*/*") if p.is_file()}


@pytest.fixture
def en(client: TestClient[Litestar]) -> Iterator[TestClient[Litestar]]:
    client.headers["accept-language"] = "en"
    yield client


def test_filed_before_the_cut_keeps_its_files_and_the_retry_shows_its_receipt(
    en: TestClient[Litestar], settings: Settings, readers: list[str]
) -> None:
    client = en
    tokens = form_tokens(client)
    with CutCommit("after_commit") as cut:
        answer = submit(client, report_fields(), FILES, tokens=tokens)
    assert cut.cut == 1
    assert answer.status_code == 503
    assert "Temporarily unavailable" in answer.text
    # the page does not say "not saved": it asks for the same form again
    assert IN_DOUBT in answer.text and "was not saved" not in answer.text
    _settled()
    # the report was filed: its rows and its objects agree
    assert count_cases(client) == 1
    keys = _file_keys(client)
    assert len(keys) == 2
    assert _objects(settings) == keys
    # "try again" with the same form: the receipt of the filed report; nothing doubled
    again = submit(client, report_fields(), FILES, tokens=tokens)
    assert again.status_code == 200
    assert receipt_of(again)
    assert count_cases(client) == 1
    assert _objects(settings) == _file_keys(client) == keys


def test_not_filed_before_the_cut_leaves_nothing_and_the_retry_files_it(
    en: TestClient[Litestar], settings: Settings, readers: list[str]
) -> None:
    client = en
    tokens = form_tokens(client)
    before = stored_files(settings)
    with CutCommit("before_commit") as cut:
        answer = submit(client, report_fields(), FILES, tokens=tokens)
    assert cut.cut == 1
    assert answer.status_code == 503
    assert IN_DOUBT in answer.text
    _settled()
    assert count_cases(client) == 0
    assert stored_files(settings) == before  # the kept files were deleted once settled
    again = submit(client, report_fields(), FILES, tokens=tokens)
    assert again.status_code == 200
    assert count_cases(client) == 1
    assert _objects(settings) == _file_keys(client)
    assert len(_file_keys(client)) == 2


@pytest.mark.parametrize("when", ["before_commit", "after_commit"])
def test_files_added_at_follow_up_by_a_cut_off_commit(
    en: TestClient[Litestar], settings: Settings, readers: list[str], when: str
) -> None:
    client = en
    filed = submit(client, report_fields(), FILES[:1])
    assert filed.status_code == 200
    assert sign_in(client, receipt_of(filed)).status_code == 303
    keys_before = _file_keys(client)
    _page, csrf, case_ids = case_page(client)
    body, hdrs = multipart(
        [
            ("_csrf_token", csrf),
            ("case_id", case_ids[0]),
            ("evidence", ("more.txt", b"another page of notes", "text/plain")),
        ]
    )
    with CutCommit(when) as cut:
        added = client.post(
            "/follow-up/evidence", content=body, headers={**hdrs, "accept-language": "zh-CN"}
        )
    assert cut.cut == 1
    assert added.status_code == 503
    assert "暂时无法确定是否已保存" in added.text
    _settled()
    keys = _file_keys(client)
    assert len(keys) == len(keys_before) + (1 if when == "after_commit" else 0)
    assert _objects(settings) == keys


async def test_a_lost_commit_is_in_doubt_a_lost_statement_is_not(settings: Settings) -> None:
    def cut(_session: Session) -> None:
        raise _lost()

    db = Database(settings.database_url)
    try:
        event.listen(Session, "before_commit", cut)
        try:
            with pytest.raises(DatabaseUnavailable) as during_commit:
                async with db.write() as s:
                    await s.execute(text("SELECT 1"))
        finally:
            event.remove(Session, "before_commit", cut)
        assert during_commit.value.in_doubt
        with pytest.raises(DatabaseUnavailable) as before_commit:
            async with db.write() as s:
                await s.execute(text("SELECT 1"))
                raise _lost()
        assert not before_commit.value.in_doubt
    finally:
        await db.dispose()


def test_a_settling_that_fails_is_logged(
    client: TestClient[Litestar], caplog: pytest.LogCaptureFixture
) -> None:
    """The file store refusing the delete is not swallowed: one ERROR line, by kind."""
    import logging
    from types import SimpleNamespace

    class Refusing:
        async def delete(self, key: str) -> None:
            raise OSError("read-only file system")

    real: Any = client.app.state["services"]
    services: Any = SimpleNamespace(db=real.db, files=Refusing())

    async def go() -> None:
        task = in_doubt.settle_later(services, ["0" * 40])
        assert task is not None
        with pytest.raises(OSError):
            await task

    with caplog.at_level(logging.ERROR, logger="portal.reporter.in_doubt"):
        client.blocking_portal.call(go)
        time.sleep(0.1)  # the done callbacks run on the loop
    assert "cut-off commit not settled (OSError)" in caplog.text
