"""Case events: the timeline entries of a case."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from portal.kernel import clock
from portal.kernel.db.models import (
    CaseEvent,
)


def add_event(
    session: AsyncSession,
    case_id: str,
    kind: str,
    *,
    public: bool,
    actor: str | None = None,
    detail: bytes | None = None,
) -> None:
    session.add(
        CaseEvent(
            case_id=case_id,
            kind=kind,
            public=public,
            actor_user_id=actor,
            on=clock.today(),
            sealed=detail,
        )
    )
