"""Rewards at the domain level (W11): eligibility, bounds, as many different approvers outside
the team as the amount needs (each with a sealed opinion), the order proposal, approval, claim,
payment, the reporter's sealed claim readable by reward officers only."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

import portal.reporter.followup as reporter_followup
from investigator.domain import rewards
from investigator.policy import may_act_on_case
from portal.case.errors import WorkflowError
from portal.kernel.db.models import AuditEntry, Case, CaseEvent, KeyWrap, Reward, RewardDecision
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
        ("approver2", "approver"),
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


async def _decide(
    services: Services, w: dict[str, Any], who: str, ok: bool, opinion: str = "Fair amount."
) -> None:
    async with services.db.write() as s:
        reward = await rewards.reward_of(s, w["case_id"])
        assert reward is not None
        user, key = w[who]
        await rewards.decide(s, services, reward, user.id, key, approve=ok, opinion=opinion)


async def _claim(services: Services, w: dict[str, Any]) -> None:
    access = await reporter_followup.sign_in_with_receipt(services, w["code"])
    assert access is not None
    await reporter_rewards.reporter_claim(
        services, access, w["case_id"], name="举报人甲", contact="138", payment="6222 0000"
    )


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


def test_approvals_needed_by_amount(services: Services) -> None:
    settings = services.settings
    assert [rewards.approvals_needed(settings, a) for a in (2000, 10000, 10001, 50000)] == [
        1,
        1,
        2,
        2,
    ]
    from portal.kernel.settings import Settings, SettingsError

    tiered = Settings.from_env(
        {"PORTAL_MODE": "test", "PORTAL_REWARD_APPROVALS": "5000:1,20000:2,3"}
    )
    assert [rewards.approvals_needed(tiered, a) for a in (5000, 5001, 20001)] == [1, 2, 3]
    always_two = Settings.from_env({"PORTAL_MODE": "test", "PORTAL_REWARD_APPROVALS": "2"})
    assert always_two.reward_approvals == ((None, 2),)
    for bad in ("10000:1", "a:1,2", "10000:1,5000:2,3", "10000:0,2", "10000:1,9"):
        with pytest.raises(SettingsError):
            Settings.from_env({"PORTAL_MODE": "test", "PORTAL_REWARD_APPROVALS": bad})


async def test_two_approvers_above_the_threshold_then_claim_then_payment(
    services: Services, world: Any
) -> None:
    await conclude(services, world, world["case_id"])
    await _propose(services, world, 20000)
    # policy: the team lead may propose, not approve; approvers may decide
    async with services.db.read() as s:
        cid = world["case_id"]
        assert await may_act_on_case(s, principal(world["lead"][0]), cid, "propose_reward")
        assert not await may_act_on_case(s, principal(world["lead"][0]), cid, "approve_reward")
        assert await may_act_on_case(s, principal(world["approver"][0]), cid, "approve_reward")
        assert await may_act_on_case(s, principal(world["officer"][0]), cid, "manage_reward")
        assert not await may_act_on_case(s, principal(world["officer"][0]), cid, "propose_reward")
    with pytest.raises(WorkflowError):  # a team member, whatever their roles
        await _decide(services, world, "lead", True)
    with pytest.raises(WorkflowError):  # an opinion goes with every decision
        await _decide(services, world, "approver", True, opinion=" ")
    await _decide(services, world, "approver", True, opinion="Contribution was decisive.")
    with pytest.raises(WorkflowError):  # the same approver twice
        await _decide(services, world, "approver", True)
    async with services.db.read() as s:
        reward = await rewards.reward_of(s, world["case_id"])
        assert reward is not None and reward.status == "proposed"  # 20,000 RMB needs two
    await _decide(services, world, "approver2", True, opinion="Agreed.")
    officer, officer_key = world["officer"]
    async with services.db.write() as s:
        reward = await rewards.reward_of(s, world["case_id"])
        assert reward is not None and reward.status == "approved"
        views = await rewards.decision_views(s, reward, officer.id, officer_key)
        assert [(v.decider, v.approve, v.opinion) for v in views] == [
            ("Approver", True, "Contribution was decisive."),
            ("Approver2", True, "Agreed."),
        ]
        assert all(v.decided_on == reward.decided_on for v in views)
        # the payment comes after the reporter's claim, never before
        with pytest.raises(WorkflowError, match="not claimed"):
            await rewards.record_payment(
                s, services, reward, officer.id, officer_key, reference="TRX-2026-0042"
            )
        assert reward.status == "approved"
        assert reward not in await rewards.pending_for(s, officer.id, frozenset({"reward_officer"}))
    await _claim(services, world)
    async with services.db.write() as s:
        reward = await rewards.reward_of(s, world["case_id"])
        assert reward is not None
        assert reward in await rewards.pending_for(s, officer.id, frozenset({"reward_officer"}))
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
                    select(CaseEvent)
                    .where(CaseEvent.case_id == world["case_id"], CaseEvent.public.is_(True))
                    .order_by(CaseEvent.id)
                )
            ).scalars()
        ]
        opinions = (await s.execute(select(RewardDecision.sealed_opinion))).scalars().all()
    # the reporter's timeline reads in the right order
    tail = [k for k in public if k.startswith("reward_")]
    assert tail == ["reward_approved", "reward_claimed", "reward_paid"]
    assert all(b"decisive" not in o and b"Agreed" not in o for o in opinions)  # sealed


async def test_one_approver_up_to_the_threshold_never_the_proposer(
    services: Services, world: Any
) -> None:
    await conclude(services, world, world["case_id"])
    await _propose(services, world, 10000)
    async with services.db.write() as s:
        reward = await rewards.reward_of(s, world["case_id"])
        assert reward is not None
        lead, lead_key = world["lead"]
        with pytest.raises(WorkflowError):  # the proposer never decides
            await rewards.decide(s, services, reward, lead.id, lead_key, approve=True, opinion="x")
    await _decide(services, world, "both", True)
    async with services.db.read() as s:
        reward = await rewards.reward_of(s, world["case_id"])
        assert reward is not None and reward.status == "approved"


async def test_a_refusal_ends_the_proposal_and_the_reporter_sees_it(
    services: Services, world: Any
) -> None:
    await conclude(services, world, world["case_id"])
    await _propose(services, world)
    await _decide(services, world, "approver2", False, opinion="Not enough recovered.")
    with pytest.raises(WorkflowError):
        await _decide(services, world, "approver", True)
    access = await reporter_followup.sign_in_with_receipt(services, world["code"])
    assert access is not None
    views = await reporter_followup.reporter_view(services, access)
    assert "reward_refused" in [e.kind for e in views[0].events]
    # the team may propose again
    reward = await _propose(services, world, 3000)
    assert reward.status == "proposed"
    async with services.db.read() as s:
        # the refused round no longer counts; the refusal stays in the history
        assert await rewards.current_approvers(s, reward) == set()
    await _decide(services, world, "approver2", True)  # a new round: the same person may decide
    async with services.db.read() as s:
        again = await rewards.reward_of(s, world["case_id"])
        assert again is not None and again.status == "approved"


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
    await _decide(services, world, "approver", True)
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
    # the lead cannot decide; the reward officer does not decide any more (approvers do)
    approve = {"decision": "approve", "opinion": "The basis is convincing."}
    assert desk.post("lead", base + "/decide", approve).status_code == 404
    assert desk.post("officer", base + "/decide", approve).status_code == 404
    listing = desk.get("approver", "/workspace/rewards")
    assert listing.status_code == 200 and f"{case_id}/reward" in listing.text
    assert desk.get("stranger", "/workspace/rewards").status_code == 404
    # the approver's page offers the decision with an opinion; no opinion, no decision
    assert 'name="opinion"' in desk.get("approver", base).text
    bare = desk.post("approver", base + "/decide", {"decision": "approve", "opinion": ""})
    assert bare.status_code == 400 and "Give your opinion" in bare.text
    decided = desk.post("approver", base + "/decide", approve)
    assert decided.status_code == 303
    assert decided.headers["location"] == base + "?saved=decided"
    confirmed = desk.get("approver", decided.headers["location"])
    assert "Your decision and opinion were recorded." in confirmed.text
    # 8,000 RMB: one approval is enough; the decision names who decided, when and why
    officer_page = desk.get("officer", base)
    assert "Key ledger." in officer_page.text
    assert "The basis is convincing." in officer_page.text
    assert "Approver" in officer_page.text and "Approved, waiting for the reporter" in (
        officer_page.text.replace("&#39;", "'")
    )
    # no payment form (and no payment) before the reporter's claim
    assert 'action="' + base + '/pay"' not in officer_page.text
    early = desk.post("officer", base + "/pay", {"reference": "TRX-0"})
    assert early.status_code == 400 and "not claimed" in early.text
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
