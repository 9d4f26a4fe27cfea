"""Shared fixtures for the scale-out tests: a real S3-compatible server (moto in server mode on
a free loopback port), a per-test key prefix on the real Redis, and a private PostgreSQL
database."""

from __future__ import annotations

import html
import os
import secrets
import socket
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from portal.kernel.settings import Settings

REDIS_URL = os.environ.get("PORTAL_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
PG_ADMIN = os.environ.get("PORTAL_TEST_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/postgres")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    pytest.importorskip("moto")
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture
def s3_bucket(moto_endpoint: str) -> Iterator[dict[str, Any]]:
    """A fresh bucket on the moto server; yields the Settings overrides that select it."""
    from portal.kernel.s3store import S3Config, make_client

    name = f"portal-{secrets.token_hex(6)}"
    config = S3Config(bucket=name, endpoint=moto_endpoint, access_key="test", secret_key="test")
    client = make_client(config)
    client.create_bucket(Bucket=name)
    yield {
        "s3_bucket": name,
        "s3_endpoint": moto_endpoint,
        "s3_access_key": "test",
        "s3_secret_key": "test",
        "s3_region": "us-east-1",
    }


def redis_available() -> bool:
    try:
        import redis

        redis.Redis.from_url(REDIS_URL, socket_timeout=1).ping()
    except Exception:
        return False
    return True


@pytest.fixture
def redis_prefix() -> Iterator[str]:
    """A random key prefix on the real Redis (`t-<hex>:`; the installation setting is the part
    before the colon); only its keys are deleted afterwards."""
    if not redis_available():
        pytest.skip("no Redis on 127.0.0.1:6379")
    import redis

    prefix = f"t-{secrets.token_hex(6)}:"
    yield prefix
    client = redis.Redis.from_url(REDIS_URL)
    for key in client.scan_iter(match=f"{prefix.removesuffix(':')}*"):  # sessions too
        client.delete(key)


def pg_available() -> bool:
    import subprocess

    return (
        subprocess.run(
            ["psql", PG_ADMIN, "-c", "select 1"], capture_output=True, timeout=10
        ).returncode
        == 0
    )


@pytest.fixture
def pg_databases() -> Iterator[Callable[[], str]]:
    """A factory of private, empty PostgreSQL databases; all dropped afterwards."""
    import subprocess

    if not pg_available():
        pytest.skip("no PostgreSQL on 127.0.0.1:5432")
    made: list[str] = []
    base = PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")

    def make() -> str:
        name = f"i9_{secrets.token_hex(5)}"
        subprocess.run(
            ["psql", PG_ADMIN, "-c", f"CREATE DATABASE {name}"], check=True, capture_output=True
        )
        made.append(name)
        return f"{base}/{name}"

    try:
        yield make
    finally:
        for name in made:
            subprocess.run(
                ["psql", PG_ADMIN, "-c", f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"],
                capture_output=True,
            )


# --- an installation with one report, and reading it back ---------------------------------------

REPORT_TEXT = "The buyer asked a supplier for a 5% kickback on every order."
MESSAGE_TEXT = "A further detail: the supplier is Acme Trading."
EVIDENCE = b"EVIDENCE-PLAINTEXT-" + b"x" * 300_000


def make_installation(settings: Settings) -> str:
    """Keyring, migrated database, one report with one file through the real app; returns
    the receipt code."""
    from litestar.testing import TestClient

    from crypto.keyring import create_keyring
    from portal.app import create_app
    from portal.app.wiring import build_services
    from portal.kernel.db.migrate import upgrade_in_thread
    from tests.conftest import BASE_URL, _run, bind_database
    from tests.portal.test_reporter_journeys import (
        case_page,
        receipt_of,
        report_fields,
        sign_in,
        submit,
    )

    keyring = create_keyring(settings.keyring_dir)
    upgrade_in_thread(settings.database_url)
    _run(bind_database(settings, keyring))  # what `portal init` does (C7)
    services = build_services(settings)
    with TestClient(create_app(settings, services), base_url=BASE_URL) as client:
        client.headers["accept-language"] = "en"
        page = submit(
            client,
            report_fields(category="other"),
            [("files", ("evidence.txt", EVIDENCE, "text/plain"))],
        )
        assert page.status_code == 200, page.text[:300]
        code = receipt_of(page)
        # a sealed message from the reporter: the follow-up page shows it decrypted
        assert sign_in(client, code).status_code == 303
        _, csrf, ids = case_page(client)
        sent = client.post(
            "/follow-up/message",
            data={"_csrf_token": csrf, "case_id": ids[0], "text": MESSAGE_TEXT},
            follow_redirects=False,
        )
        assert sent.status_code in (302, 303), sent.status_code
        assert MESSAGE_TEXT in html.unescape(client.get("/follow-up/case").text)
        return code


def read_case(settings: Settings, code: str) -> tuple[str, list[bytes]]:
    """Sign in with the receipt code through the real app: the follow-up page's text, and
    every original evidence file decrypted with the keys the code opens."""

    from litestar.testing import TestClient
    from sqlalchemy import select

    import portal.reporter.followup as reporter_followup
    from portal.app import create_app
    from portal.app.wiring import build_services
    from portal.case.evidence import read_plaintext
    from portal.kernel.db.models import EvidenceFile
    from tests.conftest import BASE_URL
    from tests.portal.test_reporter_journeys import sign_in

    services = build_services(settings)
    with TestClient(create_app(settings, services), base_url=BASE_URL) as client:
        client.headers["accept-language"] = "en"
        answer = sign_in(client, code)
        assert answer.status_code == 303, answer.text[:300]
        page = client.get("/follow-up/case")
        assert page.status_code == 200

        async def files() -> list[bytes]:
            access = await reporter_followup.sign_in_with_receipt(services, code)
            assert access is not None
            async with services.db.read() as s:
                keys = await reporter_followup.reporter_case_keys(s, access)
                rows = (
                    await s.execute(
                        select(EvidenceFile).where(
                            EvidenceFile.case_id.in_(list(keys)), EvidenceFile.kind == "original"
                        )
                    )
                ).scalars()
                stored = [(r.case_id, r.id, r.storage_key) for r in rows]
            out = []
            for case_id, file_id, key in stored:
                chunks = [
                    c
                    async for c in read_plaintext(
                        services.files, case_id, file_id, key, keys[case_id]
                    )
                ]
                out.append(b"".join(chunks))
            return out

        return html.unescape(page.text), client.blocking_portal.call(files)
