"""Engines and sessions: SQLite (embedded default, with the pragmas) or PostgreSQL.

Database outages (O4): every session from `Database.read()` / `write()` connects first, and
any failure that means "the database cannot be reached right now" - refused or timed-out
connect, a connection the server closed (restart, fail-over), PostgreSQL refusing connections
while it starts or shuts down, pool exhaustion, SQLite's busy timeout - leaves the block as
`DatabaseUnavailable` (the web layer answers 503 with Retry-After). Other database errors
(constraint violations, bugs) keep their own type. PostgreSQL connections are pre-pinged at
checkout, so connections left dead by a restart are replaced without restarting the portal.
The outage and the recovery are each logged once, with exception type names only (never SQL,
parameters or the DSN).
"""

from __future__ import annotations

import logging
import os
import sqlite3
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import event, exc, text
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

logger = logging.getLogger("portal.db")

# asyncpg's connect timeout is 60 s by default: a database host that drops packets would hold
# every request for a minute. Requests fail after this many seconds instead.
CONNECT_TIMEOUT_S = 5.0
# what the 503 answer suggests (Retry-After, seconds)
RETRY_AFTER_S = 10

# SQLSTATE classes that mean "not reachable now": 08 connection exception, 53 insufficient
# resources (too many connections), 57 operator intervention (admin/crash shutdown, cannot
# connect now while starting up or shutting down)
_UNAVAILABLE_SQLSTATE_CLASSES = ("08", "53", "57")


class DatabaseUnavailable(Exception):
    """The database cannot be reached right now; nothing in this transaction was committed,
    unless ``in_doubt``: the connection was lost during COMMIT itself, after every statement
    had run, and whether the database committed is something no client can tell."""

    def __init__(self, cause: BaseException | None = None, *, in_doubt: bool = False) -> None:
        super().__init__("database unavailable")
        self.kind = _chain_names(cause) if cause is not None else ""
        self.in_doubt = in_doubt


@dataclass
class _Progress:
    """How far a transaction got: set once only the COMMIT is left."""

    committing: bool = False


def _chain(error: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and current not in seen and len(seen) < 8:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def _chain_names(error: BaseException) -> str:
    """`DBAPIError <- CannotConnectNowError`: type names only, never messages (SQL, params)."""
    return " <- ".join(type(e).__name__ for e in _chain(error))


def _sqlstate(error: BaseException) -> str:
    value = getattr(error, "sqlstate", None) or getattr(error, "pgcode", None)
    return value if isinstance(value, str) else ""


def is_unavailable(error: BaseException) -> bool:
    """True for errors that mean the database is unreachable or overloaded right now."""
    if isinstance(error, DatabaseUnavailable):
        return True
    if isinstance(error, exc.TimeoutError):  # no pooled connection free within pool_timeout
        return True
    if isinstance(error, exc.DBAPIError):
        if error.connection_invalidated:
            return True
        for link in _chain(error):
            if _sqlstate(link)[:2] in _UNAVAILABLE_SQLSTATE_CLASSES:
                return True
            if isinstance(link, sqlite3.OperationalError) and "locked" in str(link):
                return True  # the busy timeout ran out: overloaded, not broken
            if type(link).__name__ == "ConnectionDoesNotExistError":  # asyncpg: closed mid-query
                return True
    return False


SQLITE_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA foreign_keys=ON",
    "PRAGMA busy_timeout=30000",
    "PRAGMA secure_delete=ON",
    "PRAGMA synchronous=FULL",
)


