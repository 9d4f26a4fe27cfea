"""Handling plans, approval, conclusion and follow-up (W7 to W9) at the domain level."""

from __future__ import annotations

import datetime as dt
import html
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import TestClient
from sqlalchemy import select

import portal.case.sealing as case_sealing
import portal.reporter.followup as reporter_followup
from crypto.envelope import field_aad
from investigator.domain import casework, handling, rehandling
from investigator.domain.casefile import NoKey, staff_key
from investigator.policy import may_act_on_case
from portal.case.errors import WorkflowError
from portal.kernel import clock
from portal.kernel.db.models import (
    AuditEntry,
    Case,
    CaseDeadline,
    CaseEvent,
    HandlingPlan,
    Message,
    Note,
)
from portal.kernel.services import Services
from tests.investigator.test_casework import principal, staff, submit_real_name
from tests.investigator.ws_helpers import Desk, case_ids_on, run, submit_case
from tests.portal.test_reporter_journeys import case_page, sign_in

TZ = dt.timezone(dt.timedelta(hours=8))


def plan(analysis: str = "Cash was taken from two suppliers.") -> handling.PlanInput:
    return handling.PlanInput(
        analysis=analysis,
        persons=[
            handling.PersonInput("采购部负责人", "direct", ["dismissal", "judicial_referral"]),
            handling.PersonInput("部门经理", "leadership", ["warning"], "did not check"),
        ],
        timeline="Within 30 days.",
        not_heard_reason="He left the company and did not answer two written invitations.",
    )


@pytest.fixture
async def team(services: Services) -> dict[str, Any]:
    """A real-name case with a team (lead, member), an approver, a lead who is also an
    approver, an approver who is a subject, and a conflicted approver."""
    clock.set_clock(lambda: dt.datetime(2026, 3, 2, 10, 0, tzinfo=TZ))
    w: dict[str, Any] = {}
    for name, roles in [
        ("intake", "intake_officer"),
        ("lead", "team_lead,investigator,approver"),
        ("inv", "investigator"),
        ("approver", "approver"),
        ("accused", "approver"),
        ("conflicted", "approver"),
    ]:
        w[name] = await staff(services, name, roles)
    w["case_id"], w["code"] = await submit_real_name(services)
    intake, ikey = w["intake"]
    async with services.db.write() as s:
        case = await s.get(Case, w["case_id"])
        key = await staff_key(s, case.id, intake.id, ikey)
        await casework.accept(s, case, intake.id)
        await casework.add_member(
            s, case, key, intake.id, w["lead"][0], "lead", declared_no_conflict=True
        )
        await casework.add_member(
            s, case, key, intake.id, w["inv"][0], "member", declared_no_conflict=True
        )
        await casework.add_subject(
            s,
            services,
            case,
            key,
            intake.id,
            name="X",
            department="",
            position="",
            user_id=w["accused"][0].id,
        )
        await casework.declare_conflict(s, case.id, w["conflicted"][0].id)
    yield w
    clock.set_clock(None)


async def _as(services: Services, who: tuple[Any, bytes], case_id: str) -> tuple[Any, bytes]:
    async with services.db.read() as s:
        return who[0], await staff_key(s, case_id, who[0].id, who[1])


