"""investigator.policy: every rule, including the originals rule (A1, A2, A3)."""

from __future__ import annotations

import datetime as dt
import itertools

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from investigator import policy
from investigator.policy import CASE_ACTIONS, ROLE_ACTIONS, Principal
from investigator.roles import ROLES
from portal.kernel.db.models import (
    Case,
    Conflict,
    Department,
    KeyWrap,
    Subject,
    TeamMember,
    TransferPackage,
    User,
)
from portal.kernel.services import Services

ALL_ROLES = frozenset(ROLES)
_numbers = itertools.count(1)


async def _user(
    s: AsyncSession, name: str, roles: frozenset[str], dept: str | None = None
) -> Principal:
    user = User(
        username=name,
        display_name=name,
        roles=",".join(sorted(roles)),
        department_id=dept,
        password_hash="x",
        public_key=b"k",
        sealed_private_by_password=b"p",
        sealed_private_by_recovery=b"r",
    )
    s.add(user)
    await s.flush()
    return Principal(user.id, roles, dept)


async def _case(s: AsyncSession, stage: str = "investigation", dept: str | None = None) -> str:
    case = Case(
        number=f"2401{next(_numbers):04d}",
        kind="report",
        channel="web",
        category="fraud",
        reporter_relation="employee",
        anonymous=True,
        stage=stage,
        department_id=dept,
        received_on=dt.date(2024, 1, 2),
        content=b"sealed",
    )
    s.add(case)
    await s.flush()
    return case.id


async def _member(s: AsyncSession, case_id: str, p: Principal, function: str = "member") -> None:
    s.add(
        TeamMember(
            case_id=case_id,
            user_id=p.user_id,
            function=function,
            no_conflict_declared_at=dt.datetime.now(dt.UTC),
        )
    )
    await s.flush()


async def _subject(s: AsyncSession, case_id: str, p: Principal) -> None:
    s.add(Subject(case_id=case_id, sealed=b"name", user_id=p.user_id))
    await s.flush()


async def _allowed(s: AsyncSession, p: Principal, case_id: str) -> set[str]:
    return {a for a in CASE_ACTIONS if await policy.may_act_on_case(s, p, case_id, a)}


@pytest.fixture
async def s(services: Services):
    async with services.db.write() as session:
        yield session


async def _dept(s: AsyncSession, name: str) -> str:
    d = Department(name=name)
    s.add(d)
    await s.flush()
    return d.id


# --- role-level -----------------------------------------------------------------------


def test_role_actions() -> None:
    admin = Principal("a", frozenset({"administrator"}))
    auditor = Principal("b", frozenset({"auditor"}))
    intake = Principal("c", frozenset({"intake_officer"}))
    nobody = Principal("d", frozenset())
    assert policy.can(admin, "manage_users") and policy.can(admin, "manage_settings")
    assert not policy.can(admin, "read_audit") and not policy.can(admin, "list_cases")
    assert policy.can(auditor, "read_audit") and policy.can(auditor, "view_statistics")
    assert not policy.can(auditor, "manage_users") and not policy.can(auditor, "list_cases")
    assert policy.can(intake, "triage") and policy.can(intake, "view_inbox")
    assert not policy.can(intake, "manage_users")
    assert not any(policy.can(nobody, a) for a in ROLE_ACTIONS)
    assert not policy.can(Principal("e", ALL_ROLES), "no_such_action")
    every = Principal("e", ALL_ROLES)
    assert all(policy.can(every, a) for a in ROLE_ACTIONS)


# --- case-level -----------------------------------------------------------------------


async def test_team_member_and_lead(s: AsyncSession) -> None:
    case = await _case(s)
    member = await _user(s, "member", frozenset({"investigator"}))
    lead = await _user(s, "lead", frozenset({"team_lead"}))
    outsider = await _user(s, "outsider", frozenset({"investigator", "team_lead"}))
    await _member(s, case, member)
    await _member(s, case, lead, "lead")
    assert await _allowed(s, member, case) == {
        "view",
        "view_original",
        "add_note",
        "message_reporter",
        "request_identity",
        "manage_deadline",
        "manage_protection",
        "investigate",
    }
    assert {
        "manage_team",
        "transfer",
        "manage_subjects",
        "handle",
        "investigate",
    } <= await _allowed(s, lead, case)
    assert await _allowed(s, outsider, case) == set()
    assert await policy.can_view_case(s, member, case)
    assert not await policy.can_view_case(s, outsider, case)


