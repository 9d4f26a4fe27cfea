"""Rewards at the domain level (W11): eligibility, bounds, two different deciders outside the
team, payment, the reporter's sealed claim readable by reward officers only."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

import portal.reporter.followup as reporter_followup
from investigator.domain import rewards
from investigator.policy import may_act_on_case
from portal.case.errors import WorkflowError
from portal.kernel.db.models import AuditEntry, Case, CaseEvent, KeyWrap, Reward
from portal.kernel.services import Services
from portal.reporter import rewards as reporter_rewards
from tests.investigator.test_casework import principal, staff
from tests.investigator.test_retention import conclude, fixed_clock, submit  # noqa: F401


@pytest.fixture
async def world(services: Services) -> dict[str, Any]:
    w: dict[str, Any] = {}
    for name, roles in [
        ("intake", "intake_officer"),
        ("lead", "team_lead,investigator"),
        ("approver", "approver"),
        ("officer", "reward_officer"),
        ("both", "approver,reward_officer"),
        ("custodian", "identity_custodian"),
    ]:
        w[name] = await staff(services, name, roles)
    w["case_id"], w["code"] = await submit(services, "The purchasing head takes cash.")
    return w


async def _propose(services: Services, w: dict[str, Any], amount: int = 5000) -> Reward:
    lead, lead_key = w["lead"]
    async with services.db.write() as s:
        case = await s.get(Case, w["case_id"])
        assert case is not None
        return await rewards.propose(
            s,
            services,
            case,
            lead.id,
            lead_key,
            amount=amount,
            recovered_amount=1_200_000,
            basis="Named the supplier and the bank account.",
        )


async def _decide(services: Services, w: dict[str, Any], who: str, role: str, ok: bool) -> None:
    async with services.db.write() as s:
        reward = await rewards.reward_of(s, w["case_id"])
        assert reward is not None
        await rewards.decide(s, reward, w[who][0].id, role=role, approve=ok)


async def test_only_for_a_substantiated_concluded_case_within_bounds(
    services: Services, world: Any
) -> None:
    with pytest.raises(WorkflowError):  # not concluded yet
        await _propose(services, world)
    await conclude(services, world, world["case_id"], "unsubstantiated")
    with pytest.raises(WorkflowError):
        await _propose(services, world)
    async with services.db.write() as s:
        case = await s.get(Case, world["case_id"])
        assert case is not None
        case.outcome = "substantiated"
    for amount in (1999, 50001):
        with pytest.raises(WorkflowError):
            await _propose(services, world, amount)
    lead, lead_key = world["lead"]
    async with services.db.write() as s:
        case = await s.get(Case, world["case_id"])
        assert case is not None
        with pytest.raises(WorkflowError):  # no recovered amount
            await rewards.propose(
                s, services, case, lead.id, lead_key, amount=5000, recovered_amount=0, basis="x"
            )
    reward = await _propose(services, world, 2000)
    assert reward.status == "proposed" and reward.amount == 2000


async def test_two_different_deciders_then_payment(services: Services, world: Any) -> None:
    await conclude(services, world, world["case_id"])
    await _propose(services, world)
    # policy: the team lead may propose, not approve; approver and officer may decide
    async with services.db.read() as s:
        cid = world["case_id"]
        assert await may_act_on_case(s, principal(world["lead"][0]), cid, "propose_reward")
        assert not await may_act_on_case(s, principal(world["lead"][0]), cid, "approve_reward")
        assert await may_act_on_case(s, principal(world["approver"][0]), cid, "approve_reward")
        assert await may_act_on_case(s, principal(world["officer"][0]), cid, "manage_reward")
        assert not await may_act_on_case(s, principal(world["officer"][0]), cid, "propose_reward")
    with pytest.raises(WorkflowError):  # a team member, whatever their roles
        await _decide(services, world, "lead", "approver", True)
    await _decide(services, world, "both", "approver", True)
    with pytest.raises(WorkflowError):  # the same person twice
        await _decide(services, world, "both", "reward_officer", True)
    with pytest.raises(WorkflowError):  # the approver's decision is given already
        await _decide(services, world, "approver", "approver", True)
    await _decide(services, world, "officer", "reward_officer", True)
    officer, officer_key = world["officer"]
    async with services.db.write() as s:
        reward = await rewards.reward_of(s, world["case_id"])
        assert reward is not None and reward.status == "approved"
        basis = await rewards.open_basis(s, reward, officer.id, officer_key)
        assert basis is not None and "supplier" in basis["basis"]
        await rewards.record_payment(
            s, services, reward, officer.id, officer_key, reference="TRX-2026-0042"
        )
    async with services.db.read() as s:
        reward = await rewards.reward_of(s, world["case_id"])
        assert reward is not None and reward.status == "paid"
        assert (await rewards.open_basis(s, reward, officer.id, officer_key) or {}).get(
            "reference"
        ) == "TRX-2026-0042"
        public = [
            e.kind
            for e in (
                await s.execute(
                    select(CaseEvent).where(
                        CaseEvent.case_id == world["case_id"], CaseEvent.public.is_(True)
                    )
                )
            ).scalars()
        ]
    assert "reward_approved" in public and "reward_paid" in public


async def test_a_refusal_ends_the_proposal_and_the_reporter_sees_it(
    services: Services, world: Any
) -> None:
    await conclude(services, world, world["case_id"])
    await _propose(services, world)
    await _decide(services, world, "officer", "reward_officer", False)
    with pytest.raises(WorkflowError):
        await _decide(services, world, "approver", "approver", True)
    access = await reporter_followup.sign_in_with_receipt(services, world["code"])
    assert access is not None
    views = await reporter_followup.reporter_view(services, access)
    assert "reward_refused" in [e.kind for e in views[0].events]
    # the team may propose again
    reward = await _propose(services, world, 3000)
    assert reward.status == "proposed" and reward.officer_id is None


async def test_reporter_claim_is_sealed_for_reward_officers_only(
    services: Services, world: Any
) -> None:
    await conclude(services, world, world["case_id"])
    await _propose(services, world)
    access = await reporter_followup.sign_in_with_receipt(services, world["code"])
    assert access is not None
    with pytest.raises(reporter_followup.NotYours):  # nothing to claim before approval
        await reporter_rewards.reporter_claim(
            services, access, world["case_id"], name="甲", contact="", payment="6222 0000"
        )
    await _decide(services, world, "approver", "approver", True)
    await _decide(services, world, "officer", "reward_officer", True)
    async with services.db.read() as s:
        audited_before = (await s.execute(select(func.count()).select_from(AuditEntry))).scalar()
    await reporter_rewards.reporter_claim(
        services, access, world["case_id"], name="举报人甲", contact="138", payment="6222 0000"
    )
    async with services.db.read() as s:
        reward = await rewards.reward_of(s, world["case_id"])
        assert reward is not None and reward.claimed_on is not None
        # R9: the reporter's own act is a case event dated to the day, never a timed entry
        audited = (await s.execute(select(func.count()).select_from(AuditEntry))).scalar()
        assert audited == audited_before
        claim_readers = {
            w.user_id
            for w in (
                await s.execute(
                    select(KeyWrap).where(
                        KeyWrap.case_id == world["case_id"], KeyWrap.scope == "claim"
                    )
                )
            ).scalars()
        }
        assert claim_readers == {world["officer"][0].id, world["both"][0].id}
        for name in ("lead", "approver", "custodian", "intake"):
            user, key = world[name]
            assert await rewards.open_claim(s, reward, user.id, key) is None
        claim = await rewards.open_claim(s, reward, world["officer"][0].id, world["officer"][1])
    assert claim == {"name": "举报人甲", "contact": "138", "payment": "6222 0000"}


# --- through the real app ---------------------------------------------------------------------


async def conclude_as(services: Services, intake_id: str, lead_id: str, case_id: str) -> None:
    from crypto.recipients import unlock_with_password
    from investigator.domain import casework
    from investigator.domain.casefile import staff_key
    from portal.kernel import clock
    from portal.kernel.db.models import User
    from tests.investigator.conftest import STRONG_PASSWORD

    async with services.db.write() as s:
        intake = await s.get(User, intake_id)
        lead = await s.get(User, lead_id)
        case = await s.get(Case, case_id)
        assert intake is not None and lead is not None and case is not None
        key = await staff_key(
            s,
            case_id,
            intake_id,
            unlock_with_password(
                intake.sealed_private_by_password, STRONG_PASSWORD, services.keyring.password_pepper
            ),
        )
        await casework.accept(s, case, intake_id)
        await casework.add_member(s, case, key, intake_id, lead, "lead", declared_no_conflict=True)
        case.stage, case.outcome, case.closed_on = "concluded", "substantiated", clock.today()


def test_reward_journey_through_the_app(client: Any, services: Services) -> None:
    from tests.investigator.ws_helpers import Desk, run, submit_case
    from tests.portal.test_reporter_journeys import case_page, sign_in

    desk = Desk(client, services)
    for name, roles in [
        ("intake", "intake_officer"),
        ("lead", "team_lead,investigator"),
        ("approver", "approver"),
        ("officer", "reward_officer"),
        ("stranger", "investigator"),
    ]:
        desk.add(name, roles)
    case_id, code = run(
        client,
        lambda: submit_case(services, real_name=False, with_files=False, token="rw-" + "a" * 20),
    )
    run(
        client, lambda: conclude_as(services, desk.user_id("intake"), desk.user_id("lead"), case_id)
    )
    base = f"/workspace/cases/{case_id}/reward"
    assert desk.get("stranger", base).status_code == 404
    page = desk.get("lead", base)
    assert page.status_code == 200 and "Propose a reward" in page.text
    low = desk.post(
        "lead", base + "/propose", {"amount": "1000", "recovered_amount": "90000", "basis": "x"}
    )
    assert low.status_code == 400 and "configured bounds" in low.text
    ok = desk.post(
        "lead",
        base + "/propose",
        {"amount": "8,000", "recovered_amount": "90000", "basis": "Key ledger."},
    )
    assert ok.status_code == 303
    # the lead cannot decide; the approver cannot act as the reward officer
    assert (
        desk.post("lead", base + "/decide", {"role": "approver", "decision": "approve"}).status_code
        == 404
    )
    assert (
        desk.post(
            "approver", base + "/decide", {"role": "reward_officer", "decision": "approve"}
        ).status_code
        == 404
    )
    listing = desk.get("approver", "/workspace/rewards")
    assert listing.status_code == 200 and f"{case_id}/reward" in listing.text
    assert desk.get("stranger", "/workspace/rewards").status_code == 404
    assert (
        desk.post(
            "approver", base + "/decide", {"role": "approver", "decision": "approve"}
        ).status_code
        == 303
    )
    officer_page = desk.get("officer", base)
    assert "Key ledger." in officer_page.text
    assert (
        desk.post(
            "officer", base + "/decide", {"role": "reward_officer", "decision": "approve"}
        ).status_code
        == 303
    )
    # the reporter sees the decision and claims with the receipt code
    reporter = desk.anonymous()
    reporter.headers["accept-language"] = "en"
    sign_in(reporter, code)
    follow, csrf, _ids = case_page(reporter)
    assert "A reward was granted to you" in follow.text and "Claim your reward" in follow.text
    claimed = reporter.post(
        "/follow-up/reward-claim",
        data={
            "_csrf_token": csrf,
            "case_id": case_id,
            "name": "Reporter Zhou",
            "payment": "ICBC 6222 1234",
        },
        follow_redirects=False,
    )
    assert claimed.status_code == 303
    follow, _csrf, _ids = case_page(reporter)
    assert "Claim your reward" not in follow.text
    assert "Reporter Zhou" in desk.get("officer", base).text
    assert "Reporter Zhou" not in desk.get("lead", base).text

    async def reward_views() -> list[tuple[str | None, str]]:
        async with services.db.read() as s:
            rows = await s.execute(
                select(AuditEntry.actor_user_id, AuditEntry.detail).where(
                    AuditEntry.action == "case.view_reward", AuditEntry.case_id == case_id
                )
            )
            return [(a, d) for a, d in rows.all()]

    # every view of the reward page is audited; reading the reporter's claim says so (A5)
    views = run(client, reward_views)
    assert (desk.user_id("officer"), "claim=read") in views
    assert (desk.user_id("lead"), "claim=no") in views
    assert all(d == "claim=no" for a, d in views if a != desk.user_id("officer"))
    assert desk.post("officer", base + "/pay", {"reference": "TRX-7"}).status_code == 303
    assert "TRX-7" in desk.get("officer", base).text
    with_paid = desk.get("lead", base)
    assert "Paid" in with_paid.text
