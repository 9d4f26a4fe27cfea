"""Jobs and migrations run once (issue 14, point 3), with real processes.

On the configured engine (SQLite: flock on a file in the data directory; PostgreSQL when
PORTAL_TEST_DATABASE_URL is set: an advisory lock): a second `portal notify run` or
`portal retention run` while another holds the lock exits 0 with one line and does nothing; a
second migration waits for the first and then finds nothing to do; two `portal init` started
together on a fresh database both succeed and create one administrator.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import select
import stat
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import func
from sqlalchemy import select as sql_select

from investigator.domain import notify
from portal.kernel import clock
from portal.kernel.db import runlock
from portal.kernel.db.engine import Database
from portal.kernel.db.migrate import current_revision, head_revision, upgrade_unlocked
from portal.kernel.db.models import User
from portal.kernel.services import Services
from portal.kernel.settings import Settings
from tests.conftest import _drop_everything
from tests.investigator.test_notify import free_port, staff
from tests.investigator.ws_helpers import submit_case
from tests.portal.test_cli import portal


def cli_env(settings: Settings, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PORTAL_", "DATABASE_URL"))}
    env.update(
        PORTAL_DATA_DIR=str(settings.data_dir),
        PORTAL_MODE="test",
        PORTAL_ARGON2_PROFILE="test",
        DATABASE_URL=settings.database_url,
        **extra,
    )
    return env


def start(env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "portal.app.cli", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def read_line_until(proc: subprocess.Popen[str], needle: str, timeout: float) -> str:
    """Lines of the process's stdout until one contains `needle` (bounded in time)."""
    assert proc.stdout is not None
    seen = ""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], 0.2)
        if not ready:
            continue
        line = proc.stdout.readline()
        if not line:
            break
        seen += line
        if needle in line:
            return seen
    raise AssertionError(f"{needle!r} not printed within {timeout}s; got {seen!r}")


# --- notify: a first run slowed down by its mail server, a second run meanwhile ----------


@dataclass
class SlowInbox:
    """An SMTP server that takes its time over each message, so a run stays inside its lock."""

    delay_s: float = 4.0
    receiving: threading.Event = field(default_factory=threading.Event)
    messages: list[list[str]] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.receiving.set()
        await asyncio.sleep(self.delay_s)
        self.messages.append(list(envelope.rcpt_tos))
        return "250 OK"


def test_a_second_notify_run_exits_0_and_the_mail_goes_once(services: Services) -> None:
    inbox = SlowInbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:

        async def setup() -> None:
            await staff(services, "ina", "intake_officer")
            await submit_case(
                services, token="t-lock", what="Somebody in purchasing took money from a supplier."
            )
            await notify.collect(services, clock.now() - dt.timedelta(hours=12))
            await services.db.dispose()

        asyncio.run(setup())
        env = cli_env(
            services.settings,
            PORTAL_SMTP_HOST="127.0.0.1",
            PORTAL_SMTP_PORT=str(port),
            PORTAL_SMTP_STARTTLS="0",
        )
        first = start(env, "notify", "run")
        try:
            assert inbox.receiving.wait(60), "the first run never reached the mail server"
            second = portal(env, "notify", "run")
            assert second.returncode == 0, second.stderr
            assert second.stdout.strip().splitlines() == [
                "notify: another notify run holds the lock; this one did nothing"
            ]
            out, err = first.communicate(timeout=60)
        finally:
            if first.poll() is None:
                first.kill()
                first.wait(10)
        assert first.returncode == 0, err
        assert "1 staff mail(s)" in out
        assert inbox.messages == [["ina@example.org"]]
        # the lock is free again: a later run works (and has nothing left to send)
        third = portal(env, "notify", "run")
        assert third.returncode == 0, third.stderr
        assert "0 staff mail(s)" in third.stdout
        assert inbox.messages == [["ina@example.org"]]
    finally:
        controller.stop()


# --- retention: the lock held by this (test) process ------------------------------------