async def test_intake_officer_only_during_intake(s: AsyncSession) -> None:
    intake = await _user(s, "intake", frozenset({"intake_officer"}))
    for stage in ("received", "triage"):
        case = await _case(s, stage)
        assert await _allowed(s, intake, case) == {
            "view",
            "triage",
            "add_note",
            "message_reporter",
            "manage_team",
            "transfer",
            "manage_subjects",
            "manage_protection",
        }
    later = await _case(s, "investigation")
    assert await _allowed(s, intake, later) == set()


async def test_subject_holding_every_role_is_denied_everything(s: AsyncSession) -> None:
    dept = await _dept(s, "Sales")
    case = await _case(s, "received", dept)
    accused = await _user(s, "accused", ALL_ROLES, dept)
    # even as lead of the team, with an identity key wrap
    await _member(s, case, accused, "lead")
    s.add(KeyWrap(case_id=case, scope="identity", user_id=accused.user_id, wrapped=b"w"))
    await _subject(s, case, accused)
    assert await _allowed(s, accused, case) == set()
    assert not await policy.can_view_case(s, accused, case)
    assert await policy.is_excluded(s, accused, case)
    for clause in (
        await policy.excluded_case_ids_clause(accused),
        await policy.visible_cases_clause(accused),
    ):
        ids = list((await s.execute(select(Case.id).where(clause))).scalars())
        assert case not in ids
        count = (await s.execute(select(func.count()).select_from(Case).where(clause))).scalar()
        assert count == 0


async def test_conflicted_team_lead_is_denied(s: AsyncSession) -> None:
    case = await _case(s)
    lead = await _user(s, "lead", frozenset({"team_lead", "investigator"}))
    await _member(s, case, lead, "lead")
    assert "manage_team" in await _allowed(s, lead, case)
    s.add(Conflict(case_id=case, user_id=lead.user_id))
    await s.flush()
    assert await _allowed(s, lead, case) == set()
    clause = await policy.excluded_case_ids_clause(lead)
    assert list((await s.execute(select(Case.id).where(clause))).scalars()) == []


async def test_adding_a_subject_revokes_at_once(s: AsyncSession) -> None:
    case = await _case(s)
    other = await _case(s)
    member = await _user(s, "member", frozenset({"investigator"}))
    await _member(s, case, member)
    await _member(s, other, member)
    visible = await policy.visible_cases_clause(member)
    assert set((await s.execute(select(Case.id).where(visible))).scalars()) == {case, other}
    await _subject(s, case, member)
    assert not await policy.can_view_case(s, member, case)
    visible = await policy.visible_cases_clause(member)
    assert set((await s.execute(select(Case.id).where(visible))).scalars()) == {other}
    excluded = await policy.excluded_case_ids_clause(member)
    assert set((await s.execute(select(Case.id).where(excluded))).scalars()) == {other}


async def test_administrator_never_reads_content(s: AsyncSession) -> None:
    admin = await _user(s, "admin", frozenset({"administrator"}))
    for stage in ("received", "triage", "investigation", "approval", "transferred"):
        case = await _case(s, stage)
        assert await _allowed(s, admin, case) == set()
    visible = await policy.visible_cases_clause(admin)
    assert list((await s.execute(select(Case.id).where(visible))).scalars()) == []


async def test_auditor_reads_no_content(s: AsyncSession) -> None:
    auditor = await _user(s, "auditor", frozenset({"auditor"}))
    for stage in ("received", "investigation", "approval"):
        case = await _case(s, stage)
        assert await _allowed(s, auditor, case) == set()
    assert policy.can(auditor, "read_audit")


async def test_department_liaison_sees_only_own_transfers(s: AsyncSession) -> None:
    sales = await _dept(s, "Sales")
    it = await _dept(s, "IT")
    liaison = await _user(s, "liaison", frozenset({"department_liaison"}), sales)
    own = await _case(s, "transferred", sales)
    foreign = await _case(s, "transferred", it)
    not_yet = await _case(s, "investigation", sales)
    assert await _allowed(s, liaison, own) == {"view_transfer"}
    assert await _allowed(s, liaison, foreign) == set()
    assert await _allowed(s, liaison, not_yet) == set()
    assert not await policy.can_view_case(s, liaison, own)
    # a liaison named as subject gets not even the transfer package
    await _subject(s, own, liaison)
    assert await _allowed(s, liaison, own) == set()
    # a liaison without a department sees nothing
    loose = await _user(s, "loose", frozenset({"department_liaison"}))
    assert await _allowed(s, loose, foreign) == set()


