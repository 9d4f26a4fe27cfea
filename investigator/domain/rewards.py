"""Rewards (奖励, W11). Framework-free, in the caller's write transaction.

* The case's lead proposes a reward only for a case concluded as substantiated whose losses
  were recovered (the recovered amount is recorded with the proposal); the amount lies within
  the configured bounds (``PORTAL_REWARD_MIN`` / ``PORTAL_REWARD_MAX``, default 2,000 to 50,000
  RMB) and the contribution basis is sealed.
* Approvers decide, each with an opinion (``reward_decisions``, sealed under the reward key):
  as many different approvers as the amount needs (``PORTAL_REWARD_APPROVALS``, by default
  one up to 10,000 RMB and two above), never the proposer, nobody twice, nobody on the team
  nor a subject of the case nor conflicted (``investigator.policy`` refuses the latter; this
  module re-checks). One refusal ends the proposal; the team may propose again.
* The order is fixed: proposal, approval, the reporter's claim, then payment: the reward
  officer records the payment (a sealed reference) only once the reporter has claimed.
* The reporter sees each decision on the follow-up page (public events) and, once a reward is
  approved, may claim it there: identity and payment details are sealed under a fresh claim key
  wrapped for the reward officers only (``key_wraps.scope = 'claim'``), never for the team.

Keys: the basis and the payment record are sealed under the case's *reward key*
(``key_wraps.scope = 'reward'``), wrapped for the team members, the approvers and the reward
officers who may act on the case. Amounts (``amount``, ``recovered_amount``) are plaintext for
the statistics (W14).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from crypto.envelope import field_aad, new_case_key
from investigator.domain.casefile import NoKey, staff_key
from investigator.policy import CLOSED_STAGES, acts_as, deciders, may_decide
from portal.case.errors import WorkflowError
from portal.case.events import add_event
from portal.case.sealing import case_suite, grant_user, open_json, reward_claim_aad, seal_json
from portal.kernel import audit, clock
from portal.kernel.db.models import (
    Case,
    KeyWrap,
    Reward,
    RewardDecision,
    TeamMember,
    User,
    new_id,
)
from portal.kernel.msgid import _
from portal.kernel.services import Services
from portal.kernel.settings import Settings

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


def approvals_needed(settings: Settings, amount: int) -> int:
    """How many different approvers a reward of ``amount`` RMB needs
    (``PORTAL_REWARD_APPROVALS``; by default one up to 10,000 RMB, two above)."""
    for upto, count in settings.reward_approvals:
        if upto is None or amount <= upto:
            return count
    return settings.reward_approvals[-1][1]  # pragma: no cover - the last tier is open-ended


def _opinion_aad(case_id: str, decision_id: str) -> bytes:
    return field_aad(case_id, f"reward-decision:{decision_id}")


async def _decisions(session: AsyncSession, reward: Reward) -> list[RewardDecision]:
    return list(
        (
            await session.execute(
                select(RewardDecision)
                .where(RewardDecision.reward_id == reward.id)
                .order_by(RewardDecision.proposal_round, RewardDecision.decided_on)
            )
        ).scalars()
    )


def _current_round(decisions: list[RewardDecision]) -> int:
    """A refusal ends a round; the proposal made again after it starts the next one."""
    return 1 + sum(1 for d in decisions if not d.approve)


async def current_approvers(session: AsyncSession, reward: Reward) -> set[str]:
    """Who approved the current proposal (a refused earlier proposal does not count)."""
    decisions = await _decisions(session, reward)
    now = _current_round(decisions)
    return {d.decider_id for d in decisions if d.proposal_round == now and d.approve}


async def decide(
    session: AsyncSession,
    services: Services,
    reward: Reward,
    actor: str,
    private_key: bytes,
    *,
    approve: bool,
    opinion: str,
) -> None:
    """An approver's decision with their opinion (sealed under the reward key). A refusal ends
    the proposal (the team may propose again); the reward is approved once as many different
    approvers as its amount needs (``approvals_needed``) have approved it. Nobody decides on
    their own proposal, nor twice on one proposal, nor while on the team, named or
    conflicted."""
    if reward.status != "proposed":
        raise WorkflowError(_("The reward has been decided already."))
    if not await may_decide(session, reward.case_id, actor):
        raise WorkflowError(_("You cannot decide on this reward."))
    if actor == reward.proposed_by:
        raise WorkflowError(_("Nobody decides on their own proposal."))
    if not opinion.strip():
        raise WorkflowError(_("Give your opinion with the decision."))
    decisions = await _decisions(session, reward)
    now = _current_round(decisions)
    approvers = {d.decider_id for d in decisions if d.proposal_round == now and d.approve}
    if actor in approvers:
        raise WorkflowError(_("You have approved this proposal already; another approver decides."))
    try:
        key = await staff_key(session, reward.case_id, actor, private_key, scope="reward")
    except NoKey:
        raise WorkflowError(_("You do not hold the reward key of this case.")) from None
    today = clock.today()
    decision = RewardDecision(
        id=new_id(),
        reward_id=reward.id,
        case_id=reward.case_id,
        decider_id=actor,
        approve=approve,
        decided_on=today,
        proposal_round=now,
        sealed_opinion=b"",
    )
    decision.sealed_opinion = seal_json(
        key, {"opinion": opinion}, _opinion_aad(reward.case_id, decision.id), services
    )
    session.add(decision)
    needed = approvals_needed(services.settings, reward.amount)
    if not approve:
        reward.status, reward.refused_by, reward.decided_on = "refused", actor, today
        add_event(session, reward.case_id, "reward_refused", public=True, actor=actor)
    elif len(approvers | {actor}) >= needed:
        reward.status, reward.decided_on = "approved", today
        add_event(session, reward.case_id, "reward_approved", public=True, actor=actor)
    await audit.record(
        session,
        actor_user_id=actor,
        action="reward.approve" if approve else "reward.refuse",
        case_id=reward.case_id,
        detail=f"reward={reward.id} status={reward.status} "
        f"approvals={len(approvers) + int(approve)}/{needed}",
    )


@dataclass(frozen=True)
class DecisionView:
    """One decision as the reward page shows it: who, when, what and (for a holder of the
    reward key) their opinion."""

    decider: str
    decided_on: dt.date
    approve: bool
    opinion: str | None
    current: bool


async def decision_views(
    session: AsyncSession, reward: Reward, user_id: str, private_key: bytes
) -> list[DecisionView]:
    decisions = await _decisions(session, reward)
    now = _current_round(decisions)
    try:
        key: bytes | None = await staff_key(
            session, reward.case_id, user_id, private_key, scope="reward"
        )
    except NoKey:
        key = None
    out = []
    for d in decisions:
        user = await session.get(User, d.decider_id)
        opinion = None
        if key is not None:
            opinion = str(
                open_json(key, d.sealed_opinion, _opinion_aad(reward.case_id, d.id))["opinion"]
            )
        out.append(
            DecisionView(
                user.display_name if user is not None else "",
                d.decided_on,
                d.approve,
                opinion,
                d.proposal_round == now,
            )
        )
    return out


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
    if reward.claimed_on is None:
        raise WorkflowError(
            _("The reporter has not claimed the reward yet: it is paid after the claim.")
        )
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
    """Rewards waiting for this person: (approvers) proposals they have not approved yet;
    (reward officers) approved rewards the reporter has claimed, to be paid. Excluded and team
    cases are left out."""
    rows = (
        await session.execute(
            select(Reward, Case.independent)
            .join(Case, Case.id == Reward.case_id)
            .where(Case.destroyed_on.is_(None), Reward.status.in_(("proposed", "approved")))
            .order_by(Reward.proposed_on)
        )
    ).all()
    out = []
    for reward, independent in rows:
        if not await may_decide(session, reward.case_id, user_id):
            continue
        # an independent case's decisions are the independent reviewers' (policy.acts_as)
        awaits_approver = (
            acts_as(roles, "approver", bool(independent))
            and reward.status == "proposed"
            and reward.proposed_by != user_id
            and user_id not in await current_approvers(session, reward)
        )
        awaits_payment = (
            acts_as(roles, "reward_officer", bool(independent))
            and reward.status == "approved"
            and reward.claimed_on is not None
        )
        if awaits_approver or awaits_payment:
            out.append(reward)
    return out
