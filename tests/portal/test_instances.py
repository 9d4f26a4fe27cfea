# ruff: noqa: F401, F811 - pytest fixtures imported from scaleout_fixtures
"""Two instances behind one address (O2): two uvicorn servers on two loopback ports sharing one
PostgreSQL database, one Redis and one S3 bucket (moto). Whatever one instance starts, the
other continues."""

from __future__ import annotations

import dataclasses
import hashlib
import html
import re
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from sqlalchemy import select

from crypto.receipts import generate_receipt
from portal.kernel.db.models import Case
from portal.kernel.services import Services
from portal.kernel.settings import Settings
from tests.conftest import _run, appoint_readers, bind_database
from tests.portal.scaleout_fixtures import (
    EVIDENCE,
    REDIS_URL,
    free_port,
    moto_endpoint,
    pg_databases,
    redis_prefix,
    s3_bucket,
)
from tests.portal.test_reporter_journeys import multipart, receipt_of, report_fields

pytestmark = [pytest.mark.filterwarnings("ignore::DeprecationWarning"), pytest.mark.slow]

CSRF_RE = re.compile(r'name="_csrf_token"\s+value="([^"]+)"')
TOKEN_RE = re.compile(r'name="submission_token" value="([^"]+)"')
ATTEMPTS_RE = re.compile(r'name="attempts" value="([^"]*)"')
CASE_ID_RE = re.compile(r'name="case_id" value="([^"]+)"')


@dataclass
class Instance:
    url: str
    services: Services
    server: Any
    thread: threading.Thread

    def call(self, fn: Callable[[], Any]) -> Any:
        """Run a coroutine function on this instance's own event loop."""
        import asyncio

        loop = self.server.loop
        return asyncio.run_coroutine_threadsafe(fn(), loop).result(60)


def _start(settings: Settings) -> Instance:
    import asyncio

    import uvicorn

    from portal.app import create_app
    from portal.app.wiring import build_services

    services = build_services(settings)
    app = create_app(settings, services)
    port = free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_config=None, access_log=False, lifespan="on"
    )
    server = uvicorn.Server(config)

    def run() -> None:
        loop = asyncio.new_event_loop()
        server.loop = loop  # type: ignore[attr-defined]
        loop.run_until_complete(server.serve())

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "instance did not start"
        time.sleep(0.05)
    return Instance(f"http://127.0.0.1:{port}", services, server, thread)


@pytest.fixture
def shared(
    tmp_path: Path,
    pg_databases: Callable[[], str],
    s3_bucket: dict[str, Any],
    redis_prefix: str,
) -> Settings:
    from crypto.keyring import create_keyring
    from portal.kernel.db.migrate import upgrade_in_thread

    settings = Settings(
        mode="test",
        argon2_profile="test",
        data_dir=tmp_path,
        database_url=pg_databases(),
        redis_url=REDIS_URL,
        redis_prefix=redis_prefix.removesuffix(":"),
        **s3_bucket,
    )
    settings.validate()
    keyring = create_keyring(settings.keyring_dir)
    upgrade_in_thread(settings.database_url)
    _run(bind_database(settings, keyring))  # what `portal init` does (C7)

    async def appoint() -> None:  # reports are taken only once somebody can open them (C7)
        from portal.app.wiring import build_services

        services = build_services(settings)
        try:
            await appoint_readers(services)
        finally:
            await services.close()

    _run(appoint())
    return settings


@pytest.fixture
def pair(shared: Settings) -> Iterator[tuple[Instance, Instance]]:
    a, b = _start(shared), _start(shared)
    try:
        yield a, b
    finally:
        for inst in (a, b):
            inst.server.should_exit = True
        for inst in (a, b):
            inst.thread.join(30)


def _browser() -> httpx.Client:
    return httpx.Client(headers={"accept-language": "en"}, timeout=60)


def _submit(client: httpx.Client, form_from: str, post_to: str, files: list[Any]) -> str:
    page = client.get(f"{form_from}/report/new")
    csrf, token = CSRF_RE.search(page.text), TOKEN_RE.search(page.text)
    assert csrf and token, page.status_code
    body, headers = multipart(
        [
            ("_csrf_token", csrf.group(1)),
            ("submission_token", token.group(1)),
            *report_fields(category="other"),
            *files,
        ]
    )
    done = client.post(f"{post_to}/report", content=body, headers=headers)
    assert done.status_code == 200, done.text[:300]
    return receipt_of(done)


def _sign_in(client: httpx.Client, base: str, code: str) -> httpx.Response:
    page = client.get(f"{base}/follow-up")
    csrf, attempts = CSRF_RE.search(page.text), ATTEMPTS_RE.search(page.text)
    assert csrf and attempts
    return client.post(
        f"{base}/follow-up",
        data={"_csrf_token": csrf.group(1), "attempts": attempts.group(1), "code": code},
        follow_redirects=False,
    )


