"""The staff who may read a case or an identity at arrival (roles, enabled accounts)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from portal.kernel.db.models import (
    User,
)


async def intake_readers(session: AsyncSession) -> list[User]:
    users = (await session.execute(select(User).where(User.disabled.is_(False)))).scalars()
    return [u for u in users if "intake_officer" in u.roles.split(",")]


async def identity_custodians(session: AsyncSession) -> list[User]:
    users = (await session.execute(select(User).where(User.disabled.is_(False)))).scalars()
    return [u for u in users if "identity_custodian" in u.roles.split(",")]


async def enabled_staff(session: AsyncSession) -> list[User]:
    """Every enabled staff account (callers pick readers with ``investigator.policy``)."""
    rows = await session.execute(select(User).where(User.disabled.is_(False)).order_by(User.id))
    return list(rows.scalars())
