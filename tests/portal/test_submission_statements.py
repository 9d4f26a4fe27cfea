"""A lean submission (issue 17, item 4): what one report costs the database.

Counted with a SQLAlchemy ``before_cursor_execute`` listener on the app's real engines (the
write engine and, on SQLite, the read engine), over the real HTTP app:

* the write transaction of a one-case report runs at most 8 statements, none of them a read;
* read-mostly data (categories, the staff who receive the keys, the calendar) is served from
  memory: a submission with warm caches reads none of those tables;
* a change to them is seen by the very next request (invalidated on commit), so a cache can
  never hand a new case's key to a disabled account or withhold it from a new officer;
* expired nonces are forgotten by the timer, not by submissions.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import TestClient
from sqlalchemy import event, func, select, update

import portal.reporter.submission as reporter_submission
from investigator.domain.staff import add_user
from portal.kernel import clock, readmostly
from portal.kernel.db.models import Category, KeyWrap, SubmissionNonce, User
from portal.kernel.services import Services
from tests.conftest import READER_PASSWORD
from tests.portal.test_reporter_journeys import (
    form_tokens,
    receipt_of,
    report_fields,
    reporter,  # noqa: F401 - fixture
    run_db,
    settings,  # noqa: F401 - fixture
    submit,
)

MAX_WRITE_STATEMENTS = 8
TRANSACTION_CONTROL = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE")
READ_MOSTLY_TABLES = ("categories", "users", "calendar_days")


class Statements:
    """Statements sent while a block runs, grouped by the transaction that sent them."""

    def __init__(self) -> None:
        self.transactions: list[list[str]] = []
        self.current: dict[int, list[str]] = {}

    @property
    def all(self) -> list[str]:
        return [s for tx in self.transactions for s in tx]

    @property
    def submission(self) -> list[str]:
        """The write transaction that inserted the case, transaction control left out."""
        [tx] = [tx for tx in self.transactions if any("INSERT INTO cases " in s for s in tx)]
        return [s for s in tx if not s.lstrip().upper().startswith(TRANSACTION_CONTROL)]

    def reads_of(self, table: str) -> list[str]:
        return [
            s for s in self.all if s.lstrip().upper().startswith("SELECT") and f"FROM {table}" in s
        ]


@contextlib.contextmanager
def counting(services: Services) -> Iterator[Statements]:
    """Every statement the app's engines send while the block runs (SQLAlchemy events on the
    real engines: the write engine and, on SQLite, the read engine)."""
    seen = Statements()

    def on_statement(conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.current.setdefault(id(conn), []).append(statement)

    def on_end(conn: Any) -> None:
        seen.transactions.append(seen.current.pop(id(conn), []))

    engines = {
        id(e.sync_engine): e.sync_engine for e in (services.db.engine, services.db.read_engine)
    }
    hooks = [
        (engine, name, fn)
        for engine in engines.values()
        for name, fn in (
            ("before_cursor_execute", on_statement),
            ("commit", on_end),
            ("rollback", on_end),
        )
    ]
    for engine, name, fn in hooks:
        event.listen(engine, name, fn)
    try:
        yield seen
    finally:
        for engine, name, fn in hooks:
            event.remove(engine, name, fn)
        seen.transactions += seen.current.values()


def _services(client: TestClient[Litestar]) -> Services:
    services: Services = client.app.state["services"]
    return services


@pytest.mark.parametrize("caches", ["warm", "cold"])
def test_a_report_costs_at_most_8_statements_in_its_write_transaction(
    reporter: TestClient[Litestar],  # noqa: F811
    caches: str,
) -> None:
    services = _services(reporter)
    receipt_of(submit(reporter, report_fields()))  # warms the caches
    tokens = form_tokens(reporter)
    if caches == "cold":  # as after a change, or once their time is up: read before, not in it
        readmostly.invalidate_all()
    with counting(services) as seen:
        page = submit(reporter, report_fields(), tokens=tokens)
    receipt_of(page)
    work = seen.submission
    assert 0 < len(work) <= MAX_WRITE_STATEMENTS, work
    assert not [s for s in work if s.lstrip().upper().startswith("SELECT")], work
    assert not [s for s in seen.all if "UPDATE submission_nonces" in s], "nonces swept"
    if caches == "warm":
        for table in READ_MOSTLY_TABLES:
            assert seen.reads_of(table) == [], table


def test_changes_to_read_mostly_data_are_seen_by_the_next_request(
    reporter: TestClient[Litestar],  # noqa: F811
) -> None:
    services = _services(reporter)
    receipt_of(submit(reporter, report_fields()))  # caches warm

    async def new_category(_s: Any) -> None:
        async with services.db.write() as s:
            s.add(
                Category(
                    code="cache-probe",
                    name_zh_cn="缓存探针",
                    name_zh_tw="快取探針",
                    name_en="Cache probe",
                    in_scope=True,
                    active=True,
                    position=999,
                )
            )

    run_db(reporter, new_category)
    assert "Cache probe" in reporter.get("/report/new").text
    receipt_of(submit(reporter, report_fields(category="cache-probe")))

    # a second intake officer gets the key of the very next report; a disabled one does not
    async def second_officer(_s: Any) -> None:
        await add_user(
            services.db,
            services.argon2,
            pepper=services.keyring.password_pepper,
            username="second-intake",
            display_name="second-intake",
            roles="intake_officer",
            password=READER_PASSWORD,
        )

    async def user_id(name: str) -> str:
        async with services.db.read() as s:
            return str((await s.execute(select(User.id).where(User.username == name))).scalar_one())

    async def wraps_for(uid: str) -> int:
        async with services.db.read() as s:
            return int(
                (
                    await s.execute(
                        select(func.count()).select_from(KeyWrap).where(KeyWrap.user_id == uid)
                    )
                ).scalar_one()
            )

    run_db(reporter, second_officer)
    second = run_db(reporter, lambda _s: user_id("second-intake"))
    receipt_of(submit(reporter, report_fields()))
    assert run_db(reporter, lambda _s: wraps_for(second)) == 1

    async def disable(_s: Any) -> None:
        async with services.db.write() as s:
            await s.execute(update(User).where(User.id == second).values(disabled=True))

    run_db(reporter, disable)
    receipt_of(submit(reporter, report_fields()))
    assert run_db(reporter, lambda _s: wraps_for(second)) == 1, "a disabled account got a key"


async def test_the_nonce_timer_forgets_expired_nonces(services: Services) -> None:
    """Submissions no longer sweep nonces (item 4): the app's timer does, every minute."""
    from tests.portal.test_cases import _submit

    start = dt.datetime(2026, 3, 2, 9, 41, 27, tzinfo=dt.UTC)
    clock.set_clock(lambda: start)
    try:
        await _submit(services, "token-timer-abcdefghijklm")
        clock.set_clock(lambda: start + dt.timedelta(minutes=17))
        await _submit(services, "token-timer-nopqrstuvwxyz")
        async with services.db.read() as s:
            kept = list((await s.execute(select(SubmissionNonce))).scalars())
        assert all(r.sealed_receipt is not None for r in kept), "a submission swept nonces"
        timer = asyncio.ensure_future(
            reporter_submission.sweep_nonces_forever(services, interval_s=0.01)
        )
        try:
            for _ in range(200):
                await asyncio.sleep(0.02)
                async with services.db.read() as s:
                    rows = list((await s.execute(select(SubmissionNonce))).scalars())
                if any(r.sealed_receipt is None for r in rows):
                    break
        finally:
            timer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await timer
        forgotten = [r for r in rows if r.sealed_receipt is None]
        assert len(rows) == 2 and len(forgotten) == 1
        assert forgotten[0].expires_at.year == 1970
    finally:
        clock.set_clock(None)