async def test_a_second_retention_run_exits_0_saying_another_holds_it(
    services: Services,
) -> None:
    env = cli_env(services.settings)
    async with runlock.hold(services.settings.database_url, "retention"):
        busy = await asyncio.to_thread(portal, env, "retention", "run")
    assert busy.returncode == 0, busy.stderr
    assert busy.stdout.strip().splitlines() == [
        "retention: another retention run holds the lock; this one did nothing"
    ]
    free = await asyncio.to_thread(portal, env, "retention", "run")
    assert free.returncode == 0, free.stderr
    assert "retention: destroyed 0 case(s)" in free.stdout


async def test_the_job_locks_are_independent_and_a_busy_lock_raises(
    services: Services,
) -> None:
    url = services.settings.database_url
    async with runlock.hold(url, "notify"):
        with pytest.raises(runlock.LockBusy):
            async with runlock.hold(url, "notify"):
                pass
        async with runlock.hold(url, "retention"):  # another job's lock is not this one
            pass
    async with runlock.hold(url, "notify"):  # released at the end of the block
        pass
    if services.settings.is_sqlite:
        path = runlock.lock_file_path(url, "notify")
        assert path.parent == services.settings.data_dir.resolve()
        assert stat.S_IMODE(path.stat().st_mode) == 0o600


# --- migrations: the second waits, then finds nothing to do -----------------------------


def _fresh(settings: Settings) -> Settings:
    """An empty database: a new SQLite file in a new data dir, or a dropped PostgreSQL."""
    if settings.is_sqlite:
        data = settings.data_dir / "fresh"
        return settings.with_overrides(
            data_dir=data,
            database_url=f"sqlite+aiosqlite:///{(data / 'portal.db').as_posix()}",
        )
    asyncio.run(_drop_everything(settings.database_url))
    return settings


async def _revision(url: str) -> str | None:
    db = Database(url)
    try:
        return await current_revision(db)
    finally:
        await db.dispose()


async def test_a_second_migration_waits_for_the_first_and_finds_nothing_to_do(
    settings: Settings,
) -> None:
    fresh = await asyncio.to_thread(_fresh, settings)
    fresh.data_dir.mkdir(parents=True, exist_ok=True)
    env = cli_env(fresh)
    async with runlock.hold(fresh.database_url, "migrate"):
        second = start(env, "migrate")
        try:
            said = await asyncio.to_thread(read_line_until, second, "waiting", 60)
            assert "another instance is migrating the database" in said
            await asyncio.sleep(1.0)
            assert second.poll() is None, "the second migration did not wait"
            assert await _revision(fresh.database_url) is None
            first = await asyncio.to_thread(upgrade_unlocked, fresh.database_url)
            assert first.changed and first.after == head_revision()
        except BaseException:
            second.kill()
            raise
    out, err = await asyncio.to_thread(second.communicate, None, 120)
    assert second.returncode == 0, err
    assert f"already at the latest schema ({head_revision()}), nothing to do" in out
    assert "Traceback" not in err


def test_two_instances_initialising_a_fresh_database_together_both_come_up(
    settings: Settings,
) -> None:
    fresh = _fresh(settings)
    env = cli_env(fresh)
    procs = [start(env, "init") for _ in range(2)]
    results = []
    for proc in procs:
        try:
            out, err = proc.communicate(timeout=180)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
        results.append((proc.returncode, out, err))
    for code, out, err in results:
        assert code == 0, err
        assert "Traceback" not in err
    outputs = [out for _, out, _ in results]
    assert sum("One-time password" in out for out in outputs) == 1
    assert sum("first administrator: exists already" in out for out in outputs) == 1
    assert sum("migrated from an empty database" in out for out in outputs) == 1
    assert sum("nothing to do" in out for out in outputs) == 1

    async def users() -> tuple[int, str | None]:
        db = Database(fresh.database_url)
        try:
            async with db.read() as s:
                count = (await s.execute(sql_select(func.count()).select_from(User))).scalar()
            return int(count or 0), await current_revision(db)
        finally:
            await db.dispose()

    count, revision = asyncio.run(users())
    assert (count, revision) == (1, head_revision())
    assert Path(fresh.keyring_dir).is_dir()
