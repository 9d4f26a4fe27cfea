"""Alembic, driven from code: `portal migrate` and `portal init` call `upgrade_to_head`."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import text

from portal.db.engine import Database

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    cfg.attributes["database_url"] = url
    return cfg


def upgrade_to_head(url: str) -> None:
    """Apply every migration (sync: call it outside a running event loop or in a thread)."""
    command.upgrade(alembic_config(url), "head")


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
