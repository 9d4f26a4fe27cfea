"""Shared fixtures.

* `settings`  - test-mode Settings in a fresh tmp data dir (argon2 profile "test"); the database
                is SQLite in tmp_path, or PostgreSQL when PORTAL_TEST_DATABASE_URL is set
                (e.g. postgresql+asyncpg://postgres@127.0.0.1:5432/test): every test then gets a
                clean schema (all tables dropped, then migrated).
* `services`  - keyring created in settings.keyring_dir, database migrated, build_services().
* `app`       - portal.app.create_app(settings, services).
* `client`    - litestar.testing.TestClient(app, base_url="https://testserver.local"), entered
                (lifespan runs). Cookies persist between requests like a browser's.
* `csrf_token`- a function `csrf_token(client, path="/") -> str`: GETs the page and returns the
                value of its hidden `_csrf_token` field; post it back as form field
                `_csrf_token` (or header `x-csrftoken`):

                    token = csrf_token(client, "/")
                    client.post("/lang", data={"_csrf_token": token, "lang": "en", "next": "/"})

Test-only routes: `app.register(handler)` adds a handler to the real app after creation.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import TestClient

from portal.kernel.settings import Settings

BASE_URL = "https://testserver.local"


def pytest_configure(config: pytest.Config) -> None:
    """A build step before the session: compile the checkout's catalogues whose .po changed
    (the serving code only reads .mo files; see portal.kernel.i18n)."""
    from portal.kernel.i18n import compile_catalogs

    compile_catalogs()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Browser journeys run last: Playwright's sync API keeps an event loop running in the main
    thread until the session ends, and no async test may run after it has started."""
    items.sort(key=lambda item: "browser" in Path(str(item.path)).parts)


_CSRF_FIELD = re.compile(r'name="_csrf_token"\s+value="([^"]+)"')


def _database_url(tmp_path: Path) -> str:
    return os.environ.get("PORTAL_TEST_DATABASE_URL") or (
        f"sqlite+aiosqlite:///{(tmp_path / 'portal.db').as_posix()}"
    )


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    result = Settings(
        mode="test",
        argon2_profile="test",
        data_dir=tmp_path,
        database_url=_database_url(tmp_path),
    )
    result.validate()
    return result


async def _drop_everything(url: str) -> None:
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    from portal.kernel.db.models import Base

    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(Base.metadata.drop_all)
            await conn.execute(text("DROP TABLE IF EXISTS alembic_version"))
    finally:
        await engine.dispose()


@pytest.fixture(scope="session")
def _migrated_sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One migrated SQLite file per test session; each test copies it (fast)."""
    from portal.kernel.db.migrate import upgrade_in_thread

    path = tmp_path_factory.mktemp("db-template") / "portal.db"
    upgrade_in_thread(f"sqlite+aiosqlite:///{path.as_posix()}")
    return path


def _prepare_database(settings: Settings, request: pytest.FixtureRequest) -> None:
    from portal.kernel.db.migrate import upgrade_in_thread

    if settings.is_sqlite:
        template: Path = request.getfixturevalue("_migrated_sqlite_template")
        target = Path(settings.database_url.split("///", 1)[1])
        shutil.copyfile(template, target)
        return
    _run(_drop_everything(settings.database_url))
    upgrade_in_thread(settings.database_url)


def _run(coro: object) -> None:
    """Run a coroutine from a sync fixture, even if an event loop is running."""
    import threading

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        asyncio.run(coro)  # type: ignore[arg-type]
        return
    errors: list[BaseException] = []

    def target() -> None:
        try:
            asyncio.run(coro)  # type: ignore[arg-type]
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if errors:
        raise errors[0]


async def bind_database(settings: Settings, keyring: object) -> None:
    """Record the keyring's fingerprint in the test database, as `portal init` does."""
    from portal.kernel.binding import record_binding
    from portal.kernel.db.engine import Database

    db = Database(settings.database_url)
    try:
        await record_binding(db, keyring, settings.keyring_dir)  # type: ignore[arg-type]
    finally:
        await db.dispose()


