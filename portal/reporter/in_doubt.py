"""The files of a submission whose COMMIT was cut off.

When the connection to the database is lost during the COMMIT of a submission (the database
stopped or crashed at that moment), nobody can tell whether the report was filed. Deleting its
sealed files then could leave a filed case without its evidence; keeping them could leave
objects no row refers to. So they are kept, and settled once the database answers again: the
ones a `files` row refers to stay, the others are deleted. The reporter, who was told the
report was not saved, sends the form again; the same form token then gives the receipt of the
report that was filed, or files it now.

A process that stops before the database answers leaves the question to the orphan sweep at
the next start-up (`portal.reporter.submission.sweep_orphans`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

import anyio
from sqlalchemy import select

from portal.kernel.db.engine import DatabaseUnavailable
from portal.kernel.db.models import EvidenceFile
from portal.kernel.services import Services

logger = logging.getLogger(__name__)

#: the first wait before the database is asked, and the longest between two tries
FIRST_TRY_S = 0.5
LONGEST_WAIT_S = 5.0

# the settling tasks running (kept referenced until they end)
_settling: set[asyncio.Task[int]] = set()


def settle_later(services: Services, keys: Iterable[str]) -> asyncio.Task[int] | None:
    """Keep the objects ``keys`` until the database tells which of them a filed report
    refers to; delete the others then. Returns the task (for tests), or None if no keys."""
    wanted = sorted(set(keys))
    if not wanted:
        return None
    logger.warning(
        "a submission's commit was cut off: %d stored files kept until the database answers",
        len(wanted),
    )
    task = asyncio.get_running_loop().create_task(settle(services, wanted))
    _settling.add(task)
    task.add_done_callback(_settling.discard)
    task.add_done_callback(_log_failure)
    return task


def _log_failure(task: asyncio.Task[int]) -> None:
    """A settling that failed (the file store refusing a delete) is said in the log, by kind;
    the objects it left are the start-up orphan sweep's."""
    if task.cancelled():
        return
    error = task.exception()
    if error is not None:
        logger.error("cut-off commit not settled (%s)", type(error).__name__)


async def settle(services: Services, keys: list[str], first_wait_s: float = FIRST_TRY_S) -> int:
    """Wait until the database answers, then delete the objects among ``keys`` that no `files`
    row refers to; returns how many were deleted."""
    wait = first_wait_s
    while True:
        await anyio.sleep(wait)
        try:
            async with services.db.read() as s:
                rows = await s.execute(
                    select(EvidenceFile.storage_key).where(EvidenceFile.storage_key.in_(keys))
                )
                referenced = set(rows.scalars())
        except DatabaseUnavailable:
            wait = min(wait * 2, LONGEST_WAIT_S)
            continue
        unreferenced = [k for k in keys if k not in referenced]
        for key in unreferenced:
            await services.files.delete(key)
        logger.warning(
            "cut-off commit settled: %s (%d files kept, %d deleted)",
            "the report was filed" if referenced else "the report was not filed",
            len(referenced),
            len(unreferenced),
        )
        return len(unreferenced)