async def test_versions_kept_submit_return_resubmit_approve(
    services: Services, team: dict[str, Any]
) -> None:
    case_id = team["case_id"]
    lead, lkey = team["lead"]
    approver, akey = team["approver"]
    async with services.db.write() as s:
        case = await s.get(Case, case_id)
        key = await staff_key(s, case_id, lead.id, lkey)
        assert case.stage == "investigating"
        await handling.save_plan(s, services, case, key, lead.id, plan("first"))
        await handling.save_plan(s, services, case, key, lead.id, plan("second"))
        assert case.stage == "handling"
        await handling.submit_plan(s, case, key, lead.id)
        assert case.stage == "approval"
    # the approver received the key on submission and may decide; nobody on the team may
    async with services.db.read() as s:
        assert await may_act_on_case(s, principal(approver), case_id, "approve_plan")
        assert not await may_act_on_case(s, principal(lead), case_id, "approve_plan")
        for name in ("accused", "conflicted"):
            user, ukey = team[name]
            assert not await may_act_on_case(s, principal(user), case_id, "approve_plan")
            assert not await may_act_on_case(s, principal(user), case_id, "view")
            with pytest.raises(NoKey):
                await staff_key(s, case_id, user.id, ukey)
    async with services.db.write() as s:
        case = await s.get(Case, case_id)
        key = await staff_key(s, case_id, approver.id, akey)
        # the lead holds the approver role too, but never approves their own team's plan
        with pytest.raises(WorkflowError):
            await handling.decide_plan(s, services, case, key, lead.id, approve=True, comments="")
        with pytest.raises(WorkflowError):  # returning needs comments
            await handling.decide_plan(
                s, services, case, key, approver.id, approve=False, comments=" "
            )
        await handling.decide_plan(
            s, services, case, key, approver.id, approve=False, comments="Add the fine amount."
        )
        assert case.stage == "handling"
    async with services.db.read() as s:
        assert not await may_act_on_case(s, principal(approver), case_id, "view")
    async with services.db.write() as s:
        case = await s.get(Case, case_id)
        key = await staff_key(s, case_id, lead.id, lkey)
        with pytest.raises(WorkflowError):  # the returned version cannot be submitted again
            await handling.submit_plan(s, case, key, lead.id)
        await handling.save_plan(s, services, case, key, lead.id, plan("third"))
        await handling.submit_plan(s, case, key, lead.id)
    async with services.db.write() as s:
        case = await s.get(Case, case_id)
        key = await staff_key(s, case_id, approver.id, akey)
        await handling.decide_plan(s, services, case, key, approver.id, approve=True, comments="")
        assert case.stage == "implementing"
        state = await handling.handling_state(s, case_id, key)
        rows = (
            (await s.execute(select(HandlingPlan).where(HandlingPlan.case_id == case_id)))
            .scalars()
            .all()
        )
    assert [(p.version, p.status, p.analysis) for p in state.plans] == [
        (3, "approved", "third"),
        (2, "returned", "second"),
        (1, "draft", "first"),
    ]
    assert state.plans[1].comments == "Add the fine amount."
    assert state.plans[0].persons[0]["measures"] == ["dismissal", "judicial_referral"]
    # sealed: nothing of the plan is in a plaintext column
    assert all(
        b"second" not in r.sealed and b"fine amount" not in (r.sealed_decision or b"") for r in rows
    )
    async with services.db.read() as s:
        actions = [
            a.action
            for a in (
                await s.execute(select(AuditEntry).where(AuditEntry.case_id == case_id))
            ).scalars()
        ]
    for action in ("plan.save", "plan.submit", "plan.return", "plan.approve"):
        assert action in actions


async def test_plan_validation(services: Services, team: dict[str, Any]) -> None:
    lead, key = await _as(services, team["lead"], team["case_id"])
    bad = [
        handling.PlanInput(" ", [], ""),
        handling.PlanInput("a", [handling.PersonInput("", "direct", ["warning"])], ""),
        handling.PlanInput("a", [handling.PersonInput("p", "vague", ["warning"])], ""),
        handling.PlanInput("a", [handling.PersonInput("p", "main", [])], ""),
        handling.PlanInput("a", [handling.PersonInput("p", "main", ["flogging"])], ""),
    ]
    async with services.db.write() as s:
        case = await s.get(Case, team["case_id"])
        for p in bad:
            with pytest.raises(WorkflowError):
                await handling.save_plan(s, services, case, key, lead.id, p)
        with pytest.raises(WorkflowError):  # nothing saved yet
            await handling.submit_plan(s, case, key, lead.id)