@pytest.fixture
def services(settings: Settings, request: pytest.FixtureRequest) -> Iterator[object]:
    from crypto.keyring import create_keyring
    from portal.app.wiring import build_services

    keyring = create_keyring(settings.keyring_dir)
    _prepare_database(settings, request)
    _run(bind_database(settings, keyring))  # what `portal init` does (C7)
    built = build_services(settings)
    yield built
    _run(built.close())


@pytest.fixture
def app(settings: Settings, services: object) -> Litestar:
    from portal.app import create_app

    return create_app(settings, services)  # type: ignore[arg-type]


@pytest.fixture
def client(app: Litestar) -> Iterator[TestClient[Litestar]]:
    with TestClient(app, base_url=BASE_URL) as test_client:
        yield test_client


def get_csrf_token(client: TestClient[Litestar], path: str = "/") -> str:
    """GET `path` and return the hidden CSRF field's value (the CSRF cookie is set too)."""
    response = client.get(path)
    assert response.status_code == 200, f"GET {path} answered {response.status_code}"
    match = _CSRF_FIELD.search(response.text)
    assert match, f"no _csrf_token field on {path}"
    return match.group(1)


@pytest.fixture
def csrf_token() -> Callable[[TestClient[Litestar], str], str]:
    return get_csrf_token


# --- readers: no report is taken that nobody can open (C7) -------------------------------------

READER_PASSWORD = "opal lantern drift meadow 42"


async def appoint_readers(services: object, *, custodian: bool = True) -> list[str]:
    """Create the staff a report needs to be taken at all (issue 13, point 4): an enabled intake
    officer (``reader-intake``) unless one exists, and an identity custodian
    (``reader-custodian``) unless one exists or ``custodian`` is False. Tests that set up their
    own staff before submitting keep exactly their staff: only a missing role is filled.
    Returns the user names created."""
    from sqlalchemy import select

    from investigator.domain.staff import add_user
    from portal.kernel.db.models import User

    svc: Any = services
    async with svc.db.read() as s:
        users = (await s.execute(select(User).where(User.disabled.is_(False)))).scalars()
        roles = {r for u in users for r in u.roles.split(",")}
    wanted = [("reader-intake", "intake_officer")]
    if custodian:
        wanted.append(("reader-custodian", "identity_custodian"))
    made: list[str] = []
    for username, role in wanted:
        if role not in roles:
            await add_user(
                svc.db,
                svc.argon2,
                pepper=svc.keyring.password_pepper,
                username=username,
                display_name=username,
                roles=role,
                password=READER_PASSWORD,
            )
            made.append(username)
    return made


def appoint_readers_via(client: TestClient[Litestar]) -> list[str]:
    """``appoint_readers`` for the app behind a TestClient, on the app's event loop."""
    services = client.app.state["services"]
    made: list[str] = client.blocking_portal.call(lambda: appoint_readers(services))
    return made


@pytest.fixture
def readers(client: TestClient[Litestar]) -> list[str]:
    """An intake officer and an identity custodian exist (created unless already there)."""
    return appoint_readers_via(client)


def appoint_readers_cli(env: dict[str, str]) -> None:
    """``appoint_readers`` for a server run as a subprocess: `portal user add` right after
    `portal init`, so that the reports a test sends there are taken (C7)."""
    import subprocess
    import sys

    for username, role in (
        ("reader-intake", "intake_officer"),
        ("reader-custodian", "identity_custodian"),
    ):
        done = subprocess.run(
            [sys.executable, "-m", "portal.app.cli", "user", "add", username, "--roles", role],
            env=env,
            cwd=Path(__file__).resolve().parent.parent,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, f"user add failed:\n{done.stdout}\n{done.stderr}"
