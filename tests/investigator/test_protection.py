"""Protections at the domain level (W12): sealed protection plan, leniency records with the
internal-discipline statement, and the retaliation case visible to the original team."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import select

import portal.reporter.followup as reporter_followup
from investigator.domain import protection
from investigator.domain.casefile import staff_key
from investigator.domain.inbox import list_cases
from investigator.policy import can_view_case, may_act_on_case
from portal.case.errors import WorkflowError
from portal.kernel.db.models import AuditEntry, Case, ProtectionPlan
from portal.kernel.services import Services
from tests.investigator.test_casework import principal, staff
from tests.investigator.test_retention import conclude, fixed_clock, submit  # noqa: F401


@pytest.fixture
async def world(services: Services) -> dict[str, Any]:
    w: dict[str, Any] = {}
    for name, roles in [
        ("intake", "intake_officer"),
        ("lead", "team_lead,investigator"),
        ("outsider", "investigator"),
    ]:
        w[name] = await staff(services, name, roles)
    w["case_id"], w["code"] = await submit(services, "The purchasing head takes cash.")
    return w


async def test_protection_plan_is_sealed_and_audited(services: Services, world: Any) -> None:
    intake, intake_key = world["intake"]
    cid = world["case_id"]
    async with services.db.write() as s:
        assert await may_act_on_case(s, principal(intake), cid, "manage_protection")
        assert not await may_act_on_case(
            s, principal(world["outsider"][0]), cid, "manage_protection"
        )
        case = await s.get(Case, cid)
        assert case is not None
        key = await staff_key(s, cid, intake.id, intake_key)
        with pytest.raises(WorkflowError):
            await protection.save_plan(
                s,
                services,
                case,
                key,
                intake.id,
                risk="extreme",
                assessment="x",
                contact="",
                monitor_until=None,
                measures="",
            )
        await protection.save_plan(
            s,
            services,
            case,
            key,
            intake.id,
            risk="high",
            assessment="The subject is the reporter's line manager.",
            contact="王老师 (HR)",
            monitor_until=dt.date(2027, 3, 1),
            measures="Monthly check-in; no change of role without review.",
        )
    async with services.db.read() as s:
        row = await s.get(ProtectionPlan, cid)
        case = await s.get(Case, cid)
        assert row is not None and case is not None and case.risk == "high"
        assert b"manager" not in row.sealed
        plan = await protection.open_plan(s, cid, key)
        actions = list((await s.execute(select(AuditEntry.action))).scalars())
    assert plan is not None and plan["contact"] == "王老师 (HR)"
    assert plan["monitor_until"] == "2027-03-01"
    assert "protection.plan" in actions


async def test_leniency_records(services: Services, world: Any) -> None:
    intake, intake_key = world["intake"]
    cid = world["case_id"]
    async with services.db.write() as s:
        case = await s.get(Case, cid)
        assert case is not None
        key = await staff_key(s, cid, intake.id, intake_key)
        with pytest.raises(WorkflowError):  # an employee gets no business guarantee
            await protection.add_leniency(
                s,
                services,
                case,
                key,
                intake.id,
                party="employee",
                measure="business_guarantee",
                person="张三",
                reason="cooperated",
            )
        await protection.add_leniency(
            s,
            services,
            case,
            key,
            intake.id,
            party="supplier",
            measure="business_guarantee",
            person="某供应商",
            reason="Gave the ledger.",
        )
        await protection.add_leniency(
            s,
            services,
            case,
            key,
            intake.id,
            party="employee",
            measure="no_punishment",
            person="张三",
            reason="Reported own part first.",
        )
        records = await protection.list_leniency(s, cid, key)
    assert sorted((r.party, r.measure) for r in records) == [
        ("employee", "no_punishment"),
        ("supplier", "business_guarantee"),
    ]
    assert all("internal discipline only" in r.statement for r in records)


async def test_retaliation_case_is_visible_to_the_original_team(
    services: Services, world: Any
) -> None:
    await conclude(services, world, world["case_id"])
    lead = world["lead"][0]
    outsider = world["outsider"][0]
    access = await reporter_followup.sign_in_with_receipt(services, world["code"])
    assert access is not None
    new_id = await reporter_followup.report_retaliation(
        services, access, world["case_id"], "I was demoted."
    )
    async with services.db.read() as s:
        new = await s.get(Case, new_id)
        assert new is not None and new.urgent and new.retaliation_of == world["case_id"]
        assert await can_view_case(s, principal(lead), new_id)
        assert not await can_view_case(s, principal(outsider), new_id)
        # the lead holds the key (granted when the report came in) and sees it in lists
        await staff_key(s, new_id, lead.id, world["lead"][1])
        linked = await protection.retaliation_cases(s, world["case_id"])
        listed = await list_cases(s, principal(lead))
        outsider_listed = await list_cases(s, principal(outsider))
    assert [c.id for c in linked] == [new_id]
    assert new_id in {c.id for c in listed}
    assert new_id not in {c.id for c in outsider_listed}


# --- through the real app ---------------------------------------------------------------------


def test_protection_pages_through_the_app(client: Any, services: Services) -> None:
    from tests.investigator.ws_helpers import Desk, run, submit_case

    desk = Desk(client, services)
    desk.add("intake", "intake_officer")
    desk.add("stranger", "investigator")
    case_id, _code = run(
        client, lambda: submit_case(services, with_files=False, token="pr-" + "b" * 20)
    )
    base = f"/workspace/cases/{case_id}/protection"
    assert desk.get("stranger", base).status_code == 404
    page = desk.get("intake", base)
    assert page.status_code == 200 and "No protection plan has been recorded" in page.text
    assert "internal discipline only" in page.text
    bad = desk.post(
        "intake", base + "/plan", {"risk": "high", "assessment": "x", "monitor_until": "soon"}
    )
    assert bad.status_code == 400
    saved = desk.post(
        "intake",
        base + "/plan",
        {
            "risk": "high",
            "assessment": "Line manager is the subject.",
            "contact": "HR contact Wang",
            "monitor_until": "2027-01-31",
            "measures": "Monthly check-in.",
        },
    )
    assert saved.status_code == 303
    lenient = desk.post(
        "intake",
        base + "/leniency",
        {
            "measure": "employee:reduced_punishment",
            "person": "Clerk Li",
            "reason": "Gave the ledger.",
        },
    )
    assert lenient.status_code == 303
    wrong = desk.post(
        "intake",
        base + "/leniency",
        {"measure": "employee:business_guarantee", "person": "X", "reason": "y"},
    )
    assert wrong.status_code == 400
    page = desk.get("intake", base)
    assert "HR contact Wang" in page.text and "Clerk Li" in page.text and "2027-01-31" in page.text
    assert (
        desk.post("stranger", base + "/plan", {"risk": "low", "assessment": "x"}).status_code == 404
    )