async def test_approver(s: AsyncSession) -> None:
    approver = await _user(s, "approver", frozenset({"approver"}))
    pending = await _case(s, "approval")
    # decide_withdrawal: a reporter's request to withdraw the report, at any stage (issue 18)
    assert await _allowed(s, approver, pending) == {
        "view",
        "approve_plan",
        "approve_extension",
        "decide_withdrawal",
    }
    running = await _case(s, "investigation")
    assert await _allowed(s, approver, running) == {"decide_withdrawal"}
    handling = await _case(s, "investigating")
    assert await _allowed(s, approver, handling) == {"approve_extension", "decide_withdrawal"}
    # nobody approves their own team's plan, nor decides a withdrawal on it
    await _member(s, pending, approver)
    assert "approve_plan" not in await _allowed(s, approver, pending)
    assert "approve_extension" not in await _allowed(s, approver, pending)
    assert "decide_withdrawal" not in await _allowed(s, approver, pending)


async def test_identity_custodian_and_disclosure(s: AsyncSession) -> None:
    case = await _case(s)
    custodian = await _user(s, "custodian", frozenset({"identity_custodian"}))
    assert await _allowed(s, custodian, case) == {"decide_identity", "view_identity"}
    member = await _user(s, "member", frozenset({"investigator", "identity_custodian"}))
    await _member(s, case, member)
    assert "decide_identity" not in await _allowed(s, member, case)  # four eyes
    investigator = await _user(s, "inv", frozenset({"investigator"}))
    await _member(s, case, investigator)
    assert "view_identity" not in await _allowed(s, investigator, case)
    s.add(KeyWrap(case_id=case, scope="identity", user_id=investigator.user_id, wrapped=b"w"))
    await s.flush()
    assert "view_identity" in await _allowed(s, investigator, case)


async def test_reward_officer(s: AsyncSession) -> None:
    case = await _case(s, "closed")
    officer = await _user(s, "reward", frozenset({"reward_officer"}))
    assert await _allowed(s, officer, case) == {"manage_reward"}


async def test_destroyed_missing_and_unknown(s: AsyncSession) -> None:
    case = await _case(s)
    member = await _user(s, "member", frozenset(ALL_ROLES - {"administrator"}))
    await _member(s, case, member, "lead")
    assert await policy.may_act_on_case(s, member, case, "view")
    assert not await policy.may_act_on_case(s, member, case, "delete_everything")
    assert not await policy.may_act_on_case(s, member, "no-such-case", "view")
    row = (await s.execute(select(Case).where(Case.id == case))).scalar_one()
    row.destroyed_on = dt.date(2024, 6, 1)
    await s.flush()
    assert await _allowed(s, member, case) == set()


# --- transfer and subjects: who decides them is policy, not the handlers ----------------------

INTAKE = frozenset({"intake_officer"})
LEAD = frozenset({"team_lead", "investigator"})


async def _relate(s: AsyncSession, case_id: str, p: Principal, relation: str) -> None:
    """none, member, lead, subject (as lead: the subject rule wins), conflict (as lead)."""
    if relation in ("member", "lead"):
        await _member(s, case_id, p, relation)
    if relation in ("subject", "conflict"):
        await _member(s, case_id, p, "lead")
    if relation == "subject":
        await _subject(s, case_id, p)
    if relation == "conflict":
        s.add(Conflict(case_id=case_id, user_id=p.user_id))
        await s.flush()


@pytest.mark.parametrize(
    ("roles", "relation", "stage", "expected"),
    [
        (INTAKE, "none", "received", True),
        (INTAKE, "none", "triage", True),
        (INTAKE, "none", "investigating", False),
        (INTAKE, "subject", "triage", False),
        (INTAKE, "conflict", "triage", False),
        (LEAD, "lead", "investigating", True),
        (LEAD, "member", "investigating", False),
        (LEAD, "none", "investigating", False),
        (LEAD, "subject", "investigating", False),
        (LEAD, "conflict", "investigating", False),
        (frozenset({"approver"}), "none", "approval", False),
        (frozenset({"administrator"}), "none", "triage", False),
        (frozenset({"auditor"}), "none", "triage", False),
        (frozenset({"department_liaison"}), "none", "transferred", False),
        (ALL_ROLES, "none", "triage", True),
        (ALL_ROLES, "subject", "triage", False),
        (ALL_ROLES, "conflict", "triage", False),
    ],
)
async def test_transfer_and_subjects_by_role_and_relation(
    s: AsyncSession, roles: frozenset[str], relation: str, stage: str, expected: bool
) -> None:
    case = await _case(s, stage)
    person = await _user(s, f"p{next(_numbers)}", roles)
    await _relate(s, case, person, relation)
    for action in ("transfer", "manage_subjects"):
        assert await policy.may_act_on_case(s, person, case, action) is expected, action
    # the handlers' former rule, "triage or manage_team", gives the same answers
    former = await policy.permissions(s, person, case, ("triage", "manage_team"))
    assert (former["triage"] or former["manage_team"]) is expected


