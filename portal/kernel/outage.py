"""Outages of the portal's helpers other than the database: Redis and the file store.

A request that needs Redis while it is unreachable (refused, timed out, wrong password) or that
writes to a file store whose disk is full leaves as `ServiceUnavailable`; the web layer answers
503 with Retry-After and the translated "temporarily unavailable" page (never 429 or 500).

Each outage is logged once when it begins and once when it ends (like the database outages in
`portal.kernel.db.engine`), with the component and exception type names only: never a key, a URL, an
address or anything a request carried.
"""

from __future__ import annotations

import errno
import logging
import time
from dataclasses import dataclass

__all__ = [
    "DISK_FULL_ERRNOS",
    "RedisUnavailable",
    "ServiceUnavailable",
    "StorageFull",
    "is_disk_full",
    "note_outage",
    "note_success",
    "reset",
]

logger = logging.getLogger("portal.kernel.outage")

# no space left on the device, or the user's quota is used up
DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})


class ServiceUnavailable(Exception):
    """A helper the request needs is unavailable now; nothing of the request was kept."""

    component = "service"

    def __init__(self, cause: BaseException | None = None) -> None:
        super().__init__(f"{self.component} unavailable")
        self.kind = type(cause).__name__ if cause is not None else ""


class RedisUnavailable(ServiceUnavailable):
    component = "redis"


class StorageFull(ServiceUnavailable):
    component = "file store"


def is_disk_full(error: BaseException) -> bool:
    """True when ``error`` (or what caused it) is "no space left" / "quota exceeded"."""
    seen = 0
    current: BaseException | None = error
    while current is not None and seen < 8:
        if isinstance(current, OSError) and current.errno in DISK_FULL_ERRNOS:
            return True
        current = current.__cause__ or current.__context__
        seen += 1
    return False


@dataclass
class _State:
    since: float
    failures: int


_down: dict[str, _State] = {}


def note_outage(component: str, kind: str) -> None:
    """Count a refused request; log one line when the outage begins."""
    state = _down.get(component)
    if state is None:
        _down[component] = _State(since=time.monotonic(), failures=1)
        logger.error("%s unavailable (%s)", component, kind or "unknown")
    else:
        state.failures += 1


def note_success(component: str) -> None:
    """The component answered: log the end of an outage, once."""
    state = _down.pop(component, None)
    if state is not None:
        logger.warning(
            "%s available again after %.1f s (%d requests refused meanwhile)",
            component,
            time.monotonic() - state.since,
            state.failures,
        )


def reset() -> None:
    """Forget every outage without logging (tests)."""
    _down.clear()
