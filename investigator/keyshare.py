"""Key sharing for the intake stages: intake officers who arrived after a report can read it.

Framework-free. A report's case key is wrapped, when it arrives, for the intake officers of
that moment (``portal.cases.intake_readers``). Staff change: an officer created, given the
intake_officer role or re-enabled later has no wrap, and if every officer of that time leaves
the received cases become unreadable to the centre. So whenever a staff member who holds the
case key works on a case in an intake stage, ``share_intake_key`` wraps that key for every
current, enabled intake officer who has none yet and whom ``investigator.policy`` allows to
``view`` the case (never a subject of the case nor someone who declared a conflict on it).

Only the ``case`` scope is shared. The identity key (``identity`` scope) stays with the
identity custodians and the members whose request was approved; reward and claim keys are
not touched either. The caller has asked policy that the actor may act on the case and passes
the case key it unwrapped with its own private key.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from investigator import audit
from investigator.policy import INTAKE_STAGES, Principal, may_act_on_case
from investigator.roles import roles_of
from portal.cases import grant_user
from portal.db.models import Case, KeyWrap, User

SHARED_SCOPE = "case"
# user ids per audit entry: 32 hex characters each, well inside the detail limit
_IDS_PER_ENTRY = 20


def _principal(user: User) -> Principal:
    return Principal(user.id, roles_of(user.roles), user.department_id)


async def share_intake_key(session: AsyncSession, case: Case, key: bytes, actor: str) -> list[User]:
    """Wrap ``key`` (the case key of ``case``) for each enabled intake officer who lacks a
    ``case`` wrap and whom policy lets view the case; return the users granted (often none).
    Nothing happens outside the intake stages or for a destroyed case. Each batch is audited
    as ``case.key_shared`` with the ids of the users, never key material."""
    if case.stage not in INTAKE_STAGES or case.destroyed_on is not None:
        return []
    # Serialise sharing per case (PostgreSQL; SQLite writers are serialised already), so two
    # officers opening the page at once never wrap the key twice for the same person.
    await session.execute(select(Case.id).where(Case.id == case.id).with_for_update())
    holders = select(KeyWrap.user_id).where(
        KeyWrap.case_id == case.id,
        KeyWrap.scope == SHARED_SCOPE,
        KeyWrap.user_id.is_not(None),
    )
    candidates = (
        await session.execute(
            select(User)
            .where(User.disabled.is_(False), User.id.not_in(holders))
            .order_by(User.created_at, User.id)
        )
    ).scalars()
    granted: list[User] = []
    for user in list(candidates):
        principal = _principal(user)
        if not principal.has("intake_officer"):
            continue
        if not await may_act_on_case(session, principal, case.id, "view"):
            continue
        grant_user(session, case.id, SHARED_SCOPE, key, user)
        granted.append(user)
    for start in range(0, len(granted), _IDS_PER_ENTRY):
        batch = granted[start : start + _IDS_PER_ENTRY]
        await audit.record(
            session,
            actor_user_id=actor,
            action="case.key_shared",
            case_id=case.id,
            detail=f"scope={SHARED_SCOPE} count={len(batch)} users={','.join(u.id for u in batch)}",
        )
    return granted


__all__ = ["SHARED_SCOPE", "share_intake_key"]
