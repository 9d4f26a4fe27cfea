"""Read-mostly data kept in memory: read by every submission, changed by an administrator.

A ``ReadMostly`` value (the category list, the staff who can receive a report's keys, the
calendar overrides) is loaded once and served from memory until a write transaction in this
process that touched one of its tables commits; such a commit invalidates it at once
(SQLAlchemy session events: the ORM's inserts, updates and deletes, and bulk ``update()`` /
``delete()`` statements on those models). Changes made elsewhere (the ``portal`` command line,
another instance) are seen after at most ``ttl_s`` seconds. A load that raced with a commit
is not kept (a generation number), so a stale value is never cached after an invalidation.

A caller that only shows the value (``stale_ok=True``: the landing page, the report form)
is served a value that has only aged past ``ttl_s`` (not invalidated) for up to ``stale_s``
more seconds while one reload runs in the background, so a page never waits for a time-based
reload: under a burst of submissions that wait was the landing page's worst latency (issue
17). After ``ttl_s + stale_s`` (the database down, say) it loads the value itself again, and
meets the error. Callers that decide with the value (who receives a report's keys) never take
an aged one.

Callers that refuse something because of a cached value (no reader, no category) reload it
first (``fresh=True``): a cached value may only ever make a request cheaper, never refuse it.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

from sqlalchemy import event
from sqlalchemy.orm import ORMExecuteState, Session

T = TypeVar("T")

#: how long a value may lag a change made by another process (CLI, another instance)
DEFAULT_TTL_S = 5.0
#: how much longer an aged value is served while it is reloaded in the background
DEFAULT_STALE_S = 30.0

log = logging.getLogger("portal.readmostly")

_DIRTY = "readmostly_tables"
_registry: list[ReadMostly[Any]] = []
_warmers: list[Callable[[Any], Awaitable[None]]] = []


class _Entry(Generic[T]):
    __slots__ = ("loaded_at", "value")

    def __init__(self, value: T, loaded_at: float) -> None:
        self.value, self.loaded_at = value, loaded_at


class ReadMostly(Generic[T]):
    """One cached value per database (``owner``: the ``Database`` it was read from), read from
    the tables named in ``tables``."""

    def __init__(
        self,
        name: str,
        tables: tuple[str, ...],
        ttl_s: float = DEFAULT_TTL_S,
        stale_s: float = DEFAULT_STALE_S,
    ) -> None:
        self.name = name
        self.tables = frozenset(tables)
        self.ttl_s = ttl_s
        self.stale_s = stale_s
        self._entries: weakref.WeakKeyDictionary[object, _Entry[T]] = weakref.WeakKeyDictionary()
        self._generation = 0
        # the background reloads running, by owner (one at a time per owner)
        self._reloading: dict[int, asyncio.Task[T]] = {}
        _registry.append(self)

    def invalidate(self) -> None:
        self._generation += 1
        self._entries.clear()

    def is_fresh(self, owner: object) -> bool:
        entry = self._entries.get(owner)
        return entry is not None and time.monotonic() - entry.loaded_at < self.ttl_s

    async def get(
        self,
        owner: object,
        load: Callable[[], Awaitable[T]],
        *,
        fresh: bool = False,
        stale_ok: bool = False,
    ) -> T:
        """The cached value, or ``load()``'s (kept unless a commit invalidated it meanwhile);
        with ``stale_ok``, an aged one while it is reloaded in the background (see the
        module's text)."""
        now = time.monotonic()
        entry = self._entries.get(owner)
        if not fresh and entry is not None:
            age = now - entry.loaded_at
            if age < self.ttl_s:
                return entry.value
            if stale_ok and age < self.ttl_s + self.stale_s:
                self._reload_in_background(owner, load)
                return entry.value
        return await self._load(owner, load)

    async def _load(self, owner: object, load: Callable[[], Awaitable[T]]) -> T:
        started = time.monotonic()
        generation = self._generation
        value = await load()
        if generation == self._generation:
            self._entries[owner] = _Entry(value, started)
        return value

    def _reload_in_background(self, owner: object, load: Callable[[], Awaitable[T]]) -> None:
        key = id(owner)
        if key in self._reloading:
            return
        task = asyncio.get_running_loop().create_task(self._load(owner, load))
        self._reloading[key] = task

        def done(t: asyncio.Task[T]) -> None:
            self._reloading.pop(key, None)
            if not t.cancelled() and t.exception() is not None:  # served aged until it works
                log.warning(
                    "background reload failed",
                    extra={"cache": self.name, "error": type(t.exception()).__name__},
                )

        task.add_done_callback(done)


def register_warmer(warmer: Callable[[Any], Awaitable[None]]) -> None:
    """``warmer(db)`` reloads a value that is read inside write transactions, if stale, so a
    write transaction never has to (``warm``)."""
    _warmers.append(warmer)


async def warm(db: Any) -> None:
    """Reload, outside any write transaction, the stale values the registered warmers keep
    (a submission calls it before its write transaction)."""
    for warmer in _warmers:
        await warmer(db)


def invalidate_tables(tables: set[str]) -> None:
    for cache in _registry:
        if cache.tables & tables:
            cache.invalidate()


def invalidate_all() -> None:
    """Forget every cached value (tests that write the database behind the ORM's back)."""
    for cache in _registry:
        cache.invalidate()


def _note(session: Session, tables: set[str]) -> None:
    watched = {t for t in tables if any(t in c.tables for c in _registry)}
    if watched:
        session.info.setdefault(_DIRTY, set()).update(watched)


@event.listens_for(Session, "after_flush")
def _after_flush(session: Session, _context: Any) -> None:
    tables: set[str] = set()
    for obj in (*session.new, *session.dirty, *session.deleted):
        table = getattr(obj, "__tablename__", None)
        if table:
            tables.add(table)
    _note(session, tables)


@event.listens_for(Session, "do_orm_execute")
def _on_execute(state: ORMExecuteState) -> None:
    if state.is_update or state.is_delete or state.is_insert:
        mapper = state.bind_mapper
        table = getattr(mapper, "local_table", None) if mapper is not None else None
        if table is not None:
            _note(state.session, {table.name})


@event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    tables = session.info.pop(_DIRTY, None)
    if tables:
        invalidate_tables(tables)


def touched(session: Session, table: str) -> bool:
    """Has this session changed ``table`` in its transaction (flushed or pending)? Its own
    reads then bypass the cache: a value it sees may not be committed yet."""
    if table in session.info.get(_DIRTY, ()):
        return True
    return any(
        getattr(obj, "__tablename__", None) == table
        for obj in (*session.new, *session.dirty, *session.deleted)
    )
