"""Case lists for the workspace: the intake inbox, "my cases", search by case number.

Every query goes through `policy.visible_cases_clause`, so a subject or conflicted person never
sees the case in a list, a search result or a count. Lists show metadata only, never content.
"""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from investigator.policy import Principal, visible_cases_clause
from portal.kernel.db.models import Case

PAGE = 50


async def list_cases(
    session: AsyncSession,
    principal: Principal,
    *,
    stages: list[str] | None = None,
    number: str | None = None,
    limit: int = PAGE,
    offset: int = 0,
) -> list[Case]:
    stmt = select(Case).where(await visible_cases_clause(principal))
    if stages:
        stmt = stmt.where(Case.stage.in_(stages))
    if number:
        stmt = stmt.where(Case.number == number.strip())
    stmt = stmt.order_by(Case.urgent.desc(), Case.received_on.desc(), Case.number.desc())
    return list((await session.execute(stmt.limit(limit).offset(offset))).scalars())


COUNT_CAP = 1000


async def count_cases(
    session: AsyncSession,
    principal: Principal,
    *,
    stages: list[str] | None = None,
    cap: int = COUNT_CAP,
) -> int:
    """How many cases the list holds, counted up to `cap` (+1 means "more than cap"): an
    exact count of a large inbox would read every row on every page view."""
    inner = select(Case.id).where(await visible_cases_clause(principal))
    if stages:
        inner = inner.where(Case.stage.in_(stages))
    stmt = select(func.count()).select_from(inner.limit(cap + 1).subquery())
    return int((await session.execute(stmt)).scalar_one())