async def test_conclusion_reaches_the_reporter_and_rehandling_reopens(
    services: Services, team: dict[str, Any]
) -> None:
    case_id = team["case_id"]
    lead, key = await _as(services, team["lead"], case_id)
    inv, ikey = await _as(services, team["inv"], case_id)
    approver, akey = team["approver"]
    async with services.db.write() as s:
        case = await s.get(Case, case_id)
        with pytest.raises(WorkflowError):  # substantiated needs approved, carried-out measures
            await handling.conclude(
                s, services, case, key, lead.id, outcome="substantiated", process="p", feedback="f"
            )
        await handling.save_plan(s, services, case, key, lead.id, plan())
        await handling.submit_plan(s, case, key, lead.id)
    async with services.db.write() as s:
        case = await s.get(Case, case_id)
        akey2 = await staff_key(s, case_id, approver.id, akey)
        await handling.decide_plan(
            s, services, case, akey2, approver.id, approve=True, comments="ok"
        )
    async with services.db.write() as s:
        case = await s.get(Case, case_id)
        await handling.record_implementation(s, services, case, ikey, inv.id, "Contract ended.")
        with pytest.raises(WorkflowError):
            await handling.conclude(
                s, services, case, key, lead.id, outcome="maybe", process="p", feedback="f"
            )
        await handling.conclude(
            s,
            services,
            case,
            key,
            lead.id,
            outcome="substantiated",
            process="Interviews and ledgers confirmed the payments.",
            feedback="Your report was confirmed and the person was dismissed.",
        )
        assert (case.stage, case.outcome, case.closed_on) == (
            "concluded",
            "substantiated",
            dt.date(2026, 3, 2),
        )
    access = await reporter_followup.sign_in_with_receipt(services, team["code"])
    assert access is not None
    [view] = await reporter_followup.reporter_view(services, access)
    assert view.stage == "concluded"
    kinds = [e.kind for e in view.events]
    for kind in (
        "handling_started",
        "plan_submitted",
        "plan_approved",
        "measures_implemented",
        "concluded:substantiated",
    ):
        assert kind in kinds
    assert "plan_returned" not in kinds and "plan_saved" not in kinds
    assert view.messages[-1].body == "Your report was confirmed and the person was dismissed."
    assert view.messages[-1].on == dt.date(2026, 3, 2)  # the same day: within the 2-day deadline

    # the survey: answers are shown to the team; re-handling reopens the case for the same team
    await reporter_followup.reporter_feedback(
        services, access, case_id, "dissatisfied", "Too slow."
    )
    await reporter_followup.reporter_feedback(
        services, access, case_id, "rehandling_requested", "Others too."
    )
    async with services.db.write() as s:
        case = await s.get(Case, case_id)
        assert case.stage == "reopened"
        assert await may_act_on_case(s, principal(lead), case_id, "handle")
        assert await may_act_on_case(s, principal(inv), case_id, "investigate")
        state = await handling.handling_state(s, case_id, key)
        assert [(a.kind, a.text) for a in state.survey] == [
            ("dissatisfied", "Too slow."),
            ("rehandling_requested", "Others too."),
        ]
        assert len(state.plans) == 1 and len(state.conclusions) == 1  # the history stays
        with pytest.raises(WorkflowError):
            await handling.record_implementation(s, services, case, ikey, inv.id, "x")
        with pytest.raises(WorkflowError):  # W9: a named handler from the team
            await rehandling.resume(s, case, lead.id, "")
        await rehandling.resume(s, case, lead.id, inv.id)
        assert case.stage == "investigating" and case.closed_on is None
        await handling.save_plan(s, services, case, key, lead.id, plan("second round"))
        assert case.stage == "handling"
        events = (
            (await s.execute(select(CaseEvent.kind).where(CaseEvent.case_id == case_id)))
            .scalars()
            .all()
        )
        assert "rehandling_started" in events


async def test_unsubstantiated_may_conclude_without_a_plan(
    services: Services, team: dict[str, Any]
) -> None:
    case_id = team["case_id"]
    lead, key = await _as(services, team["lead"], case_id)
    inv, _ikey = await _as(services, team["inv"], case_id)
    async with services.db.read() as s:
        assert not await may_act_on_case(s, principal(inv), case_id, "handle")
    async with services.db.write() as s:
        case = await s.get(Case, case_id)
        await handling.conclude(
            s,
            services,
            case,
            key,
            lead.id,
            outcome="unsubstantiated",
            process="Ledgers checked; nothing found.",
            feedback="We could not confirm the facts.",
        )
        msg = (await s.execute(select(Message).where(Message.case_id == case_id))).scalars().one()
        assert msg.author == "staff"
        body = case_sealing.open_json(key, msg.sealed, field_aad(case_id, f"message:{msg.id}"))
        assert body["text"] == "We could not confirm the facts."
        with pytest.raises(WorkflowError):  # concluded: no new plan
            await handling.save_plan(s, services, case, key, lead.id, plan())


# --- through the real app --------------------------------------------------------------------


