"""Time in one place: Asia/Shanghai, replaceable by a fixed clock in tests."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from zoneinfo import ZoneInfo

SHANGHAI = ZoneInfo("Asia/Shanghai")

_now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC)  # noqa: E731


def now() -> dt.datetime:
    """The current instant, timezone-aware, in Asia/Shanghai."""
    return _now().astimezone(SHANGHAI)


def today() -> dt.date:
    """Today's date in Asia/Shanghai: reporter-originated times are stored to the day (R9)."""
    return now().date()


def set_clock(fn: Callable[[], dt.datetime] | None) -> None:
    """Tests only: fix the clock (None restores the real one)."""
    global _now
    _now = fn or (lambda: dt.datetime.now(dt.UTC))
