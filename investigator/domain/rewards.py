"""Rewards (奖励, W11). Framework-free, in the caller's write transaction.

* The case's lead proposes a reward only for a case concluded as substantiated whose losses
  were recovered (the recovered amount is recorded with the proposal); the amount lies within
  the configured bounds (``PORTAL_REWARD_MIN`` / ``PORTAL_REWARD_MAX``, default 2,000 to 50,000
  RMB) and the contribution basis is sealed.
* Two decisions follow: an approver's and a reward officer's, by two different people, neither
  on the team nor a subject of the case nor conflicted (``investigator.policy`` refuses the
  latter; this module refuses the same person twice and re-checks membership).
* The reward officer records the payment (a sealed reference).
* The reporter sees each decision on the follow-up page (public events) and, once a reward is
  approved, may claim it there: identity and payment details are sealed under a fresh claim key
  wrapped for the reward officers only (``key_wraps.scope = 'claim'``), never for the team.

Keys: the basis and the payment record are sealed under the case's *reward key*
(``key_wraps.scope = 'reward'``), wrapped for the team members, the approvers and the reward
officers who may act on the case. Amounts (``amount``, ``recovered_amount``) are plaintext for
the statistics (W14).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from crypto.envelope import field_aad, new_case_key
from investigator.domain.casefile import NoKey, staff_key
from investigator.policy import CLOSED_STAGES, deciders, may_decide
from portal.case.errors import WorkflowError
from portal.case.events import add_event
from portal.case.sealing import case_suite, grant_user, open_json, reward_claim_aad, seal_json
from portal.kernel import audit, clock
from portal.kernel.db.models import (
    Case,
    KeyWrap,
    Reward,
    TeamMember,
    User,
    new_id,
)
from portal.kernel.msgid import _
from portal.kernel.services import Services

SUBSTANTIATED_OUTCOMES = frozenset({"substantiated", "partly_substantiated"})
STATUSES = ("proposed", "approved", "refused", "paid")


def _basis_aad(case_id: str, reward_id: str) -> bytes:
    return field_aad(case_id, f"reward:{reward_id}")


def _payment_aad(case_id: str, reward_id: str) -> bytes:
    return field_aad(case_id, f"reward-payment:{reward_id}")


async def reward_of(session: AsyncSession, case_id: str) -> Reward | None:
    return (
        await session.execute(select(Reward).where(Reward.case_id == case_id))
    ).scalar_one_or_none()


async def _reward_key(session: AsyncSession, case: Case, actor: str, private_key: bytes) -> bytes:
    has_any = (
        await session.execute(
            select(KeyWrap.id).where(KeyWrap.case_id == case.id, KeyWrap.scope == "reward")
        )
    ).first()
    if has_any:
        return await staff_key(session, case.id, actor, private_key, scope="reward")
    key = new_case_key()
    readers: dict[str, User] = {}
    for member in (
        await session.execute(select(TeamMember).where(TeamMember.case_id == case.id))
    ).scalars():
        user = await session.get(User, member.user_id)
        if user is not None and not user.disabled:
            readers[user.id] = user
    for role in ("approver", "reward_officer"):
        for user in await deciders(session, case.id, role):
            readers[user.id] = user
    for user in readers.values():
        grant_user(session, case.id, "reward", key, user, case_suite(case))
    return key


async def propose(
    session: AsyncSession,
    services: Services,
    case: Case,
    actor: str,
    private_key: bytes,
    *,
    amount: int,
    recovered_amount: int,
    basis: str,
) -> Reward:
    """The lead proposes (or, after a refusal, re-proposes) the case's reward."""
    settings = services.settings
    if case.stage not in CLOSED_STAGES or case.outcome not in SUBSTANTIATED_OUTCOMES:
        raise WorkflowError(_("A reward is proposed only for a case concluded as substantiated."))
    if recovered_amount <= 0:
        raise WorkflowError(_("Record the amount of the losses recovered."))
    if not settings.reward_min <= amount <= settings.reward_max:
        raise WorkflowError(_("The amount must lie within the configured bounds."))
    if not basis.strip():
        raise WorkflowError(_("Describe the reporter's contribution."))
    reward = await reward_of(session, case.id)
    if reward is not None and reward.status not in ("proposed", "refused"):
        raise WorkflowError(_("The reward has been decided already."))
    try:
        key = await _reward_key(session, case, actor, private_key)
    except NoKey:
        raise WorkflowError(_("You do not hold the reward key of this case.")) from None
    if reward is None:
        reward = Reward(id=new_id(), case_id=case.id, sealed_basis=b"")
        session.add(reward)
    reward.status, reward.amount, reward.recovered_amount = "proposed", amount, recovered_amount
    reward.proposed_by, reward.proposed_on = actor, clock.today()
    reward.approver_id = reward.approver_on = reward.officer_id = reward.officer_on = None
    reward.refused_by = reward.decided_on = None
    reward.sealed_basis = seal_json(key, {"basis": basis}, _basis_aad(case.id, reward.id), services)
    add_event(session, case.id, "reward_proposed", public=False, actor=actor)
    await audit.record(
        session,
        actor_user_id=actor,
        action="reward.propose",
        case_id=case.id,
        detail=f"reward={reward.id} amount={amount} recovered={recovered_amount}",
    )
    return reward