@pytest.fixture
def desk(client: TestClient[Litestar], services: Services) -> Desk:
    d = Desk(client, services)
    d.add("intake", "intake_officer")
    d.add("lead", "team_lead,investigator,approver")
    d.add("inv", "investigator")
    d.add("approver", "approver")
    d.add("accused", "approver")
    return d


PLAN_FORM = {
    "analysis": "Cash was taken from two suppliers.",
    "person_name": ["采购部负责人", ""],
    "person_responsibility": ["direct", "main"],
    "person_0_measure": ["dismissal", "judicial_referral"],
    "person_detail": ["", ""],
    "timeline": "Within 30 days.",
    "not_heard_reason": "He left the company and did not answer two written invitations.",
}


def http_team_case(desk: Desk, token: str) -> tuple[str, str]:
    case_id, code = run(desk.client, lambda: submit_case(desk.services, token=token))
    assert (
        desk.post(
            "intake", f"/workspace/cases/{case_id}/accept", {"expected_stage": "received"}
        ).status_code
        == 303
    )
    for actor, name, function in (("intake", "lead", "lead"), ("lead", "inv", "member")):
        r = desk.post(
            actor,
            f"/workspace/cases/{case_id}/team/add",
            {"user_id": desk.user_id(name), "function": function, "declared_no_conflict": "yes"},
        )
        assert r.status_code == 303, r.text
    r = desk.post(
        "lead",
        f"/workspace/cases/{case_id}/subjects/add",
        {"name": "Accused", "department": "", "position": "", "user_id": desk.user_id("accused")},
    )
    assert r.status_code == 303, r.text
    return str(case_id), str(code)


def _stage(desk: Desk, case_id: str) -> str:
    async def get() -> str:
        async with desk.services.db.read() as s:
            case = await s.get(Case, case_id)
            assert case is not None
            return case.stage

    return str(run(desk.client, get))