def _sqlite_setup(engine: AsyncEngine, *, immediate: bool) -> None:
    """Pragmas on every connection; write transactions start with BEGIN IMMEDIATE so two
    writers never deadlock on a lock upgrade (the busy timeout then serialises them)."""

    @event.listens_for(engine.sync_engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves
        cur = dbapi_connection.cursor()
        for pragma in SQLITE_PRAGMAS:
            cur.execute(pragma)
        cur.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def _wal_checkpoint(path: str, attempts: int = 50) -> bool:
    """Checkpoint with TRUNCATE on a connection of its own; True if it stayed busy."""
    conn = sqlite3.connect(path, isolation_level=None, timeout=30.0)
    try:
        conn.execute("PRAGMA secure_delete=ON")
        for _ in range(attempts):
            busy, _log, _done = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            if not busy:
                return False
            time.sleep(0.1)
        return True
    finally:
        conn.close()


def private_sqlite_file(url: str) -> None:
    """Create the SQLite file (mode 0600) before SQLite does: SQLite gives the -wal and -shm
    files the mode of the database file, so all three stay private whatever the umask. A
    missing folder is left for SQLite to report."""
    from sqlalchemy.engine import make_url

    name = make_url(url).database
    if not name or name == ":memory:" or name.startswith("file:"):
        return
    path = os.path.abspath(name)
    if not os.path.isdir(os.path.dirname(path)):
        return
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    try:
        os.fchmod(fd, 0o600)
    finally:
        os.close(fd)


class Database:
    """Two session factories over one database: `write()` and `read()`.

    On SQLite they use two engines (IMMEDIATE for writes, deferred for reads, both WAL);
    on PostgreSQL one engine serves both.
    """

    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        if self.is_sqlite:
            private_sqlite_file(url)
            self.engine = create_async_engine(url, echo=echo, hide_parameters=True)
            _sqlite_setup(self.engine, immediate=True)
            self.read_engine = create_async_engine(url, echo=echo, hide_parameters=True)
            _sqlite_setup(self.read_engine, immediate=False)
        else:
            self.engine = create_async_engine(
                url,
                echo=echo,
                hide_parameters=True,  # no SQL parameters in any error text or log
                pool_size=10,
                max_overflow=10,
                pool_pre_ping=True,  # a connection a restart left dead is replaced at checkout
                connect_args={"timeout": CONNECT_TIMEOUT_S},
            )
            self.read_engine = self.engine
        # async work that must happen inside every write transaction just before it commits
        # (e.g. deadlines following stage changes); registered by portal.kernel.services
        self.pre_commit_hooks: list[Callable[[AsyncSession], Awaitable[None]]] = []
        # quick synchronous work once a write transaction has committed, given the session's
        # ``info`` (e.g. anchoring the audit head it appended); must not raise
        self.post_commit_hooks: list[Callable[[dict[str, Any]], None]] = []
        self._write = async_sessionmaker(self.engine, expire_on_commit=False)
        self._read = async_sessionmaker(self.read_engine, expire_on_commit=False)
        # outage bookkeeping for the operational log: when it began, how many sessions failed
        self._down_since: float | None = None
        self._failures = 0

    async def _connect(self, session: AsyncSession) -> None:
        """PostgreSQL: check out the connection now, so that a refused connect (an OSError that
        asyncpg does not wrap) is told apart from an OSError raised later inside the block, e.g.
        by the file store. Not on SQLite: a file cannot refuse, and checking out a write session
        early would take SQLite's write lock (BEGIN IMMEDIATE) before the block needs it."""
        if self.is_sqlite:
            return
        try:
            await session.connection()
        except (OSError, exc.DBAPIError) as error:  # TimeoutError is an OSError
            raise DatabaseUnavailable(error) from error

    def _note_success(self) -> None:
        if self._down_since is not None:
            logger.warning(
                "database reachable again after %.1f s (%d requests refused meanwhile)",
                time.monotonic() - self._down_since,
                self._failures,
            )
            self._down_since, self._failures = None, 0

    def _note_outage(self, error: BaseException) -> None:
        self._failures += 1
        if self._down_since is None:
            self._down_since = time.monotonic()
            kind = error.kind if isinstance(error, DatabaseUnavailable) else _chain_names(error)
            logger.error("database unavailable (%s)", kind)

    @asynccontextmanager
    async def _outage_guard(self) -> AsyncIterator[_Progress]:
        """An error that means "the database cannot be reached now" leaves as
        ``DatabaseUnavailable`` (noted once per outage; ``in_doubt`` if it came during the
        COMMIT); every other error is left alone."""
        progress = _Progress()
        try:
            yield progress
        except Exception as error:
            if not is_unavailable(error):
                raise
            self._note_outage(error)
            if isinstance(error, DatabaseUnavailable):
                raise
            raise DatabaseUnavailable(error, in_doubt=progress.committing) from error
        else:
            self._note_success()

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncSession]:
        """A transaction that commits on success and rolls back on any exception."""
        async with self._outage_guard() as progress, self._write() as session:
            async with session.begin():
                await self._connect(session)
                yield session
                # the block's statements run now (the hooks see every change of the block), so
                # that a connection lost from here on is known to be lost during the COMMIT
                await session.flush()
                for hook in self.pre_commit_hooks:
                    await hook(session)
                if self.pre_commit_hooks:
                    await session.flush()
                progress.committing = True
            for after in self.post_commit_hooks:
                after(session.info)

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        async with self._outage_guard(), self._read() as session, session.begin():
            await self._connect(session)
            yield session

    async def ping(self) -> bool:
        """Can a session reach the database now? (for /healthz)"""
        try:
            async with self.read() as session:
                await session.execute(text("SELECT 1"))
        except DatabaseUnavailable:
            return False
        return True

    async def checkpoint(self) -> bool:
        """SQLite: copy every page in the WAL into the database file and truncate the WAL to
        zero bytes (``PRAGMA wal_checkpoint(TRUNCATE)``), so that a destruction leaves no
        older copy of the pages it rewrote in the ``-wal`` file (secure_delete has zeroed the
        freed content in the pages themselves). Called after every destruction (C5).

        True when the WAL was emptied; False on PostgreSQL (see docs/security.md, "Destruction
        on disk") or when readers kept it busy for the whole wait (logged; the next checkpoint
        finishes the job)."""
        if not self.is_sqlite or "///" not in self.url:
            return False
        path = self.url.split("///", 1)[1].split("?", 1)[0]
        if not path or path == ":memory:":
            return False
        import anyio.to_thread

        busy = await anyio.to_thread.run_sync(_wal_checkpoint, path)
        if busy:
            logger.warning("WAL checkpoint after a destruction stayed busy; retried later")
        return not busy

    async def dispose(self) -> None:
        await self.engine.dispose()
        if self.read_engine is not self.engine:
            await self.read_engine.dispose()
