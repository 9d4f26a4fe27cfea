"""The audit log (A5): append-only and hash-chained.

Every entry carries ``prev_hash`` (the previous entry's ``hash``; 64 zeros for the first) and
``hash = SHA-256(canonical(id, at, actor, action, case_id, detail, prev_hash))``. Ids are
assigned here, consecutively from 1, inside the writer's transaction, so:

* an edited row no longer matches its own hash;
* a deleted row leaves a gap in the ids and breaks the next row's ``prev_hash``;
* swapped or reordered rows break both (the id is part of what is hashed).

Appends are serialised so the chain never forks: SQLite write transactions start with
``BEGIN IMMEDIATE`` (see ``portal.kernel.db.engine``), so only one writer runs at a time; on
PostgreSQL
``record`` takes a transaction-scoped advisory lock before it reads the last entry.

A plain hash chain proves internal consistency. Someone with write access to the database could
rewrite the whole chain from the first edited row, or drop the newest rows; to catch that, the
head is anchored outside the database (``portal.kernel.audit_anchor``: the append-only anchor
file, and the auditor's page showing the head to write down or mail), and ``verify(db,
anchors=...)`` checks every anchored entry: a different hash is a rewrite, an anchored id past
the end of the log is a truncated tail.

What goes in: *who* (a user id), *what* (an action name such as ``case.view``), *which case*
(an id) and plaintext metadata in ``detail`` (``reason=bad_password``, a file id). Never case
content, a reporter's identity, a receipt code, a password or a TOTP code.

No code path updates or deletes audit rows.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from portal.kernel.audit_anchor import HEAD_INFO, anchor_path, append_anchor
from portal.kernel.audit_anchor import logger as anchor_logger
from portal.kernel.db.engine import Database
from portal.kernel.db.models import AuditEntry

GENESIS_HASH = "0" * 64
# Arbitrary constant identifying "the audit chain" among PostgreSQL advisory locks.
_PG_LOCK_KEY = 0x41554449545F4C47  # "AUDIT_LG"
_ACTION = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)*$")
_MAX_ACTION = 60
_MAX_DETAIL = 1000
_VERIFY_BATCH = 1000


class AuditError(ValueError):
    """An entry was refused before it was written (bad action name or over-long detail)."""


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    checked: int
    first_broken_id: int | None
    reason: str
    kind: str = ""  # missing, reordered, edited, rewritten, truncated, truncated_or_rewritten


def _utc(at: dt.datetime) -> dt.datetime:
    # SQLite hands back naive datetimes: every value this module writes is UTC.
    return at.replace(tzinfo=dt.UTC) if at.tzinfo is None else at.astimezone(dt.UTC)


def _canonical_time(at: dt.datetime) -> str:
    return _utc(at).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def entry_hash(
    *,
    id: int,
    at: dt.datetime,
    actor_user_id: str | None,
    action: str,
    case_id: str | None,
    detail: str,
    prev_hash: str,
) -> str:
    """SHA-256 over an unambiguous encoding (a JSON array with a version tag) of the fields."""
    canonical = json.dumps(
        [
            "audit-v1",
            id,
            _canonical_time(at),
            actor_user_id,
            action,
            case_id,
            detail,
            prev_hash,
        ],
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _hash_of(entry: AuditEntry) -> str:
    return entry_hash(
        id=entry.id,
        at=entry.at,
        actor_user_id=entry.actor_user_id,
        action=entry.action,
        case_id=entry.case_id,
        detail=entry.detail,
        prev_hash=entry.prev_hash,
    )


async def _lock_chain(session: AsyncSession) -> None:
    bind = session.get_bind()
    if bind.dialect.name == "postgresql":
        await session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_LOCK_KEY})
    # SQLite: the write transaction began with BEGIN IMMEDIATE and holds the write lock.


async def record(
    session: AsyncSession,
    *,
    actor_user_id: str | None,
    action: str,
    case_id: str | None = None,
    detail: str = "",
) -> AuditEntry:
    """Append one entry inside the caller's (write) transaction; it commits with the caller's
    work or not at all. ``detail`` is plaintext metadata only (see the module docstring)."""
    if len(action) > _MAX_ACTION or not _ACTION.match(action):
        raise AuditError(f"invalid audit action name {action!r}")
    if len(detail) > _MAX_DETAIL:
        raise AuditError("audit detail is limited to 1000 characters")
    await _lock_chain(session)
    last = (
        await session.execute(
            select(AuditEntry.id, AuditEntry.hash).order_by(AuditEntry.id.desc()).limit(1)
        )
    ).first()
    new_id, prev = (1, GENESIS_HASH) if last is None else (int(last[0]) + 1, str(last[1]))
    # Microsecond precision survives both SQLite and PostgreSQL unchanged.
    at = dt.datetime.now(dt.UTC)
    entry = AuditEntry(
        id=new_id,
        at=at,
        actor_user_id=actor_user_id,
        action=action,
        case_id=case_id,
        detail=detail,
        prev_hash=prev,
    )
    entry.hash = _hash_of(entry)
    session.add(entry)
    await session.flush()
    # anchored outside the database once the transaction commits (portal.kernel.audit_anchor)
    session.info[HEAD_INFO] = (entry.id, entry.hash)
    return entry


async def head(db: Database) -> tuple[int, str] | None:
    """(id, hash) of the newest entry, to keep outside the database as an anchor."""
    async with db.read() as s:
        row = (
            await s.execute(
                select(AuditEntry.id, AuditEntry.hash).order_by(AuditEntry.id.desc()).limit(1)
            )
        ).first()
    return None if row is None else (int(row[0]), str(row[1]))


async def verify(
    db: Database,
    *,
    expect_head: tuple[int, str] | None = None,
    anchors: Mapping[int, str] | None = None,
    anchor_hash: str | None = None,
) -> VerifyResult:
    """Walk the whole chain in id order and report the first entry that does not fit.

    ``anchors`` (id -> hash, e.g. ``audit_anchor.read_anchors``) and ``expect_head`` (one
    (id, hash) taken earlier with ``head()``): every anchored entry must still be in the chain
    with the same hash. A different hash means the chain was recomputed (``kind`` "rewritten");
    an anchored id past the end means the newest entries were removed ("truncated").
    ``anchor_hash``: a bare hash that must be some entry's hash.
    """
    wanted: dict[int, str] = dict(anchors or {})
    if expect_head is not None:
        if wanted.get(expect_head[0], expect_head[1]) != expect_head[1]:
            return VerifyResult(
                False, 0, expect_head[0], "two different anchors for one entry", "rewritten"
            )
        wanted[expect_head[0]] = expect_head[1]
    hash_seen = anchor_hash is None
    checked = 0
    prev_id = 0
    prev_hash = GENESIS_HASH
    async with db.read() as s:
        while True:
            batch = list(
                (
                    await s.execute(
                        select(AuditEntry)
                        .where(AuditEntry.id > prev_id)
                        .order_by(AuditEntry.id)
                        .limit(_VERIFY_BATCH)
                    )
                ).scalars()
            )
            if not batch:
                break
            for entry in batch:
                if entry.id != prev_id + 1:
                    return VerifyResult(
                        False,
                        checked,
                        entry.id,
                        f"entries {prev_id + 1} to {entry.id - 1} are missing",
                        "missing",
                    )
                if entry.prev_hash != prev_hash:
                    return VerifyResult(
                        False,
                        checked,
                        entry.id,
                        "does not follow the previous entry (deleted or reordered entries)",
                        "reordered",
                    )
                if entry.hash != _hash_of(entry):
                    return VerifyResult(
                        False,
                        checked,
                        entry.id,
                        "its content does not match its hash (edited)",
                        "edited",
                    )
                anchored = wanted.get(entry.id)
                if anchored is not None and entry.hash != anchored:
                    return VerifyResult(
                        False,
                        checked,
                        entry.id,
                        "differs from its anchored hash: the log was rewritten (recomputed "
                        "from this entry or an earlier one)",
                        "rewritten",
                    )
                if entry.hash == anchor_hash:
                    hash_seen = True
                checked += 1
                prev_id, prev_hash = entry.id, entry.hash
            s.expunge_all()
    beyond = max(wanted, default=0)
    if beyond > prev_id:
        return VerifyResult(
            False,
            checked,
            None,
            f"entry {beyond} was anchored but the log ends at entry {prev_id}: "
            "its newest entries were removed (truncated)",
            "truncated",
        )
    if not hash_seen:
        return VerifyResult(
            False,
            checked,
            None,
            "the anchored hash is in no entry: the newest entries were removed or the log "
            "was rewritten",
            "truncated_or_rewritten",
        )
    return VerifyResult(True, checked, None, "chain intact")


async def anchor_head(db: Database, data_dir: Path) -> tuple[int, str] | None:
    """Anchor the current head now (commands and start-up); returns it (None: empty log)."""
    newest = await head(db)
    if newest is not None:
        try:
            append_anchor(anchor_path(data_dir), *newest)
        except OSError as error:  # never stops a start or a job; said once in the log
            anchor_logger.error("audit anchor not written (%s)", type(error).__name__)
    return newest