def test_plan_approval_conclusion_and_rehandling_through_the_app(desk: Desk) -> None:
    case_id, code = http_team_case(desk, "token-handling-http-0001")
    base = f"/workspace/cases/{case_id}/handling"
    # only the lead writes the plan; a member may not
    assert desk.post("inv", f"{base}/plan", PLAN_FORM).status_code == 404
    empty = desk.post("lead", f"{base}/plan", {**PLAN_FORM, "analysis": ""})
    assert empty.status_code == 400 and "Write the problem analysis." in empty.text
    assert desk.post("lead", f"{base}/plan", PLAN_FORM).status_code == 303
    assert _stage(desk, case_id) == "handling"
    # not yet in approval: the approver cannot even see the case
    assert desk.get("approver", base).status_code == 404
    assert desk.post("lead", f"{base}/submit").status_code == 303
    assert _stage(desk, case_id) == "approval"

    page = desk.get("approver", base)
    assert page.status_code == 200 and "Cash was taken from two suppliers." in page.text
    assert "Approve the plan" in page.text
    # the lead holds the approver role, but their own team's plan: 404; the subject: 404
    assert desk.post("lead", f"{base}/decide", {"decision": "approve"}).status_code == 404
    assert desk.get("accused", base).status_code == 404
    assert desk.post("accused", f"{base}/decide", {"decision": "approve"}).status_code == 404
    no_comment = desk.post("approver", f"{base}/decide", {"decision": "return"})
    assert no_comment.status_code == 400
    r = desk.post("approver", f"{base}/decide", {"decision": "return", "comments": "Fine amount?"})
    assert r.status_code == 303 and _stage(desk, case_id) == "handling"
    assert desk.get("approver", base).status_code == 404
    # the decision ended the approval stage and the approver's view of the case with it: they
    # are sent to the case list with a notice, not to the handling page's 404
    assert r.headers["location"] == "/workspace/cases?done=plan_decided"
    listing = desk.get("approver", r.headers["location"])
    assert listing.status_code == 200 and "Your decision on the handling plan" in listing.text
    assert case_id not in case_ids_on(listing.text)

    page = desk.get("lead", base)
    assert "Fine amount?" in page.text and "Returned with comments" in page.text
    second = {**PLAN_FORM, "person_1_measure": ["fine"], "person_name": ["采购部负责人", "经理"]}
    assert desk.post("lead", f"{base}/plan", second).status_code == 303
    assert desk.post("lead", f"{base}/submit").status_code == 303
    r = desk.post("approver", f"{base}/decide", {"decision": "approve"})
    assert r.status_code == 303 and r.headers["location"] == "/workspace/cases?done=plan_decided"
    assert _stage(desk, case_id) == "implementing"

    async def versions() -> list[tuple[int, str]]:
        async with desk.services.db.read() as s:
            rows = await s.execute(
                select(HandlingPlan.version, HandlingPlan.status)
                .where(HandlingPlan.case_id == case_id)
                .order_by(HandlingPlan.version)
            )
            return [(v, st) for v, st in rows.all()]

    assert run(desk.client, versions) == [(1, "returned"), (2, "approved")]

    impl = desk.post("inv", f"{base}/implementation", {"text": "The contract was ended."})
    assert impl.status_code == 303
    assert desk.post("inv", f"{base}/conclude", {"outcome": "substantiated"}).status_code == 404
    r = desk.post(
        "lead",
        f"{base}/conclude",
        {
            "outcome": "substantiated",
            "process": "Ledgers and interviews.",
            "feedback": "Your report was confirmed; the person responsible was dismissed.",
        },
    )
    assert r.status_code == 303 and _stage(desk, case_id) == "concluded"

    # the reporter sees the conclusion in plain words, then asks for re-handling
    client = desk.anonymous()
    assert sign_in(client, code).status_code == 303
    followup, token, [cid] = case_page(client)
    text = html.unescape(followup.text)
    assert "Concluded: your report was found to be true." in text
    assert "the person responsible was dismissed." in text
    assert "How was your report handled?" in text
    # the re-handling deadline runs from the reopening: on a day the calendar covers
    clock.set_clock(lambda: dt.datetime(2026, 6, 1, 10, 0, tzinfo=TZ))
    r = client.post(
        "/follow-up/feedback",
        data={
            "_csrf_token": token,
            "case_id": cid,
            "kind": "rehandling_requested",
            "text": "Others took money too.",
        },
        follow_redirects=False,
    )
    clock.set_clock(None)
    assert r.status_code == 303
    assert _stage(desk, case_id) == "reopened"

    # back with its team, history intact, the survey answer readable there
    page = desk.get("lead", base)
    assert page.status_code == 200
    assert (
        "Others took money too." in page.text and "Not satisfied: asks for re-handling" in page.text
    )
    assert "Version 2" in page.text and "Ledgers and interviews." in page.text
    # W9: the reopening opened a re-handling deadline; the lead names who handles it again
    assert "Re-handling is due on 2026-07-01" in page.text and 'name="handler_id"' in page.text
    inv_id = desk.user_id("inv")
    assert desk.post("inv", f"{base}/resume", {"handler_id": inv_id}).status_code == 404
    unnamed = desk.post("lead", f"{base}/resume", {"handler_id": ""})
    assert unnamed.status_code == 400 and "Name the team member" in unnamed.text
    assert desk.post("lead", f"{base}/resume", {"handler_id": inv_id}).status_code == 303
    assert _stage(desk, case_id) == "investigating"

    async def rehandling() -> list[tuple[str | None, bool]]:
        async with desk.services.db.read() as s:
            rows = await s.execute(
                select(CaseDeadline.handler_id, CaseDeadline.met_on.is_(None)).where(
                    CaseDeadline.case_id == case_id, CaseDeadline.stage == "rehandling"
                )
            )
            return [(h, bool(o)) for h, o in rows.all()]

    assert run(desk.client, rehandling) == [(inv_id, True)]
    shown = desk.get("lead", base).text
    assert "Re-handling by Inv, due on 2026-07-01" in shown
    client = desk.anonymous()
    sign_in(client, code)
    followup, _t, _ids = case_page(client)
    assert "Your case is being handled again" in html.unescape(followup.text)


async def test_role_rules_for_the_new_actions(services: Services, team: dict[str, Any]) -> None:
    """investigate: members; handle: the lead; approve_plan: an approver off the team, in the
    approval stage only; a subject or a conflicted person: nothing at all."""
    case_id = team["case_id"]
    intake = team["intake"][0]
    lead, inv, approver = team["lead"][0], team["inv"][0], team["approver"][0]
    accused, conflicted = team["accused"][0], team["conflicted"][0]
    expected = {
        "investigating": {
            "investigate": {lead.id, inv.id},
            "handle": {lead.id},
            "approve_plan": set(),
        },
        "approval": {
            "investigate": {lead.id, inv.id},
            "handle": {lead.id},
            "approve_plan": {approver.id},
        },
    }
    for stage, rules in expected.items():
        async with services.db.write() as s:
            case = await s.get(Case, case_id)
            assert case is not None
            case.stage = stage
        async with services.db.read() as s:
            for action, allowed_ids in rules.items():
                got = {
                    u.id
                    for u in (intake, lead, inv, approver, accused, conflicted)
                    if await may_act_on_case(s, principal(u), case_id, action)
                }
                assert got == allowed_ids, (stage, action)
            assert not await may_act_on_case(s, principal(accused), case_id, "view")
            assert not await may_act_on_case(s, principal(conflicted), case_id, "view")


