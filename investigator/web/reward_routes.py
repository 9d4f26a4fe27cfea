"""Reward screens (W11).

    GET  /workspace/rewards                          proposals awaiting the signed-in decider
    GET  /workspace/cases/{case_id}/reward           the case's reward: status, basis, forms
    POST /workspace/cases/{case_id}/reward/propose   the lead proposes (amount, recovered, basis)
    POST /workspace/cases/{case_id}/reward/decide    an approver approves or refuses, with an
                                                     opinion (as many approvers as the amount
                                                     needs)
    POST /workspace/cases/{case_id}/reward/pay       the reward officer records the payment,
                                                     once the reporter has claimed

Each handler asks ``investigator.policy`` (``propose_reward``, ``approve_reward``,
``manage_reward``) and answers 404 when it says no. The page shows only plaintext metadata
(case number, outcome, amounts) plus what the staff member's own keys open: the basis for
holders of the reward key, the reporter's claim for reward officers.
"""

from __future__ import annotations

from typing import Any

from litestar import Request, get, post
from litestar.params import FromPath
from litestar.response import Redirect, Template
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from investigator.domain import rewards
from investigator.policy import can
from investigator.web.case_common import (
    CaseWork,
    Form,
    Refused,
    allowed,
    case_for,
    case_post,
    field,
    not_found,
    page,
    services_of,
)
from investigator.web.guards import StaffPrincipal, current_staff
from portal.kernel import audit
from portal.kernel.db.models import Case
from portal.kernel.msgid import _

REWARD_ACTIONS = ("propose_reward", "approve_reward", "manage_reward")
BAD_AMOUNT = _("Give the amounts as whole numbers of RMB.")


# what a saved form says on the page it returns to (``?saved=``)
SAVED: dict[str, str] = {
    "proposed": _("The reward proposal was saved. The approvers now decide."),
    "decided": _("Your decision and opinion were recorded."),
    "paid": _("The payment was recorded. The reporter sees that the reward was paid."),
}


def _to_reward(case_id: str, saved: str = "") -> Redirect:
    query = f"?saved={saved}" if saved in SAVED else ""
    return Redirect(path=f"/workspace/cases/{case_id}/reward{query}", status_code=303)


def _amount(raw: str) -> int | None:
    cleaned = raw.replace(",", "").replace(" ", "")
    return int(cleaned) if cleaned.isdigit() and len(cleaned) <= 12 else None


async def _reward_page(
    request: Request[Any, Any, Any],
    staff: StaffPrincipal,
    case_id: str,
    error: str | None = None,
    status: int = 200,
) -> Template:
    services = services_of(request)
    async with services.db.write() as s:
        case = await case_for(s, staff, case_id, *REWARD_ACTIONS)
        reward = await rewards.reward_of(s, case.id)
        basis = claim = None
        decisions: list[rewards.DecisionView] = []
        approved_by: set[str] = set()
        if reward is not None:
            basis = await rewards.open_basis(s, reward, staff.user_id, staff.private_key)
            claim = await rewards.open_claim(s, reward, staff.user_id, staff.private_key)
            decisions = await rewards.decision_views(s, reward, staff.user_id, staff.private_key)
            approved_by = await rewards.current_approvers(s, reward)
        may = {a: await allowed(s, staff, case.id, a) for a in REWARD_ACTIONS}
        # a form is shown only when it can succeed: the policy's answer and the reward's state
        may["decide"] = bool(
            reward is not None
            and may["approve_reward"]
            and reward.status == "proposed"
            and reward.proposed_by != staff.user_id
            and staff.user_id not in approved_by
            and basis is not None
        )
        may["pay"] = bool(
            reward is not None
            and may["manage_reward"]
            and reward.status == "approved"
            and reward.claimed_on is not None
        )
        may["propose"] = bool(
            may["propose_reward"] and (reward is None or reward.status in ("proposed", "refused"))
        )
        # every view is audited (A5); reading the reporter's claim (name, contact, payment
        # details) is said in the entry
        await audit.record(
            s,
            actor_user_id=staff.user_id,
            action="case.view_reward",
            case_id=case.id,
            detail=f"claim={'read' if claim is not None else 'no'}",
        )
    return page(
        "reward",
        status,
        staff=staff,
        case=case,
        reward=reward,
        basis=basis,
        claim=claim,
        may=may,
        decisions=decisions,
        approvals=len(approved_by),
        needed=rewards.approvals_needed(services.settings, reward.amount) if reward else 0,
        bounds=(services.settings.reward_min, services.settings.reward_max),
        error=error,
        saved_notice=SAVED.get(request.query_params.get("saved", "")),
    )


