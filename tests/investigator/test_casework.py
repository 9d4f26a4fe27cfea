"""Workspace I rules at the domain level: keys follow the originals rule (A2, A3, C4)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import select

import portal.case.sealing as case_sealing
import portal.reporter.followup as reporter_followup
import portal.reporter.submission as reporter_submission
from crypto.recipients import unlock_with_password
from investigator.domain import casework
from investigator.domain.casefile import NoKey, open_identity, staff_key
from investigator.domain.inbox import list_cases
from investigator.domain.staff import add_user
from investigator.policy import Principal, can_view_case
from investigator.roles import roles_of
from portal.kernel.db.models import Case, KeyWrap, User
from portal.kernel.services import Services
from portal.reporter.intake import parse_report
from tests.conftest import appoint_readers

PW = "correct horse battery staple 42"


async def staff(
    services: Services, name: str, roles: str, department: str | None = None
) -> tuple[User, bytes]:
    new = await add_user(
        services.db,
        services.argon2,
        pepper=services.keyring.password_pepper,
        username=name,
        display_name=name.title(),
        roles=roles,
        department=department,
        password=PW,
    )
    return new.user, unlock_with_password(
        new.user.sealed_private_by_password, PW, services.keyring.password_pepper
    )


def principal(user: User) -> Principal:
    return Principal(user.id, roles_of(user.roles), user.department_id)


async def submit_real_name(services: Services) -> tuple[str, str]:
    parsed = parse_report(
        {
            "kind": ["report"],
            "identity_mode": ["real_name"],
            "category": ["bribery"],
            "relation": ["employee"],
            "what": ["The purchasing head takes cash from suppliers."],
            "declaration": ["yes"],
            "id_name": ["举报人甲"],
            "id_phone": ["13800000000"],
            "subject_name": ["采购部负责人"],
        },
        ["bribery"],
    )
    assert parsed.report is not None, parsed.errors
    targets = reporter_submission.new_targets(["report"])
    await appoint_readers(services)  # a report is taken only once somebody can open it (C7)
    code, _ = await reporter_submission.submit(
        services, parsed.report, targets, [], "token-casework-abcdefgh"
    )
    return targets[0].case_id, code


@pytest.fixture
async def world(services: Services) -> dict[str, Any]:
    w: dict[str, Any] = {}
    for name, roles, dept in [
        ("intake", "intake_officer", None),
        ("lead", "team_lead,investigator", None),
        ("inv", "investigator", None),
        ("custodian", "identity_custodian", None),
        ("accused", "investigator,intake_officer", None),
        ("liaison", "department_liaison", "采购部"),
        ("other_liaison", "department_liaison", "财务部"),
    ]:
        w[name] = await staff(services, name, roles, dept)
    w["case_id"], w["code"] = await submit_real_name(services)
    return w


async def test_new_case_is_wrapped_for_intake_and_identity_for_custodians_only(
    services: Services, world: dict[str, Any]
) -> None:
    case_id = world["case_id"]
    async with services.db.read() as s:
        intake, ikey = world["intake"]
        assert len(await staff_key(s, case_id, intake.id, ikey)) == 32
        custodian, ckey = world["custodian"]
        assert (await open_identity(s, case_id, custodian.id, ckey))["name"] == "举报人甲"
        with pytest.raises(NoKey):
            await open_identity(s, case_id, intake.id, ikey)
        lead, lkey = world["lead"]
        with pytest.raises(NoKey):
            await staff_key(s, case_id, lead.id, lkey)


async def test_linking_a_subject_revokes_access_at_once(
    services: Services, world: dict[str, Any]
) -> None:
    case_id = world["case_id"]
    accused, akey = world["accused"]
    intake, ikey = world["intake"]
    async with services.db.read() as s:
        # the accused holds the intake role, so the new case was wrapped for them too
        assert await staff_key(s, case_id, accused.id, akey)
        assert await can_view_case(s, principal(accused), case_id)
        assert [c.id for c in await list_cases(s, principal(accused))] == [case_id]
    async with services.db.write() as s:
        case = await s.get(Case, case_id)
        key = await staff_key(s, case_id, intake.id, ikey)
        await casework.add_subject(
            s,
            services,
            case,
            key,
            intake.id,
            name="Accused",
            department="采购部",
            position="负责人",
            user_id=accused.id,
        )
    async with services.db.read() as s:
        with pytest.raises(NoKey):
            await staff_key(s, case_id, accused.id, akey)
        assert not await can_view_case(s, principal(accused), case_id)
        assert await list_cases(s, principal(accused)) == []
        wraps = (
            (await s.execute(select(KeyWrap).where(KeyWrap.user_id == accused.id))).scalars().all()
        )
        assert wraps == []
    async with services.db.write() as s:
        case = await s.get(Case, case_id)
        key = await staff_key(s, case_id, intake.id, ikey)
        with pytest.raises(casework.WorkflowError):
            await casework.add_member(
                s, case, key, intake.id, accused, "member", declared_no_conflict=True
            )


async def test_team_member_needs_a_declaration_and_removal_deletes_the_wrap(
    services: Services, world: dict[str, Any]
) -> None:
    case_id = world["case_id"]
    intake, ikey = world["intake"]
    lead, lkey = world["lead"]
    async with services.db.write() as s:
        case = await s.get(Case, case_id)
        key = await staff_key(s, case_id, intake.id, ikey)
        await casework.accept(s, case, intake.id)
        with pytest.raises(casework.WorkflowError):
            await casework.add_member(
                s, case, key, intake.id, lead, "lead", declared_no_conflict=False
            )
        await casework.add_member(s, case, key, intake.id, lead, "lead", declared_no_conflict=True)
    async with services.db.read() as s:
        assert await staff_key(s, case_id, lead.id, lkey) == key
        assert (await s.get(Case, case_id)).stage == "investigating"
    async with services.db.write() as s:
        await casework.remove_member(s, await s.get(Case, case_id), intake.id, lead.id)
    async with services.db.read() as s:
        with pytest.raises(NoKey):
            await staff_key(s, case_id, lead.id, lkey)


async def test_conflict_declaration_removes_the_case_everywhere(
    services: Services, world: dict[str, Any]
) -> None:
    case_id = world["case_id"]
    intake, ikey = world["intake"]
    async with services.db.write() as s:
        await casework.declare_conflict(s, case_id, intake.id)
    async with services.db.read() as s:
        assert await list_cases(s, principal(intake)) == []
        assert not await can_view_case(s, principal(intake), case_id)
        with pytest.raises(NoKey):
            await staff_key(s, case_id, intake.id, ikey)


async def test_transfer_refused_when_the_liaison_is_a_subject(
    services: Services, world: dict[str, Any]
) -> None:
    case_id = world["case_id"]
    intake, ikey = world["intake"]
    liaison, _ = world["liaison"]
    other, okey = world["other_liaison"]
    async with services.db.write() as s:
        case = await s.get(Case, case_id)
        key = await staff_key(s, case_id, intake.id, ikey)
        await casework.add_subject(
            s,
            services,
            case,
            key,
            intake.id,
            name="L",
            department="",
            position="",
            user_id=liaison.id,
        )
    async with services.db.write() as s:
        case = await s.get(Case, case_id)
        with pytest.raises(casework.WorkflowError, match="liaison"):
            await casework.transfer(
                s,
                services,
                case,
                intake.id,
                department_id=liaison.department_id,
                summary="Quality dispute",
                due_on=dt.date(2030, 1, 1),
            )
    async with services.db.write() as s:
        case = await s.get(Case, case_id)
        package, _pkey = await casework.transfer(
            s,
            services,
            case,
            intake.id,
            department_id=other.department_id,
            summary="请核实并报备",
            due_on=dt.date(2030, 1, 1),
        )
        package_id = package.id
    # the liaison can open the package summary, not the case
    from crypto.envelope import field_aad
    from crypto.recipients import unwrap_for_recipient
    from portal.kernel.db.models import PackageWrap, TransferPackage

    async with services.db.read() as s:
        wrap = (
            await s.execute(select(PackageWrap).where(PackageWrap.user_id == other.id))
        ).scalar_one()
        got = unwrap_for_recipient(
            okey, wrap.wrapped, field_aad(package_id, f"package-wrap:{other.id}")
        )
        pkg = await s.get(TransferPackage, package_id)
        assert case_sealing.open_json(
            got, pkg.sealed_summary, field_aad(package_id, "package-summary")
        ) == {"summary": "请核实并报备"}
        with pytest.raises(NoKey):
            await staff_key(s, case_id, other.id, okey)


async def test_identity_disclosure_flow(services: Services, world: dict[str, Any]) -> None:
    case_id = world["case_id"]
    intake, ikey = world["intake"]
    lead, lkey = world["lead"]
    custodian, ckey = world["custodian"]
    async with services.db.write() as s:
        case = await s.get(Case, case_id)
        key = await staff_key(s, case_id, intake.id, ikey)
        await casework.accept(s, case, intake.id)
        await casework.add_member(s, case, key, intake.id, lead, "lead", declared_no_conflict=True)
        req = await casework.request_identity(
            s, services, case, key, lead.id, "We need to interview the reporter in person."
        )
        req_id = req.id
    async with services.db.read() as s:
        with pytest.raises(NoKey):
            await open_identity(s, case_id, lead.id, lkey)
    async with services.db.write() as s:
        from portal.kernel.db.models import IdentityRequest

        req = await s.get(IdentityRequest, req_id)
        with pytest.raises(casework.WorkflowError):
            await casework.decide_identity(s, req, lead.id, lkey, approve=True)
    async with services.db.write() as s:
        req = await s.get(IdentityRequest, req_id)
        await casework.decide_identity(s, req, custodian.id, ckey, approve=True, tell_reporter=True)
    async with services.db.read() as s:
        assert (await open_identity(s, case_id, lead.id, lkey))["phone"] == "13800000000"
    access = await reporter_followup.sign_in_with_receipt(services, world["code"])
    assert access is not None
    view = (await reporter_followup.reporter_view(services, access))[0]
    assert "identity_disclosed" in [e.kind for e in view.events]
