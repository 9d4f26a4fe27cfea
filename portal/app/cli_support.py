"""Shared pieces of the `portal` commands: settings, data folders, the bound keyring, errors."""

from __future__ import annotations

import argparse
import asyncio
import os
from collections.abc import Callable

from crypto.keyring import (
    Keyring,
)
from portal.kernel import binding
from portal.kernel.binding import (
    BindingError,
    missing_message,
    recorded_fingerprint,
)
from portal.kernel.db.engine import Database
from portal.kernel.settings import Settings, SettingsError


class CliError(Exception):
    pass


def load_settings() -> Settings:
    try:
        return Settings.from_env()
    except SettingsError as exc:
        raise CliError(str(exc)) from exc


def ensure_data_dirs(settings: Settings) -> None:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(settings.data_dir, 0o700)
    settings.files_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(settings.files_dir, 0o700)


def waiting(what: str) -> Callable[[], None]:
    def say() -> None:
        print(f"{what}: another instance is migrating the database; waiting for it", flush=True)

    return say


async def refuse_missing_schema(settings: Settings) -> None:
    db = Database(settings.database_url)
    try:
        if await recorded_fingerprint(db) is not None:
            raise BindingError(missing_message(settings.keyring_dir))
    finally:
        await db.dispose()


def database(settings: Settings) -> Database:
    """The database for a command that writes: audit heads it appends are anchored (A5)."""
    from portal.kernel.audit_anchor import anchor_hook

    db = Database(settings.database_url)
    db.post_commit_hooks.append(anchor_hook(settings.data_dir))
    return db


def require_bound_keyring(settings: Settings) -> Keyring:
    """Every command that uses the database and the keyring starts here (C7)."""
    return asyncio.run(binding.bound_keyring(settings))


def database_has_schema(settings: Settings) -> bool:
    """A database with the portal's tables (not a PostgreSQL database created empty, nor an
    absent SQLite file)."""
    from pathlib import Path

    from portal.kernel.db.migrate import current_revision

    if settings.is_sqlite and not Path(settings.database_url.split("///", 1)[1]).exists():
        return False

    async def run() -> bool:
        db = Database(settings.database_url)
        try:
            return await current_revision(db) is not None
        finally:
            await db.dispose()

    return asyncio.run(run())


def progress_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--progress",
        action="store_true",
        help="show progress on stderr even when it is not a terminal",
    )
