"""Deadlines follow the case: every stage change noted on a write session (see
portal.kernel.db.models STAGE_CHANGES) opens and closes the right deadlines just before the
transaction commits, whichever workflow module changed the stage.

A stage change is never blocked by the calendar: when a deadline would fall in a year the
working-day calendar does not cover, the change goes through, no deadline is guessed, and the
case timeline and the audit log say so (the administrator's calendar page lists the year).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping

from sqlalchemy.ext.asyncio import AsyncSession

from investigator.domain.calendar import CalendarYearMissing
from investigator.domain.deadlines import Rule, on_stage_change, rules_for
from portal.case.events import add_event
from portal.kernel import audit
from portal.kernel.db.models import CREATED_CASES, STAGE_CHANGES, Case, CaseDeadline
from portal.kernel.settings import Settings


def deadline_hook(settings: Settings) -> Callable[[AsyncSession], Awaitable[None]]:
    rules = rules_for(settings)

    async def apply(session: AsyncSession) -> None:
        changes = session.info.pop(STAGE_CHANGES, [])
        for case, old, new in changes:
            if case.destroyed_on is not None:
                continue
            try:
                if old is None and case.id in session.info.get(CREATED_CASES, ()):
                    await _open_first(session, case, new, rules)
                else:
                    async with session.begin_nested():
                        await on_stage_change(session, case, old, new, None, rules=rules)
            except CalendarYearMissing as missing:
                add_event(session, case.id, "deadline_unknown", public=False)
                await audit.record(
                    session,
                    actor_user_id=None,
                    action="deadline.calendar_missing",
                    case_id=case.id,
                    detail=f"year={missing.year} stage={new}",
                )
        # changes made by the hooks themselves are not fed back
        session.info.pop(STAGE_CHANGES, None)

    return apply


async def _open_first(
    session: AsyncSession, case: Case, stage: str, rules: Mapping[str, Rule]
) -> None:
    """The first deadlines of a case created in this transaction, without a savepoint: they
    are only added to the session (no statement), so a missing calendar year is undone by
    taking back the deadlines added for this case."""
    before = set(session.new)
    try:
        await on_stage_change(session, case, None, stage, None, rules=rules)
    except CalendarYearMissing:
        for obj in set(session.new) - before:
            if isinstance(obj, CaseDeadline) and obj.case_id == case.id:
                session.expunge(obj)
        raise
