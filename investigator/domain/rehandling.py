"""再次处理 (W9): a reopened case taken back, with a named handler and a re-handling deadline."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from investigator.domain.handling import NOT_NOW
from investigator.policy import Principal, is_excluded
from investigator.roles import roles_of
from portal.case.errors import WorkflowError
from portal.case.stage import Stage, move
from portal.kernel.db.models import (
    Case,
    CaseDeadline,
    TeamMember,
    User,
)
from portal.kernel.msgid import _

NAME_HANDLER = _("Name the team member who handles the case again.")


async def resume(session: AsyncSession, case: Case, actor: str, handler_id: str) -> None:
    """再次处理 (W9): the team takes a reopened case back and names who handles it again; the
    re-handling deadline opened at the reopening is theirs (``deadlines``: ``rehandling``).
    Its history stays on the case."""
    if case.stage != "reopened":
        raise WorkflowError(NOT_NOW)
    seat = (
        await session.execute(
            select(TeamMember.id).where(
                TeamMember.case_id == case.id, TeamMember.user_id == handler_id
            )
        )
    ).first()
    handler = await session.get(User, handler_id) if handler_id else None
    if seat is None or handler is None or handler.disabled:
        raise WorkflowError(NAME_HANDLER)
    if await is_excluded(session, Principal(handler.id, roles_of(handler.roles)), case.id):
        raise WorkflowError(NAME_HANDLER)  # pragma: no cover - an excluded member has no seat
    case.closed_on = None
    await move(
        session,
        case,
        Stage.INVESTIGATING,
        action="case.rehandle",
        actor=actor,
        detail=f"handler={handler.id}",
    )
    for deadline in (
        await session.execute(
            select(CaseDeadline).where(
                CaseDeadline.case_id == case.id,
                CaseDeadline.stage == "rehandling",
                CaseDeadline.met_on.is_(None),
            )
        )
    ).scalars():
        deadline.handler_id = handler.id


async def rehandling_deadline(session: AsyncSession, case_id: str) -> tuple[Any, str] | None:
    """The open re-handling deadline of a reopened case and its handler's name, if any."""
    row = (
        await session.execute(
            select(CaseDeadline, User.display_name)
            .outerjoin(User, User.id == CaseDeadline.handler_id)
            .where(
                CaseDeadline.case_id == case_id,
                CaseDeadline.stage == "rehandling",
                CaseDeadline.met_on.is_(None),
            )
        )
    ).first()
    if row is None:
        return None
    return row[0], str(row[1] or "")
