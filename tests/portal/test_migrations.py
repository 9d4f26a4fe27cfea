"""Migrations: an empty database upgrades to head, and head matches the models, on the
configured engine (SQLite by default, PostgreSQL when PORTAL_TEST_DATABASE_URL is set)."""

from __future__ import annotations

import asyncio

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from portal.kernel.db.migrate import head_revision, upgrade_in_thread
from portal.kernel.db.models import Base
from portal.kernel.settings import Settings
from tests.conftest import _drop_everything


def _inspect(url: str) -> tuple[str | None, list[object], int]:
    async def run() -> tuple[str | None, list[object], int]:
        engine = create_async_engine(url)
        try:
            async with engine.connect() as conn:
                version = (
                    await conn.execute(text("SELECT version_num FROM alembic_version"))
                ).scalar()
                diff = await conn.run_sync(
                    lambda sync: compare_metadata(MigrationContext.configure(sync), Base.metadata)
                )
                categories = (await conn.execute(text("SELECT count(*) FROM categories"))).scalar()
                return version, diff, int(categories or 0)
        finally:
            await engine.dispose()

    return asyncio.run(run())


def test_empty_database_upgrades_to_head_matching_the_models(settings: Settings) -> None:
    asyncio.run(_drop_everything(settings.database_url))
    upgrade_in_thread(settings.database_url)
    version, diff, categories = _inspect(settings.database_url)
    assert version == head_revision()
    assert diff == [], f"models and migrations differ: {diff}"
    assert categories >= 10


def test_upgrade_twice_is_a_no_op(settings: Settings) -> None:
    asyncio.run(_drop_everything(settings.database_url))
    upgrade_in_thread(settings.database_url)
    upgrade_in_thread(settings.database_url)
    version, _diff, categories = _inspect(settings.database_url)
    assert version == head_revision()
    assert categories >= 10