@get("/cases/{case_id:str}/reward", name="workspace_reward")
async def reward_page(request: Request[Any, Any, Any], case_id: FromPath[str]) -> Template:
    staff = await current_staff(request)
    return await _reward_page(request, staff, case_id)


async def _post(
    request: Request[Any, Any, Any], case_id: str, work: CaseWork, *actions: str
) -> Template | Redirect:
    return await case_post(request, case_id, actions, work, _reward_page, _to_reward(case_id))


@post("/cases/{case_id:str}/reward/propose", name="workspace_reward_propose")
async def reward_propose(
    request: Request[Any, Any, Any], case_id: FromPath[str]
) -> Template | Redirect:
    services = services_of(request)

    async def work(s: AsyncSession, staff: StaffPrincipal, case: Case, form: Form) -> Redirect:
        amount = _amount(field(form, "amount", 20))
        recovered = _amount(field(form, "recovered_amount", 20))
        if amount is None or recovered is None:
            raise Refused(BAD_AMOUNT)
        await rewards.propose(
            s,
            services,
            case,
            staff.user_id,
            staff.private_key,
            amount=amount,
            recovered_amount=recovered,
            basis=field(form, "basis", 4000, multiline=True),
        )
        return _to_reward(case.id, "proposed")

    return await _post(request, case_id, work, "propose_reward")


@post("/cases/{case_id:str}/reward/decide", name="workspace_reward_decide")
async def reward_decide(
    request: Request[Any, Any, Any], case_id: FromPath[str]
) -> Template | Redirect:
    """An approver's decision and opinion."""
    services = services_of(request)

    async def work(s: AsyncSession, staff: StaffPrincipal, case: Case, form: Form) -> Redirect:
        decision = field(form, "decision", 10)
        if decision not in ("approve", "refuse"):
            raise Refused(_("Choose to approve or to refuse."))
        reward = await rewards.reward_of(s, case.id)
        if reward is None:
            raise not_found()
        await rewards.decide(
            s,
            services,
            reward,
            staff.user_id,
            staff.private_key,
            approve=decision == "approve",
            opinion=field(form, "opinion", 4000, multiline=True),
        )
        return _to_reward(case.id, "decided")

    return await _post(request, case_id, work, "approve_reward")


@post("/cases/{case_id:str}/reward/pay", name="workspace_reward_pay")
async def reward_pay(
    request: Request[Any, Any, Any], case_id: FromPath[str]
) -> Template | Redirect:
    services = services_of(request)

    async def work(s: AsyncSession, staff: StaffPrincipal, case: Case, form: Form) -> Redirect:
        reward = await rewards.reward_of(s, case.id)
        if reward is None:
            raise not_found()
        await rewards.record_payment(
            s,
            services,
            reward,
            staff.user_id,
            staff.private_key,
            reference=field(form, "reference", 200),
        )
        return _to_reward(case.id, "paid")

    return await _post(request, case_id, work, "manage_reward")


async def _listing(s: AsyncSession, staff: StaffPrincipal) -> list[dict[str, Any]]:
    out = []
    for reward in await rewards.pending_for(s, staff.user_id, staff.roles):
        if not await allowed(s, staff, reward.case_id, "approve_reward", "manage_reward"):
            continue
        number = (
            await s.execute(select(Case.number).where(Case.id == reward.case_id))
        ).scalar_one()
        out.append({"reward": reward, "number": number})
    return out


@get("/rewards", name="workspace_rewards")
async def rewards_list(request: Request[Any, Any, Any]) -> Template:
    staff = await current_staff(request)
    if not can(staff.policy(), "review_rewards"):
        raise not_found()
    async with services_of(request).db.read() as s:
        items = await _listing(s, staff)
    return page("rewards", staff=staff, items=items)


reward_handlers: list[Any] = [reward_page, reward_propose, reward_decide, reward_pay, rewards_list]
