"""Engines and sessions: SQLite (embedded default, with the pragmas) or PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

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


class Database:
    """Two session factories over one database: `write()` and `read()`.

    On SQLite they use two engines (IMMEDIATE for writes, deferred for reads, both WAL);
    on PostgreSQL one engine serves both.
    """

    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        if self.is_sqlite:
            self.engine = create_async_engine(url, echo=echo)
            _sqlite_setup(self.engine, immediate=True)
            self.read_engine = create_async_engine(url, echo=echo)
            _sqlite_setup(self.read_engine, immediate=False)
        else:
            self.engine = create_async_engine(
                url, echo=echo, pool_size=10, max_overflow=10, pool_pre_ping=True
            )
            self.read_engine = self.engine
        # async work that must happen inside every write transaction just before it commits
        # (e.g. deadlines following stage changes); registered by portal.services
        self.pre_commit_hooks: list[Callable[[AsyncSession], Awaitable[None]]] = []
        self._write = async_sessionmaker(self.engine, expire_on_commit=False)
        self._read = async_sessionmaker(self.read_engine, expire_on_commit=False)

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncSession]:
        """A transaction that commits on success and rolls back on any exception."""
        async with self._write() as session, session.begin():
            yield session
            for hook in self.pre_commit_hooks:
                await hook(session)

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        async with self._read() as session, session.begin():
            yield session

    async def dispose(self) -> None:
        await self.engine.dispose()
        if self.read_engine is not self.engine:
            await self.read_engine.dispose()