async def _package(s: AsyncSession, case_id: str, creator: Principal) -> str:
    dept = await _dept(s, f"Dept {next(_numbers)}")
    package = TransferPackage(
        case_id=case_id,
        department_id=dept,
        created_by=creator.user_id,
        created_on=dt.date(2024, 1, 3),
        due_on=dt.date(2024, 2, 3),
        sealed_summary=b"sealed",
    )
    s.add(package)
    await s.flush()
    return package.id


@pytest.mark.parametrize(
    ("roles", "relation", "creator", "expected"),
    [
        (INTAKE, "none", True, True),  # the case has left intake: the creator still may
        (LEAD, "lead", True, True),
        (LEAD, "member", True, True),
        (INTAKE, "none", False, False),  # another intake officer
        (LEAD, "lead", False, False),  # the lead who did not write it
        (ALL_ROLES, "none", False, False),
        (INTAKE, "subject", True, False),  # named as subject after writing it
        (LEAD, "subject", True, False),
        (LEAD, "conflict", True, False),
        (frozenset({"department_liaison"}), "none", False, False),
    ],
)
async def test_prepare_package_by_role_and_relation(
    s: AsyncSession, roles: frozenset[str], relation: str, creator: bool, expected: bool
) -> None:
    case = await _case(s, "investigating")
    person = await _user(s, f"p{next(_numbers)}", roles)
    writer = person if creator else await _user(s, f"w{next(_numbers)}", INTAKE)
    package = await _package(s, case, writer)
    await _relate(s, case, person, relation)
    assert await policy.may_act_on_package(s, person, package, "prepare_package") is expected


async def test_prepare_package_missing_destroyed_and_unknown(s: AsyncSession) -> None:
    case = await _case(s, "transferred")
    writer = await _user(s, "writer", INTAKE)
    package = await _package(s, case, writer)
    assert await policy.may_act_on_package(s, writer, package, "prepare_package")
    assert not await policy.may_act_on_package(s, writer, package, "delete_everything")
    assert not await policy.may_act_on_package(s, writer, "no-such-package", "prepare_package")
    assert not await policy.may_act_on_case(s, writer, case, "prepare_package")
    row = (await s.execute(select(Case).where(Case.id == case))).scalar_one()
    row.destroyed_on = dt.date(2024, 6, 1)
    await s.flush()
    assert not await policy.may_act_on_package(s, writer, package, "prepare_package")


LIAISON = frozenset({"department_liaison"})


@pytest.mark.parametrize(
    ("roles", "same_department", "stage", "relation", "expected"),
    [
        (LIAISON, True, "transferred", "none", True),
        (LIAISON, False, "transferred", "none", False),  # another department's liaison
        (LIAISON, True, "investigating", "none", False),  # not (or no longer) transferred
        (LIAISON, True, "transferred", "subject", False),  # the liaison is the accused
        (LIAISON, True, "transferred", "conflict", False),
        (INTAKE, True, "transferred", "none", False),  # same department, not its liaison
        (ALL_ROLES - LIAISON, True, "transferred", "none", False),
    ],
)
async def test_receive_package_by_department_stage_and_relation(
    s: AsyncSession,
    roles: frozenset[str],
    same_department: bool,
    stage: str,
    relation: str,
    expected: bool,
) -> None:
    dept = await _dept(s, f"Dept {next(_numbers)}")
    other = await _dept(s, f"Dept {next(_numbers)}")
    case = await _case(s, stage, dept=dept)
    writer = await _user(s, f"w{next(_numbers)}", INTAKE)
    package = TransferPackage(
        case_id=case,
        department_id=dept,
        created_by=writer.user_id,
        created_on=dt.date(2024, 1, 3),
        due_on=dt.date(2024, 2, 3),
        sealed_summary=b"sealed",
    )
    s.add(package)
    await s.flush()
    person = await _user(s, f"l{next(_numbers)}", roles, dept if same_department else other)
    if relation == "subject":
        await _subject(s, case, person)
    if relation == "conflict":
        s.add(Conflict(case_id=case, user_id=person.user_id))
        await s.flush()
    got = await policy.may_act_on_package(s, person, package.id, "receive_package")
    assert got is expected
    # the package's writer never receives it as a department would
    assert not await policy.may_act_on_package(s, writer, package.id, "receive_package")
