"""Alembic, driven from code: `portal migrate` and `portal init` call `upgrade_to_head`.

Every upgrade holds the "migrate" run lock (portal.kernel.db.runlock): two instances starting
together on a fresh database migrate one after the other, and the second finds nothing to do.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import text

from portal.kernel.db import runlock
from portal.kernel.db.engine import Database

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    cfg.attributes["database_url"] = url
    return cfg


@dataclass(frozen=True)
class Upgrade:
    before: str | None
    after: str | None

    @property
    def changed(self) -> bool:
        return self.before != self.after

    def line(self) -> str:
        """What `portal migrate` prints."""
        if not self.changed:
            return f"database: already at the latest schema ({self.after}), nothing to do"
        return f"database: migrated from {self.before or 'an empty database'} to {self.after}"


def upgrade_to_head(url: str, *, on_wait: Callable[[], None] | None = None) -> Upgrade:
    """Apply every migration under the migrate lock, waiting for a concurrent migration to
    finish first (sync: call it outside a running event loop or in a thread)."""
    return asyncio.run(upgrade_locked(url, on_wait=on_wait))


async def upgrade_locked(url: str, *, on_wait: Callable[[], None] | None = None) -> Upgrade:
    async with runlock.hold(url, "migrate", wait=True, on_wait=on_wait):
        return await asyncio.to_thread(upgrade_unlocked, url)


def upgrade_unlocked(url: str) -> Upgrade:
    """Only for a caller that holds the migrate lock (runs its own event loop: use a thread)."""
    before = _revision_of(url)
    command.upgrade(alembic_config(url), "head")
    return Upgrade(before=before, after=_revision_of(url))


def _revision_of(url: str) -> str | None:
    async def read() -> str | None:
        db = Database(url)
        try:
            return await current_revision(db)
        finally:
            await db.dispose()

    return asyncio.run(read())


async def current_revision(db: Database) -> str | None:
    async with db.read() as session:
        try:
            row = (await session.execute(text("SELECT version_num FROM alembic_version"))).first()
        except Exception:  # noqa: BLE001 - no table yet means no revision
            return None
        return None if row is None else str(row[0])


def head_revision() -> str:
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(alembic_config("sqlite+aiosqlite://"))
    head = script.get_current_head()
    assert head is not None
    return head


def upgrade_in_thread(url: str) -> None:
    """For callers inside an event loop (tests, start-up)."""
    loop_running = True
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        loop_running = False
    if not loop_running:
        upgrade_to_head(url)
        return
    import threading

    err: list[BaseException] = []

    def run() -> None:
        try:
            upgrade_to_head(url)
        except BaseException as exc:  # noqa: BLE001
            err.append(exc)

    t = threading.Thread(target=run)
    t.start()
    t.join()
    if err:
        raise err[0]