def test_a_reporter_session_moves_between_instances(pair: tuple[Instance, Instance]) -> None:
    a, b = pair
    with _browser() as browser:
        # the form comes from A, the submission goes to B (same session, same CSRF secret)
        code = _submit(browser, a.url, b.url, [])
        assert _sign_in(browser, a.url, code).status_code == 303
        page = browser.get(f"{b.url}/follow-up/case", follow_redirects=False)
        assert page.status_code == 200
        csrf = CSRF_RE.search(page.text)
        case_ids = CASE_ID_RE.findall(page.text)
        assert csrf and case_ids
        sent = browser.post(
            f"{a.url}/follow-up/message",
            data={"_csrf_token": csrf.group(1), "case_id": case_ids[0], "text": "From A."},
            follow_redirects=False,
        )
        assert sent.status_code in (302, 303)
        assert "From A." in html.unescape(browser.get(f"{b.url}/follow-up/case").text)
        # signing out on B ends the session on A too
        browser.post(f"{b.url}/follow-up/sign-out", data={"_csrf_token": csrf.group(1)})
        after = browser.get(f"{a.url}/follow-up/case", follow_redirects=False)
        assert after.status_code in (302, 303)


def test_case_numbers_never_collide_under_parallel_submissions(
    pair: tuple[Instance, Instance],
) -> None:
    a, b = pair

    def one(i: int) -> str:
        base = (a, b)[i % 2].url
        with _browser() as browser:
            return _submit(browser, base, base, [])

    with ThreadPoolExecutor(max_workers=12) as pool:
        codes = list(pool.map(one, range(24)))
    assert len(set(codes)) == 24

    async def numbers() -> list[str]:
        async with a.services.db.read() as s:
            return list((await s.execute(select(Case.number))).scalars())

    got = a.call(numbers)
    assert len(got) == 24 and len(set(got)) == 24


def test_a_file_uploaded_through_one_is_readable_through_the_other(
    pair: tuple[Instance, Instance],
) -> None:
    import portal.reporter.followup as reporter_followup
    from portal.case.evidence import read_plaintext
    from portal.kernel.db.models import EvidenceFile

    a, b = pair
    with _browser() as browser:
        code = _submit(browser, a.url, a.url, [("files", ("e.txt", EVIDENCE, "text/plain"))])

    async def read_on_b() -> list[bytes]:
        access = await reporter_followup.sign_in_with_receipt(b.services, code)
        assert access is not None
        async with b.services.db.read() as s:
            keys = await reporter_followup.reporter_case_keys(s, access)
            rows = list(
                (
                    await s.execute(
                        select(EvidenceFile).where(
                            EvidenceFile.case_id.in_(list(keys)), EvidenceFile.kind == "original"
                        )
                    )
                ).scalars()
            )
        out = []
        for r in rows:
            assert await b.services.files.exists(r.storage_key)
            chunks = [
                c
                async for c in read_plaintext(
                    b.services.files, r.case_id, r.id, r.storage_key, keys[r.case_id]
                )
            ]
            out.append(b"".join(chunks))
        return out

    assert b.call(read_on_b) == [EVIDENCE]


def test_throttles_are_shared(shared: Settings, redis_prefix: str) -> None:
    # One receipt sign-in a minute across the whole installation: after A spends the only
    # token, B answers "busy" instead of evaluating a code.
    tight = dataclasses.replace(shared, receipt_global_budget_per_minute=1)
    a, b = _start(tight), _start(tight)
    try:
        with _browser() as browser:
            # a well-formed code nobody holds (a malformed one is refused before any token)
            wrong = generate_receipt()
            first = _sign_in(browser, a.url, wrong)
            assert first.status_code == 400 and "busy" not in first.text.lower()  # evaluated
            busy = _sign_in(browser, b.url, wrong)
            assert busy.status_code == 429
            # staff sign-in failures on A and B count against the same name
            for inst in (a, b, a, b):
                page = browser.get(f"{inst.url}/workspace/")
                csrf = CSRF_RE.search(page.text)
                assert csrf, page.status_code
                browser.post(
                    f"{inst.url}/workspace/signin",
                    data={"_csrf_token": csrf.group(1), "username": "nobody", "password": "x"},
                )
        client = redis.Redis.from_url(REDIS_URL)
        hashed = hashlib.sha256(b"nobody").hexdigest()
        assert int(client.get(f"{redis_prefix}signin:acct:{hashed}") or 0) == 4
        assert client.exists(f"{redis_prefix}receipt-bucket")
    finally:
        for inst in (a, b):
            inst.server.should_exit = True
        for inst in (a, b):
            inst.thread.join(30)
