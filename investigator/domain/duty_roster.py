"""The duty roster (值班): who is told at once about urgent cases (W3). Framework-free.

Until an administrator saves a roster, every active intake officer is on duty, so an urgent
report always reaches somebody by name. Once saved (``duty_roster_set``), the roster is exactly
who the administrator chose; if that leaves nobody, the administrator's home says so
(``nobody_on_duty``) and ``portal check`` fails.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from investigator.roles import roles_of
from portal.kernel import audit, clock
from portal.kernel.db.models import DutyRoster, DutyRosterSet, User

_ROSTER_ROW = 1


async def roster_saved(session: AsyncSession) -> bool:
    """Whether an administrator has saved a duty roster (else: every intake officer)."""
    return await session.get(DutyRosterSet, _ROSTER_ROW) is not None


async def on_duty(session: AsyncSession) -> list[User]:
    """The active staff on duty: the saved roster, or every active intake officer."""
    if not await roster_saved(session):
        users = (
            await session.execute(
                select(User).where(User.disabled.is_(False)).order_by(User.display_name)
            )
        ).scalars()
        return [u for u in users if "intake_officer" in roles_of(u.roles)]
    stmt = (
        select(User)
        .join(DutyRoster, DutyRoster.user_id == User.id)
        .where(User.disabled.is_(False))
        .order_by(User.display_name)
    )
    return list((await session.execute(stmt)).scalars())


async def nobody_on_duty(session: AsyncSession) -> bool:
    return not await on_duty(session)


async def set_on_duty(session: AsyncSession, actor: str, user_ids: Iterable[str]) -> list[str]:
    """Replace the duty roster (an administrator's setting); audited."""
    wanted = sorted(set(user_ids))
    active = set(
        (
            await session.execute(
                select(User.id).where(User.id.in_(wanted), User.disabled.is_(False))
            )
        ).scalars()
    )
    for row in (await session.execute(select(DutyRoster))).scalars():
        if row.user_id not in active:
            await session.delete(row)
    existing = set((await session.execute(select(DutyRoster.user_id))).scalars())
    for uid in wanted:
        if uid in active and uid not in existing:
            session.add(DutyRoster(user_id=uid, set_by=actor, set_on=clock.today()))
    marker = await session.get(DutyRosterSet, _ROSTER_ROW)
    if marker is None:
        session.add(DutyRosterSet(id=_ROSTER_ROW, set_by=actor, set_on=clock.today()))
    else:
        marker.set_by, marker.set_on = actor, clock.today()
    kept = [u for u in wanted if u in active]
    await audit.record(
        session, actor_user_id=actor, action="notify.duty", detail=f"on_duty={','.join(kept)}"
    )
    return kept