def test_pages_in_chinese(desk: Desk) -> None:
    case_id, _code = http_team_case(desk, "token-handling-http-zhcn")
    desk.use("lead")
    desk.client.headers["accept-language"] = "zh-CN"
    try:
        assert (
            desk.post("lead", f"/workspace/cases/{case_id}/handling/plan", PLAN_FORM).status_code
            == 303
        )
        page = desk.get("lead", f"/workspace/cases/{case_id}/handling")
        assert page.status_code == 200
        assert "处理方案" in page.text and "直接责任" in page.text and "移送司法机关" in page.text
        page = desk.get("lead", f"/workspace/cases/{case_id}/investigation")
        assert page.status_code == 200 and "调查计划" in page.text and "人员访谈" in page.text
    finally:
        desk.client.headers["accept-language"] = "en"


def test_an_approver_cannot_approve_a_plan_that_does_not_say_whether_the_accused_was_heard(
    desk: Desk,
) -> None:
    """The accused's side (issue 18): a plan cites the record of the person concerned's
    statement (被举报人陈述) or says why they were not heard; with neither it is refused at
    approval (400, the case stays in approval), and either one lets the approval through."""
    case_id, _code = http_team_case(desk, "token-handling-hearing-001")
    base = f"/workspace/cases/{case_id}/handling"
    silent = {**PLAN_FORM, "not_heard_reason": "", "heard_record": ""}
    assert desk.post("lead", f"{base}/plan", silent).status_code == 303
    assert desk.post("lead", f"{base}/submit").status_code == 303
    page = desk.get("approver", base)
    assert "it cannot be approved" in html.unescape(page.text)
    refused = desk.post("approver", f"{base}/decide", {"decision": "approve"})
    assert refused.status_code == 400
    assert "whether the person concerned was heard" in html.unescape(refused.text)
    assert _stage(desk, case_id) == "approval"
    returned = desk.post(
        "approver", f"{base}/decide", {"decision": "return", "comments": "Hear him first."}
    )
    assert returned.status_code == 303 and _stage(desk, case_id) == "handling"

    # a record of another kind, or of another case, is not a hearing
    records = f"/workspace/cases/{case_id}/investigation/records"
    client = desk.use("inv")
    for method, text in (
        ("document_review", "Ledgers read."),
        ("subject_statement", "采购部负责人 says the payments were loans."),
    ):
        r = client.post(
            records,
            data={"_csrf_token": desk.tokens["inv"], "method": method, "text": text},
            files={"file": ("", b"", "application/octet-stream")},
            follow_redirects=False,
        )
        assert r.status_code == 303, r.text

    async def notes() -> dict[str, str]:
        async with desk.services.db.read() as s:
            rows = await s.execute(
                select(Note.kind, Note.id).where(
                    Note.case_id == case_id, Note.kind.like("record:%")
                )
            )
            return {str(kind): str(nid) for kind, nid in rows.all()}

    ids = run(desk.client, notes)
    wrong = desk.post(
        "lead", f"{base}/plan", {**silent, "heard_record": ids["record:document_review"]}
    )
    assert wrong.status_code == 400 and "statement of the person concerned" in wrong.text
    heard = {**silent, "heard_record": ids["record:subject_statement"]}
    assert desk.post("lead", f"{base}/plan", heard).status_code == 303
    page = desk.get("lead", base)
    assert "采购部负责人 says the payments were loans." in html.unescape(page.text)
    assert desk.post("lead", f"{base}/submit").status_code == 303
    approved = desk.post("approver", f"{base}/decide", {"decision": "approve"})
    assert approved.status_code == 303, approved.text
    assert _stage(desk, case_id) == "implementing"
