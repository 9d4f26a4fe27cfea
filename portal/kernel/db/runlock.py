"""One run at a time: the lock taken by `portal notify run`, `portal retention run` and every
migration (`portal migrate`, `portal init`).

* PostgreSQL: a session-level advisory lock on a dedicated connection (autocommit, no open
  transaction) held for the whole run; the server releases it when that connection ends, so
  a killed run never leaves the lock behind.
* SQLite: `fcntl.flock` on a lock file beside the database file (the data directory by
  default), mode 0600; the kernel releases it when the process ends. The file is never
  deleted (deleting a lock file lets two runs lock two different files).

`hold(url, name, wait=False)` raises `LockBusy` at once when another run holds the lock (the
jobs: a second run has nothing to add); with `wait=True` it calls `on_wait` once and blocks
until the holder is done (migrations: the second one then finds nothing to do).
"""

from __future__ import annotations

import asyncio
import fcntl
import hashlib
import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine
from sqlalchemy.pool import NullPool

from portal.kernel.db.engine import CONNECT_TIMEOUT_S

LOCK_NAMES = ("migrate", "notify", "retention")


class LockBusy(Exception):
    """Another run holds the lock `name`."""

    def __init__(self, name: str) -> None:
        super().__init__(f"another {name} run holds the lock")
        self.name = name


def advisory_key(name: str) -> int:
    """A stable signed 64-bit key per lock name (PostgreSQL advisory locks take a bigint)."""
    digest = hashlib.sha256(f"whistle-portal:{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def lock_file_path(url: str, name: str) -> Path:
    """SQLite: `.portal-NAME.lock` in the database file's directory."""
    path = url.split("///", 1)[1] if "///" in url else ""
    if not path or path.startswith(":memory:"):
        raise ValueError("an in-memory SQLite database has no place for a lock file")
    return Path(path).expanduser().resolve().parent / f".portal-{name}.lock"


def _check(name: str) -> None:
    if name not in LOCK_NAMES:
        raise ValueError(f"unknown lock {name!r}")


@asynccontextmanager
async def hold(
    url: str, name: str, *, wait: bool = False, on_wait: Callable[[], None] | None = None
) -> AsyncIterator[None]:
    """Hold the lock `name` for the database at `url` for the duration of the block."""
    _check(name)
    if url.startswith("sqlite"):
        async with _hold_file(lock_file_path(url, name), name, wait, on_wait):
            yield
    else:
        async with _hold_advisory(url, name, wait, on_wait):
            yield


@asynccontextmanager
async def _hold_file(
    path: Path, name: str, wait: bool, on_wait: Callable[[], None] | None
) -> AsyncIterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if not wait:
                raise LockBusy(name) from None
            if on_wait is not None:
                on_wait()
            await asyncio.to_thread(fcntl.flock, fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


@asynccontextmanager
async def _hold_advisory(
    url: str, name: str, wait: bool, on_wait: Callable[[], None] | None
) -> AsyncIterator[None]:
    key = advisory_key(name)
    engine = create_async_engine(
        url, poolclass=NullPool, connect_args={"timeout": CONNECT_TIMEOUT_S}
    )
    try:
        async with engine.connect() as raw:
            conn: AsyncConnection = await raw.execution_options(isolation_level="AUTOCOMMIT")
            got = (await conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": key})).scalar()
            if not got:
                if not wait:
                    raise LockBusy(name)
                if on_wait is not None:
                    on_wait()
                await conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": key})
            yield  # closing the connection (NullPool) releases the lock
    finally:
        await engine.dispose()
