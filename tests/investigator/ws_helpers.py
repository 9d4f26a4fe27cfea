"""Helpers for the case-screen tests: several signed-in staff on one TestClient, and cases.

``Desk`` signs each staff member in once through the real flow (password, TOTP enrolment) and
keeps each one's cookie jar; ``desk.use(name)`` switches the client to that person, like
switching between browsers. ``desk.post`` is also an audit sweep (A5): a staff POST that
succeeds (200 or 303) without writing an audit entry fails the test that sent it.
"""

from __future__ import annotations

import re
import struct
import zlib
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
from litestar import Litestar
from litestar.testing import TestClient
from sqlalchemy import func, select

import portal.reporter.submission as reporter_submission
from portal.case.evidence import EvidenceSink, StoredFile
from portal.kernel.db.models import AuditEntry
from portal.kernel.services import Services
from portal.reporter.intake import parse_report
from tests.conftest import appoint_readers
from tests.investigator.conftest import Browser, Staff, create_staff, form_token

_CASE_LINK = re.compile(r'href="/workspace/cases/([0-9a-f]{32})"')


def run(client: TestClient[Litestar], fn: Callable[[], Awaitable[Any]]) -> Any:
    return client.blocking_portal.call(fn)


def tiny_png() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    ihdr = struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0)
    text = chunk(b"tEXt", b"Author\x00Reporter Name")
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + text
        + chunk(b"IDAT", zlib.compress(b"\x00\x00"))
        + chunk(b"IEND", b"")
    )


REPORT_TEXT = "The purchasing head takes cash from suppliers every month."


async def submit_case(
    services: Services,
    *,
    real_name: bool = True,
    with_files: bool = True,
    token: str,
    what: str = REPORT_TEXT,
    independent: bool = False,
) -> tuple[str, str]:
    """A report through the reporter's commit path; returns (case_id, receipt code).

    A report is taken only once somebody can open it (C7): the intake officer and identity
    custodian it needs are appointed first when the test has none (``appoint_readers``)."""
    await appoint_readers(services, custodian=real_name)
    fields = {
        "kind": ["report"],
        "identity_mode": ["real_name" if real_name else "anonymous"],
        "category": ["bribery"],
        "relation": ["employee"],
        "what": [what],
        "declaration": ["yes"],
        "subject_name": ["采购部负责人"],
    }
    if real_name:
        fields |= {"id_name": ["举报人甲"], "id_phone": ["13800000000"]}
    if independent:  # the independent channel: an independent reviewer must exist (C7)
        fields["about_centre"] = ["yes"]
    parsed = parse_report(fields, ["bribery"])
    assert parsed.report is not None, parsed.errors
    targets = reporter_submission.new_targets(["report"])
    stored: list[StoredFile] = []
    if with_files:
        for name, ctype, data in (
            ("evidence.png", "image/png", tiny_png()),
            ("ledger.txt", "text/plain", b"secret ledger lines"),
        ):
            sink = await EvidenceSink(
                services.files, targets, name=name, content_type=ctype, suite=services.keyring.suite
            ).open()
            await sink.write(data)
            stored += await sink.close()
    code, _ = await reporter_submission.submit(services, parsed.report, targets, stored, token)
    return targets[0].case_id, code


class Desk:
    """Several staff members signed in on one client, one cookie jar each."""

    def __init__(self, client: TestClient[Litestar], services: Services) -> None:
        self.client = client
        self.services = services
        self.staff: dict[str, Staff] = {}
        self.jars: dict[str, httpx.Cookies] = {}
        self.tokens: dict[str, str] = {}
        self.current: str | None = None
        client.headers["accept-language"] = "en"

    def add(self, name: str, roles: str, department: str | None = None) -> Staff:
        staff = run(
            self.client,
            lambda: create_staff(self.services, name, roles, department=department),
        )
        self.staff[name] = staff
        return staff

    def _park(self) -> None:
        if self.current is not None:
            self.jars[self.current] = httpx.Cookies(self.client.cookies)

    def use(self, name: str) -> TestClient[Litestar]:
        """Switch to ``name``, signing them in (once) with password and TOTP enrolment."""
        if self.current == name:
            return self.client
        self._park()
        self.client.cookies = httpx.Cookies()
        self.current = name
        if name in self.jars:
            self.client.cookies = httpx.Cookies(self.jars[name])
        else:
            response = Browser(self.client).enrol(self.staff[name])
            assert response.status_code == 303, response.text
        if name not in self.tokens:
            home = self.client.get("/workspace/")
            assert home.status_code == 200, home.status_code
            self.tokens[name] = form_token(home.text)
        return self.client

    def anonymous(self) -> TestClient[Litestar]:
        self._park()
        self.current = None
        self.client.cookies = httpx.Cookies()
        return self.client

    def post(self, name: str, path: str, data: dict[str, Any] | None = None) -> httpx.Response:
        client = self.use(name)
        before = self._audited()
        r = client.post(
            path, data={"_csrf_token": self.tokens[name], **(data or {})}, follow_redirects=False
        )
        # A5 sweep: every staff POST that succeeds (a page or a redirect, not a refusal)
        # writes at least one audit entry, whatever route any test drives through a Desk
        if r.status_code in (200, 303):
            assert self._audited() > before, f"POST {path} by {name} succeeded unaudited (A5)"
        return r

    def _audited(self) -> int:
        async def count() -> int:
            async with self.services.db.read() as s:
                total = await s.execute(select(func.count()).select_from(AuditEntry))
                return int(total.scalar_one())

        return int(run(self.client, count))

    def get(self, name: str, path: str) -> httpx.Response:
        return self.use(name).get(path, follow_redirects=False)

    def user_id(self, name: str) -> str:
        return self.staff[name].user_id


def case_ids_on(html: str) -> set[str]:
    return set(_CASE_LINK.findall(html))


def year_schedule(year: int) -> tuple[str, str]:
    """A complete, valid holiday schedule of ``year`` for the calendar form: (holiday ranges,
    make-up working days). 元旦 1-3 Jan, 春节 10-17 Feb, 清明, 劳动节 1-5 May, 端午, 国庆 1-8
    Oct; the make-up days are the first weekend days after 春节 and after 国庆."""
    import datetime as dt

    def weekend_after(day: dt.date) -> dt.date:
        while day.weekday() < 5:
            day += dt.timedelta(days=1)
        return day

    holidays = "\n".join(
        [
            f"{year}-01-01 .. {year}-01-03 元旦",
            f"{year}-02-10 .. {year}-02-17 春节",
            f"{year}-04-05 .. {year}-04-07 清明节",
            f"{year}-05-01 .. {year}-05-05 劳动节",
            f"{year}-06-14 .. {year}-06-16 端午节",
            f"{year}-10-01 .. {year}-10-08 国庆节、中秋节",
        ]
    )
    workdays = "\n".join(
        f"{weekend_after(dt.date(year, m, d)).isoformat()} 调休" for m, d in ((2, 18), (10, 9))
    )
    return holidays, workdays
