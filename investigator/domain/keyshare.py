"""Key sharing: staff who arrived after a report get the keys their role needs for it.

Framework-free. When a report arrives, its keys are wrapped for the staff of that moment: the
case key (``case`` scope) for the intake officers (``portal.case.readers.intake_readers``), the
identity key of a real-name report (``identity`` scope) for the identity custodians
(``portal.case.readers.identity_custodians``). Staff change: an account created, given the role or
re-enabled later has no wrap, and if everyone of that time leaves, the case (or the reporter's
identity) becomes unreadable to the centre. So whenever a staff member who holds such a key
works with it, the key is wrapped for every current, enabled holder of the role who has none
yet and whom ``investigator.policy`` allows the rule's action; the originals rule makes that
never a subject of the case nor someone who declared a conflict on it.

    =========  ==================  ===============  ==========================================
    scope      shared with         policy action    when
    =========  ==================  ===============  ==========================================
    case       intake_officer      view             the case is in an intake stage
                                                    (``share_intake_key``)
    identity   identity_custodian  decide_identity  any stage (``share_identity_key``): so
                                                    never a custodian on the case's team
    =========  ==================  ===============  ==========================================

On a case of the independent channel (``cases.independent``) a rule's role is held by the
independent reviewers instead (``investigator.policy.acts_as``): its keys never go to an intake
officer, an identity custodian or anyone else of the centre this way.

Each rule shares its own scope only: the case key never goes to custodians this way, the
identity key never to intake officers or investigators (they get it through an approved
request, ``investigator.domain.casework.decide_identity``); reward and claim keys are not touched.
The server cannot share alone: the caller passes a key it unwrapped with the actor's own
private key, after asking policy that the actor may act on the case (``view`` for the case
key, ``view_identity`` for the identity key). Each batch is audited as ``case.key_shared``
with the scope and the ids of the users, never key material.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from investigator.policy import INTAKE_STAGES, Principal, acts_as, may_act_on_case
from investigator.roles import roles_of
from portal.case.sealing import case_suite, grant_user
from portal.kernel import audit
from portal.kernel.db.models import Case, KeyWrap, User

# user ids per audit entry: 32 hex characters each, well inside the detail limit
_IDS_PER_ENTRY = 20


@dataclass(frozen=True)
class ShareRule:
    """Who receives a key of ``scope``: enabled holders of ``role`` whom policy allows
    ``action`` on the case, while the case's stage is in ``stages`` (None: any stage)."""

    scope: str
    role: str
    action: str
    stages: frozenset[str] | None = None

    def applies(self, case: Case) -> bool:
        """May the key of this case be shared now? Never for a destroyed case, nor outside
        ``stages``: callers ask before unwrapping a key for nothing."""
        if case.destroyed_on is not None:
            return False
        return self.stages is None or case.stage in self.stages


INTAKE_RULE = ShareRule(scope="case", role="intake_officer", action="view", stages=INTAKE_STAGES)
IDENTITY_RULE = ShareRule(scope="identity", role="identity_custodian", action="decide_identity")


def _principal(user: User) -> Principal:
    return Principal(user.id, roles_of(user.roles), user.department_id)


async def share_key(
    session: AsyncSession, case: Case, rule: ShareRule, key: bytes, actor: str
) -> list[User]:
    """Wrap ``key`` (the ``rule.scope`` key of ``case``) for each enabled holder of
    ``rule.role`` who lacks a wrap of that scope and whom policy allows ``rule.action``;
    return the users granted (often none). Nothing happens for a destroyed case or outside
    ``rule.stages``. Each batch is audited as ``case.key_shared``."""
    if not rule.applies(case):
        return []
    # Serialise sharing per case (PostgreSQL; SQLite writers are serialised already), so two
    # staff opening the page at once never wrap the key twice for the same person.
    await session.execute(select(Case.id).where(Case.id == case.id).with_for_update())
    holders = select(KeyWrap.user_id).where(
        KeyWrap.case_id == case.id,
        KeyWrap.scope == rule.scope,
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
        if not acts_as(principal.roles, rule.role, case.independent):
            continue  # on an independent case: the independent reviewers, never the centre
        if not await may_act_on_case(session, principal, case.id, rule.action):
            continue
        grant_user(session, case.id, rule.scope, key, user, case_suite(case))
        granted.append(user)
    for start in range(0, len(granted), _IDS_PER_ENTRY):
        batch = granted[start : start + _IDS_PER_ENTRY]
        await audit.record(
            session,
            actor_user_id=actor,
            action="case.key_shared",
            case_id=case.id,
            detail=f"scope={rule.scope} count={len(batch)} users={','.join(u.id for u in batch)}",
        )
    return granted


async def share_intake_key(session: AsyncSession, case: Case, key: bytes, actor: str) -> list[User]:
    """The case key, for the intake officers who lack it, while the case is at intake."""
    return await share_key(session, case, INTAKE_RULE, key, actor)


async def share_identity_key(
    session: AsyncSession, case: Case, key: bytes, actor: str
) -> list[User]:
    """The identity key (``key`` must be the case's ``identity`` scope key), for the identity
    custodians who lack it and may decide identity requests on the case."""
    return await share_key(session, case, IDENTITY_RULE, key, actor)


__all__ = [
    "IDENTITY_RULE",
    "INTAKE_RULE",
    "ShareRule",
    "share_identity_key",
    "share_intake_key",
    "share_key",
]
