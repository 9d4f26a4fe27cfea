"""Deadlines follow the case: every stage change noted on a write session (see
portal.kernel.db.models STAGE_CHANGES) opens and closes the right deadlines just before the
transaction commits, whichever workflow module changed the stage.

A stage change is never blocked by the calendar and a deadline is never absent: when a deadline
runs into a year the working-day calendar does not cover yet, it is computed on Monday to
Friday and marked provisional (``deadline_clock.settle_due``) until the administrator confirms
that year's schedule (``calendar_years.confirm_year``), which recomputes it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from sqlalchemy.ext.asyncio import AsyncSession

from investigator.domain.deadline_rules import rules_for
from investigator.domain.deadlines import on_stage_change
from portal.kernel.db.models import STAGE_CHANGES
from portal.kernel.settings import Settings


def deadline_hook(settings: Settings) -> Callable[[AsyncSession], Awaitable[None]]:
    rules = rules_for(settings)

    async def apply(session: AsyncSession) -> None:
        changes = session.info.pop(STAGE_CHANGES, [])
        for case, old, new in changes:
            if case.destroyed_on is not None:
                continue
            await on_stage_change(session, case, old, new, None, rules=rules)
        # changes made by the hooks themselves are not fed back
        session.info.pop(STAGE_CHANGES, None)

    return apply