async def decide(
    session: AsyncSession, reward: Reward, actor: str, *, role: str, approve: bool
) -> None:
    """One of the two decisions: ``role`` is ``approver`` or ``reward_officer``.

    A refusal by either ends the proposal (the team may propose again); two approvals by two
    different people approve it."""
    if role not in ("approver", "reward_officer"):
        raise WorkflowError(_("Unknown role."))
    if reward.status != "proposed":
        raise WorkflowError(_("The reward has been decided already."))
    if not await may_decide(session, reward.case_id, actor):
        raise WorkflowError(_("You cannot decide on this reward."))
    if actor == reward.proposed_by:
        raise WorkflowError(_("Nobody decides on their own proposal."))
    mine, other = (
        (reward.approver_id, reward.officer_id)
        if role == "approver"
        else (reward.officer_id, reward.approver_id)
    )
    if mine is not None:
        raise WorkflowError(_("This decision has been given already."))
    if other == actor:
        raise WorkflowError(_("The two approvals must come from two different people."))
    today = clock.today()
    if role == "approver":
        reward.approver_id, reward.approver_on = actor, today
    else:
        reward.officer_id, reward.officer_on = actor, today
    if not approve:
        reward.status, reward.refused_by, reward.decided_on = "refused", actor, today
        add_event(session, reward.case_id, "reward_refused", public=True, actor=actor)
    elif reward.approver_id and reward.officer_id:
        reward.status, reward.decided_on = "approved", today
        add_event(session, reward.case_id, "reward_approved", public=True, actor=actor)
    await audit.record(
        session,
        actor_user_id=actor,
        action="reward.approve" if approve else "reward.refuse",
        case_id=reward.case_id,
        detail=f"reward={reward.id} role={role} status={reward.status}",
    )


async def record_payment(
    session: AsyncSession,
    services: Services,
    reward: Reward,
    actor: str,
    private_key: bytes,
    *,
    reference: str,
) -> None:
    """The reward officer records that the reward was paid (the reference is sealed)."""
    if reward.status != "approved":
        raise WorkflowError(_("Only an approved reward can be paid."))
    if not reference.strip():
        raise WorkflowError(_("Give the payment reference."))
    try:
        key = await staff_key(session, reward.case_id, actor, private_key, scope="reward")
    except NoKey:
        raise WorkflowError(_("You do not hold the reward key of this case.")) from None
    reward.sealed_payment = seal_json(
        key, {"reference": reference}, _payment_aad(reward.case_id, reward.id), services
    )
    reward.status, reward.paid_on = "paid", clock.today()
    add_event(session, reward.case_id, "reward_paid", public=True, actor=actor)
    await audit.record(
        session,
        actor_user_id=actor,
        action="reward.paid",
        case_id=reward.case_id,
        detail=f"reward={reward.id} amount={reward.amount}",
    )


async def open_basis(
    session: AsyncSession, reward: Reward, user_id: str, private_key: bytes
) -> dict[str, Any] | None:
    """The basis (and payment reference, if any) for a holder of the reward key, else None."""
    try:
        key = await staff_key(session, reward.case_id, user_id, private_key, scope="reward")
    except NoKey:
        return None
    out: dict[str, Any] = open_json(key, reward.sealed_basis, _basis_aad(reward.case_id, reward.id))
    if reward.sealed_payment:
        out.update(open_json(key, reward.sealed_payment, _payment_aad(reward.case_id, reward.id)))
    return out


async def open_claim(
    session: AsyncSession, reward: Reward, user_id: str, private_key: bytes
) -> dict[str, str] | None:
    """The reporter's claim, for a reward officer holding the claim key; else None."""
    if not reward.sealed_claim:
        return None
    try:
        key = await staff_key(session, reward.case_id, user_id, private_key, scope="claim")
    except NoKey:
        return None
    doc: dict[str, str] = open_json(
        key, reward.sealed_claim, reward_claim_aad(reward.case_id, reward.id)
    )
    return doc


async def pending_for(session: AsyncSession, user_id: str, roles: frozenset[str]) -> list[Reward]:
    """Rewards a decider may act on: proposed ones awaiting their role's decision, and (for
    reward officers) approved ones awaiting payment. Excluded and team cases are left out."""
    rows = (
        await session.execute(
            select(Reward)
            .join(Case, Case.id == Reward.case_id)
            .where(Case.destroyed_on.is_(None))
            .order_by(Reward.proposed_on)
        )
    ).scalars()
    out = []
    for reward in rows:
        if not await may_decide(session, reward.case_id, user_id):
            continue
        awaits_approver = (
            "approver" in roles and reward.status == "proposed" and reward.approver_id is None
        )
        awaits_officer = "reward_officer" in roles and (
            (reward.status == "proposed" and reward.officer_id is None)
            or reward.status == "approved"
        )
        if awaits_approver or awaits_officer:
            out.append(reward)
    return out
