"""The audit chain's anchor file (A5): its head, kept outside the database.

A hash chain proves its own consistency, not its completeness: whoever can write the database
can drop the newest entries or recompute the whole chain from the first entry with other
content. The anchor file ``PORTAL_DATA_DIR/audit-anchor`` is where a database thief cannot
reach: one line per anchoring, ``<UTC time> <entry id> <entry hash>``, opened with
``O_APPEND`` (mode 0600, never rewritten by the portal).

When a head is anchored (cheap: one ``write`` of about 90 bytes, no fsync):

* after every committed write transaction that appended audit entries (a post-commit hook of
  ``Database.write()``, installed by ``portal.kernel.services`` and the command line), so the tail a
  thief could cut unseen is at most the transaction being committed;
* by ``portal audit verify`` after the chain verified, by every ``portal notify run`` tick and
  at the app's start-up, so a head is anchored even when nothing else happens.

Each line is written with a single ``write`` of less than ``PIPE_BUF`` bytes, so two processes
appending at once never interleave their lines. ``read_anchors`` reads the file before the
chain is walked: every anchor then names an entry that was committed. Verification checks
every line (``portal.kernel.audit.verify``): an anchored entry whose hash differs means a
rewrite, an anchored id past the end of the log means its newest entries were removed.

The file grows by one line per audited write transaction; it may be archived (moved away)
at any time: keep its last lines, or keep the whole file where the auditor can reach it.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

__all__ = [
    "ANCHOR_FILE",
    "CONFLICT",
    "HEAD_INFO",
    "AnchorError",
    "anchor_hook",
    "anchor_path",
    "append_anchor",
    "parse_anchor",
    "read_anchors",
]

logger = logging.getLogger("portal.kernel.audit")

ANCHOR_FILE = "audit-anchor"
# session.info key under which ``audit.record`` leaves the newest (id, hash) of a transaction
HEAD_INFO = "audit_head"
_LINE = re.compile(r"^(\S+) ([1-9][0-9]{0,18}) ([0-9a-f]{64})$")
_ID_HASH = re.compile(r"^([1-9][0-9]{0,18}):([0-9a-fA-F]{64})$")
_HASH = re.compile(r"^[0-9a-fA-F]{64}$")
CONFLICT = "two different hashes anchored"  # matches no entry's hash


class AnchorError(ValueError):
    """The anchor file or argument is unreadable."""


def anchor_path(data_dir: Path) -> Path:
    return Path(data_dir) / ANCHOR_FILE


def append_anchor(path: Path, entry_id: int, digest: str) -> None:
    """Append one anchoring (O_APPEND, created 0600, never through a symlink)."""
    at = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    line = f"{at} {int(entry_id)} {digest}\n".encode("ascii")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    try:
        os.write(fd, line)  # one write: appends from several processes never interleave
    finally:
        os.close(fd)


def read_anchors(path: Path) -> dict[int, str]:
    """Every anchored (id -> hash) of the file; AnchorError on a malformed line. An entry
    anchored with two different hashes (the log was changed after its first anchoring, then
    anchored again) maps to ``CONFLICT``, which no entry matches: verification reports it."""
    anchors: dict[int, str] = {}
    with open(path, "rb") as fh:
        for number, raw in enumerate(fh, start=1):
            if not raw.endswith(b"\n"):
                break  # a line cut by a crash mid-write: ignored
            match = _LINE.match(raw.decode("ascii", "replace").rstrip("\n"))
            if match is None:
                raise AnchorError(f"{path}: line {number} is not an anchor line")
            entry_id, digest = int(match[2]), match[3]
            if anchors.setdefault(entry_id, digest) != digest:
                anchors[entry_id] = CONFLICT
    return anchors


def parse_anchor(value: str) -> tuple[dict[int, str], str | None]:
    """``--anchor FILE|ID:HASH|HASH``: (anchors by id, a bare hash to find anywhere)."""
    text = value.strip()
    if (match := _ID_HASH.match(text)) is not None:
        return {int(match[1]): match[2].lower()}, None
    if _HASH.match(text):
        return {}, text.lower()
    path = Path(value)
    if path.is_file():
        return read_anchors(path), None
    raise AnchorError(
        f"--anchor takes an anchor file, ID:HASH or a HASH as printed by `portal audit verify` "
        f"or the audit page; {value!r} is none of them"
    )


def anchor_hook(data_dir: Path) -> Callable[[Mapping[str, Any]], None]:
    """A post-commit hook for ``Database.write()``: anchor the head a transaction appended.
    A failure to write is logged (once per kind) and never undoes the committed work."""
    path = anchor_path(data_dir)
    failed: set[str] = set()

    def hook(info: Mapping[str, Any]) -> None:
        newest = info.get(HEAD_INFO)
        if newest is None:
            return
        try:
            append_anchor(path, newest[0], newest[1])
        except OSError as error:
            kind = type(error).__name__
            if kind not in failed:
                failed.add(kind)
                logger.error("audit anchor not written (%s)", kind)

    return hook
