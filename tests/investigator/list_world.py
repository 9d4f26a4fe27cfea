"""A workspace of cases for the list tests, written straight into the database (fast), with
staff signed in through the real flow (``Desk``). The clock is fixed on Monday 2026-11-02.

Cases (number -> what matters):

    A  received, web, bribery, no severity, initial review due Wed 11-04 (2 working days: ok)
    B  triage, phone, fraud, high, initial review due Fri 10-23 (6 working days late)
    C  received, letter, bribery, low, no deadline
    D  investigating, wechat, fraud, critical; team lead + inv; investigation due Thu 11-05
       (3 working days, 62 % used: warning); an extension requested by the lead; a pending
       identity request by inv; the reporter wrote last
    E  received, web, bribery, overdue (due 10-28); intake2 declared a conflict on it
    F  investigating, web, fraud; team lead + inv, but inv is named as its subject; the
       reporter wrote last
    G  approval, a submitted handling plan; team lead
    G2 approval, a submitted handling plan; the approver declared a conflict on it
    H  concluded, reward proposed by the lead
    I  concluded, reward approved, awaiting payment
    J  transferred to 采购部 with a package for the liaison, not yet reported back
    K  independent channel, approval, a submitted handling plan; team lead: the independent
       reviewer approves it, never the centre's approver
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field

from sqlalchemy import select

from portal.kernel import clock
from portal.kernel.db.models import (
    STAGE_CHANGES,
    Case,
    CaseDeadline,
    Conflict,
    Department,
    HandlingPlan,
    IdentityRequest,
    Message,
    PackageWrap,
    Reward,
    Subject,
    TeamMember,
    TransferPackage,
)
from portal.kernel.services import Services
from tests.investigator.ws_helpers import Desk, run

TODAY = dt.date(2026, 11, 2)  # a Monday
_numbers = itertools.count(1)


def fix_clock() -> Iterator[None]:
    moment = dt.datetime(2026, 11, 2, 10, 0, tzinfo=clock.SHANGHAI)
    clock.set_clock(lambda: moment)
    yield
    clock.set_clock(None)


@dataclass
class World:
    desk: Desk
    ids: dict[str, str] = field(default_factory=dict)  # letter -> case id
    numbers: dict[str, str] = field(default_factory=dict)  # letter -> case number

    def letter_of(self, number: str) -> str:
        return {v: k for k, v in self.numbers.items()}[number]


STAFF = (
    ("intake", "intake_officer", None),
    ("intake2", "intake_officer", None),
    ("lead", "team_lead,investigator", None),
    ("inv", "investigator", None),
    ("approver", "approver", None),
    ("custodian", "identity_custodian", None),
    ("rewards", "reward_officer", None),
    ("liaison", "department_liaison", "采购部"),
    ("admin", "administrator", None),
    ("reviewer", "independent_reviewer", None),
)


def build(desk: Desk) -> World:
    for name, roles, department in STAFF:
        desk.add(name, roles, department=department)
    world = World(desk)
    run(desk.client, lambda: _fill(desk.services, desk, world))
    return world


def _case(
    world: World, letter: str, stage: str, channel: str, category: str, severity: str | None,
    received: dt.date, department_id: str | None = None,
) -> Case:  # fmt: skip
    number = f"2611{next(_numbers):06d}"
    case = Case(
        number=number,
        kind="report",
        channel=channel,
        category=category,
        reporter_relation="employee",
        anonymous=True,
        stage=stage,
        severity=severity,
        received_on=received,
        department_id=department_id,
        content=b"sealed",
    )
    world.numbers[letter] = number
    return case


def deadline(case: Case, stage: str, starts: dt.date, due: dt.date, **kw: object) -> CaseDeadline:
    values: dict[str, object] = {
        "paused_days": 0,
        "extended": False,
        "extension_days": 0,
        "notice_level": 0,
        **kw,
    }
    return CaseDeadline(
        case_id=case.id,
        stage=stage,
        unit="working_days",
        amount=3,
        starts_on=starts,
        due_on=due,
        **values,
    )


def member(case: Case, user_id: str, function: str = "member") -> TeamMember:
    return TeamMember(
        case_id=case.id,
        user_id=user_id,
        function=function,
        no_conflict_declared_at=dt.datetime(2026, 10, 1, tzinfo=dt.UTC),
    )


def message(case: Case, author: str, seq: int) -> Message:
    return Message(
        case_id=case.id, author=author, sealed=b"x", created_on=dt.date(2026, 10, 30), seq=seq
    )


def plan(case: Case, author: str) -> HandlingPlan:
    return HandlingPlan(
        case_id=case.id,
        version=1,
        status="submitted",
        author_id=author,
        sealed=b"x",
        submitted_at=dt.datetime(2026, 10, 29, 2, 0, tzinfo=dt.UTC),
    )


def reward(case: Case, proposer: str, status: str = "proposed") -> Reward:
    return Reward(
        case_id=case.id,
        status=status,
        amount=5000,
        recovered_amount=100000,
        sealed_basis=b"x",
        proposed_by=proposer,
        proposed_on=dt.date(2026, 10, 20),
        decided_on=dt.date(2026, 10, 25) if status == "approved" else None,
    )


async def _fill(services: Services, desk: Desk, world: World) -> None:
    uid = desk.user_id
    d = dt.date
    async with services.db.write() as s:
        dept = (
            await s.execute(select(Department.id).where(Department.name == "采购部"))
        ).scalar_one()
        cases = {
            "A": _case(world, "A", "received", "web", "bribery", None, d(2026, 10, 30)),
            "B": _case(world, "B", "triage", "phone", "fraud", "high", d(2026, 10, 20)),
            "C": _case(world, "C", "received", "letter", "bribery", "low", d(2026, 10, 1)),
            "D": _case(world, "D", "investigating", "wechat", "fraud", "critical", d(2026, 10, 9)),
            "E": _case(world, "E", "received", "web", "bribery", None, d(2026, 10, 23)),
            "F": _case(world, "F", "investigating", "web", "fraud", "medium", d(2026, 10, 9)),
            "G": _case(world, "G", "approval", "web", "fraud", "medium", d(2026, 9, 1)),
            "G2": _case(world, "G2", "approval", "web", "fraud", "medium", d(2026, 9, 2)),
            "H": _case(world, "H", "concluded", "web", "fraud", "medium", d(2026, 8, 1)),
            "I": _case(world, "I", "concluded", "web", "fraud", "medium", d(2026, 8, 2)),
            "J": _case(world, "J", "transferred", "web", "fraud", None, d(2026, 10, 26), dept),
            # about the centre itself (independent channel): approval by an independent reviewer
            "K": _case(world, "K", "approval", "web", "fraud", "medium", d(2026, 9, 3)),
        }
        cases["K"].independent = True
        s.add_all(cases.values())
        await s.flush()
        world.ids = {k: c.id for k, c in cases.items()}
        A, B, D, E, F = (cases[k] for k in "ABDEF")
        s.add_all(
            [
                deadline(A, "initial_review", d(2026, 10, 30), d(2026, 11, 4)),
                deadline(B, "initial_review", d(2026, 10, 20), d(2026, 10, 23)),
                deadline(
                    D, "investigation", d(2026, 10, 26), d(2026, 11, 5),
                    extension_status="requested", extension_requested_by=uid("lead"),
                    extension_days=5, handler_id=uid("lead"),
                ),
                # a deadline already met does not count as the current one
                deadline(
                    D, "initial_review", d(2026, 10, 9), d(2026, 10, 14), met_on=d(2026, 10, 12)
                ),
                deadline(E, "initial_review", d(2026, 10, 23), d(2026, 10, 28)),
                deadline(F, "investigation", d(2026, 10, 26), d(2026, 11, 20)),
                Conflict(case_id=E.id, user_id=uid("intake2")),
                member(D, uid("lead"), "lead"),
                member(D, uid("inv")),
                member(F, uid("lead"), "lead"),
                member(F, uid("inv")),
                Subject(case_id=F.id, sealed=b"x", user_id=uid("inv")),
                member(cases["G"], uid("lead"), "lead"),
                member(cases["G2"], uid("lead"), "lead"),
                plan(cases["G"], uid("lead")),
                plan(cases["G2"], uid("lead")),
                Conflict(case_id=cases["G2"].id, user_id=uid("approver")),
                member(cases["K"], uid("lead"), "lead"),
                plan(cases["K"], uid("lead")),
                member(cases["H"], uid("lead"), "lead"),
                member(cases["I"], uid("lead"), "lead"),
                reward(cases["H"], uid("lead")),
                reward(cases["I"], uid("lead"), "approved"),
                IdentityRequest(case_id=D.id, requester_id=uid("inv"), sealed_reason=b"x"),
                message(D, "reporter", 1),
                message(F, "staff", 1),
                message(F, "reporter", 2),
                # A: the staff answered last: nothing waits
                message(A, "reporter", 1),
                message(A, "staff", 2),
            ]
        )  # fmt: skip
        package = TransferPackage(
            case_id=cases["J"].id,
            department_id=dept,
            created_by=uid("lead"),
            created_on=d(2026, 10, 27),
            due_on=d(2026, 11, 10),
            sealed_summary=b"x",
        )
        s.add(package)
        await s.flush()
        s.add(PackageWrap(package_id=package.id, user_id=uid("liaison"), wrapped=b"x"))
        # the deadlines are the ones above, not those the stage hook would open at commit
        s.info.pop(STAGE_CHANGES, None)


async def add_plain_cases(services: Services, world: World, count: int, prefix: str) -> None:
    """``count`` more received cases (letters ``prefix0``, ``prefix1``...) for the pages."""
    async with services.db.write() as s:
        for i in range(count):
            s.add(
                _case(world, f"{prefix}{i}", "received", "web", "bribery", None,
                      dt.date(2026, 9, 1) + dt.timedelta(days=i))
            )  # fmt: skip
        await s.flush()
        s.info.pop(STAGE_CHANGES, None)
