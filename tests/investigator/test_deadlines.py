"""Stage deadlines (W10) and accountability counts (W15) with a FIXED clock, on 2025's
calendar: 国庆 Oct 1-8 with 调休 Sun Sep 28 and Sat Oct 11; 春节 Jan 28 - Feb 4."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import TestClient
from sqlalchemy import select, update

import portal.case.sealing as case_sealing
import portal.reporter.submission as reporter_submission
from crypto.envelope import field_aad
from crypto.recipients import unlock_with_password
from investigator.domain import calendar
from investigator.domain import deadline_clock as dclock
from investigator.domain import deadline_extension as extension
from investigator.domain import deadline_lists as dlists
from investigator.domain import deadline_notices as dnotices
from investigator.domain import deadline_rules as drules
from investigator.domain import deadlines as dl
from investigator.domain.calendar import (
    package_years,
    remove_override,
    set_override,
)
from investigator.domain.calendar_years import confirm_year, parse_schedule
from investigator.domain.casefile import staff_key
from investigator.domain.staff import add_user
from investigator.policy import Principal
from investigator.roles import roles_of
from portal.kernel import clock
from portal.kernel.db.models import (
    AuditEntry,
    Case,
    CaseDeadline,
    CaseEvent,
    DeadlinePause,
    Message,
    Subject,
    TeamMember,
    User,
)
from portal.kernel.services import Services
from portal.kernel.settings import Settings, SettingsError
from portal.reporter.intake import parse_report
from tests.conftest import appoint_readers
from tests.investigator.ws_helpers import Desk, run, submit_case, year_schedule

PW = "correct horse battery staple 42"
D = dt.date


def at(day: dt.date, hour: int = 10, minute: int = 0) -> None:
    moment = dt.datetime(day.year, day.month, day.day, hour, minute, tzinfo=clock.SHANGHAI)
    clock.set_clock(lambda: moment)


@pytest.fixture(autouse=True)
def fixed_clock() -> Iterator[None]:
    at(D(2025, 9, 26))  # a Friday before 国庆
    yield
    clock.set_clock(None)


async def staff(services: Services, name: str, roles: str) -> tuple[User, bytes]:
    new = await add_user(
        services.db,
        services.argon2,
        pepper=services.keyring.password_pepper,
        username=name,
        display_name=name.title(),
        roles=roles,
        password=PW,
    )
    return new.user, unlock_with_password(
        new.user.sealed_private_by_password, PW, services.keyring.password_pepper
    )


def principal(user: User) -> Principal:
    return Principal(user.id, roles_of(user.roles), user.department_id)


async def submit(services: Services, token: str, *, anonymous: bool = False) -> str:
    fields = {
        "kind": ["report"],
        "identity_mode": ["anonymous" if anonymous else "real_name"],
        "category": ["bribery"],
        "relation": ["employee"],
        "what": ["The purchasing head takes cash from suppliers."],
        "declaration": ["yes"],
    }
    if not anonymous:
        fields |= {"id_name": ["举报人甲"], "id_phone": ["13800000000"]}
    parsed = parse_report(fields, ["bribery"])
    assert parsed.report is not None, parsed.errors
    targets = reporter_submission.new_targets(["report"])
    await appoint_readers(services, custodian=not anonymous)  # only readers make a report (C7)
    await reporter_submission.submit(services, parsed.report, targets, [], token)
    return targets[0].case_id


@pytest.fixture
async def world(services: Services) -> dict[str, Any]:
    w: dict[str, Any] = {}
    for name, roles in [
        ("intake", "intake_officer"),
        ("boss", "team_lead"),
        ("lead", "team_lead,investigator"),
        ("approver", "approver"),
        ("team_approver", "approver,investigator"),
    ]:
        w[name] = await staff(services, name, roles)
    lead, boss = w["lead"][0], w["boss"][0]
    case_id = await submit(services, "token-deadlines-abcdefgh")
    async with services.db.write() as s:
        await s.execute(update(User).where(User.id == lead.id).values(superior_id=boss.id))
        for who, function in (("lead", "lead"), ("team_approver", "member")):
            s.add(
                TeamMember(
                    case_id=case_id,
                    user_id=w[who][0].id,
                    function=function,
                    no_conflict_declared_at=clock.now(),
                )
            )
        intake, ikey = w["intake"]
        key = await staff_key(s, case_id, intake.id, ikey)
        for who in ("lead", "team_approver"):
            case_sealing.grant_user(
                s, case_id, "case", key, await s.get(User, w[who][0].id), services.keyring.suite
            )
        case = await s.get(Case, case_id)
        assert case is not None
        await dl.on_stage_change(s, case, None, "received", intake.id)
    w["case_id"] = case_id
    return w


async def move(services: Services, case_id: str, stage: str, actor: str, **kw: Any) -> None:
    async with services.db.write() as s:
        case = await s.get(Case, case_id)
        assert case is not None
        old, case.stage = case.stage, stage
        await dl.on_stage_change(s, case, old, stage, actor, **kw)


async def deadline(services: Services, case_id: str, stage: str) -> CaseDeadline:
    async with services.db.read() as s:
        rows = (
            await s.execute(
                select(CaseDeadline)
                .where(CaseDeadline.case_id == case_id, CaseDeadline.stage == stage)
                .order_by(CaseDeadline.starts_on.desc())
            )
        ).scalars()
        return next(iter(rows))


async def test_each_stage_deadline_across_national_day(
    services: Services, world: dict[str, Any]
) -> None:
    case_id, lead = world["case_id"], world["lead"][0]
    # received Fri Sep 26: 3 working days, the start day not counted: Sun Sep 28 (调休), 29, 30
    review = await deadline(services, case_id, "initial_review")
    assert (review.starts_on, review.due_on, review.unit) == (
        D(2025, 9, 26),
        D(2025, 9, 30),
        "working_days",
    )
    # an urgent case in triage: 10 minutes to dispatch
    async with services.db.write() as s:
        await s.execute(update(Case).where(Case.id == case_id).values(urgent=True))
    await move(services, case_id, "triage", lead.id)
    urgent = await deadline(services, case_id, "urgent_dispatch")
    assert urgent.due_at is not None and urgent.started_at is not None
    assert urgent.due_at - urgent.started_at == dt.timedelta(minutes=10)
    at(D(2025, 9, 29))
    await move(services, case_id, "accepted", lead.id)
    review, urgent = (
        await deadline(services, case_id, "initial_review"),
        await deadline(services, case_id, "urgent_dispatch"),
    )
    assert review.met_on == D(2025, 9, 29) and not dclock.is_overdue(review, D(2025, 9, 29))
    assert urgent.met_on is not None and dclock.is_overdue(urgent, D(2025, 9, 29))  # days later
    handling = await deadline(services, case_id, "handling")
    assert (handling.unit, handling.due_on) == ("calendar_days", D(2025, 10, 29))
    assert handling.handler_id == lead.id
    await move(services, case_id, "investigating", lead.id)
    inv = await deadline(services, case_id, "investigation")
    # 15 working days from Mon Sep 29: Sep 30, Oct 9, 10, Sat 11 (调休), 13-17, 20-24, 27
    assert inv.due_on == D(2025, 10, 27)
    at(D(2025, 10, 30))  # Thursday
    await move(services, case_id, "concluded", lead.id)
    assert (await deadline(services, case_id, "investigation")).met_on == D(2025, 10, 30)
    feedback = await deadline(services, case_id, "feedback")
    # 2 calendar days end on Sat Nov 1: rolled to Mon Nov 3 (民法典 203)
    assert (feedback.unit, feedback.due_on) == ("calendar_days", D(2025, 11, 3))
    await move(services, case_id, "archived", lead.id)
    assert (await deadline(services, case_id, "feedback")).met_on == D(2025, 10, 30)


async def test_transfer_is_measured_from_receipt_in_working_days(
    services: Services, world: dict[str, Any]
) -> None:
    case_id, intake = world["case_id"], world["intake"][0]
    at(D(2025, 10, 10))
    await move(services, case_id, "transferred", intake.id)
    transfer = await deadline(services, case_id, "transfer")
    # Sep 28 (调休), 29, 30, Oct 9, Oct 10: the fifth working day, met on time
    assert (transfer.due_on, transfer.met_on) == (D(2025, 10, 10), D(2025, 10, 10))
    assert not dclock.is_overdue(transfer, D(2025, 10, 10))
    review = await deadline(services, case_id, "initial_review")
    assert review.met_on == D(2025, 10, 10) and dclock.is_overdue(review, D(2025, 10, 10))


async def test_anonymous_reporter_gets_no_feedback_deadline(
    services: Services, world: dict[str, Any]
) -> None:
    case_id = await submit(services, "token-deadlines-anonymous", anonymous=True)
    await move(services, case_id, "concluded", world["lead"][0].id)
    async with services.db.read() as s:
        stages = [d.stage for d in await dl.case_deadlines(s, case_id)]
    assert "feedback" not in stages


async def test_pauses_move_the_due_date(services: Services, world: dict[str, Any]) -> None:
    case_id, (lead, lkey) = world["case_id"], world["lead"]
    at(D(2025, 9, 29))
    await move(services, case_id, "investigating", lead.id)
    handling = await deadline(services, case_id, "handling")
    inv = await deadline(services, case_id, "investigation")
    assert (handling.due_on, inv.due_on) == (D(2025, 10, 29), D(2025, 10, 27))
    at(D(2025, 10, 10))
    async with services.db.write() as s:
        case = await s.get(Case, case_id)
        key = await staff_key(s, case_id, lead.id, lkey)
        for d in (await s.get(CaseDeadline, handling.id), await s.get(CaseDeadline, inv.id)):
            assert case is not None and d is not None
            await dl.pause(s, services, case, key, d, lead.id, "awaiting_reporter", "问举报人")
            with pytest.raises(drules.DeadlineError):
                await dl.pause(s, services, case, key, d, lead.id, "external_appraisal")
        with pytest.raises(drules.DeadlineError):
            await dl.pause(s, services, case, key, d, lead.id, "because")  # type: ignore[arg-type]
    at(D(2025, 10, 14))
    async with services.db.read() as s:
        paused = await s.get(CaseDeadline, inv.id)
        assert paused is not None
        cal = await calendar.load_calendar(s)
        frozen = dclock.progress(paused, D(2025, 10, 14), cal)
        assert frozen == dclock.progress(paused, D(2025, 10, 10), cal)  # the clock stood still
    async with services.db.write() as s:
        case = await s.get(Case, case_id)
        assert case is not None
        for d in (await s.get(CaseDeadline, handling.id), await s.get(CaseDeadline, inv.id)):
            assert d is not None
            await dl.resume(s, case, d, lead.id)
    handling = await deadline(services, case_id, "handling")
    inv = await deadline(services, case_id, "investigation")
    # calendar days: Oct 10-13 paused (4 days): Oct 29 + 4 = Sun Nov 2, rolled to Mon Nov 3
    assert (handling.paused_days, handling.due_on) == (4, D(2025, 11, 3))
    # working days: Oct 10 (Fri), Oct 11 (调休 Sat), Oct 13 (Mon) paused: 18 working days
    assert (inv.paused_days, inv.due_on) == (3, D(2025, 10, 30))
    async with services.db.read() as s:
        pauses = (await s.execute(select(DeadlinePause))).scalars().all()
        assert {p.reason for p in pauses} == {"awaiting_reporter"}
        assert all(p.ended_on == D(2025, 10, 14) for p in pauses)
        note = pauses[0].sealed_note
        assert note is not None and "问举报人".encode() not in note
        key = await staff_key(s, case_id, lead.id, lkey)
        opened = case_sealing.open_json(
            key, note, field_aad(case_id, f"deadline-pause:{pauses[0].id}")
        )
        assert opened == {"text": "问举报人"}
        audit = (
            (
                await s.execute(
                    select(AuditEntry.detail).where(AuditEntry.action == "deadline.pause")
                )
            )
            .scalars()
            .all()
        )
        assert len(audit) == 2 and all("reason=awaiting_reporter" in a for a in audit)


async def test_one_extension_of_at_most_30_days_approved_outside_the_team(
    services: Services, world: dict[str, Any]
) -> None:
    case_id, (lead, lkey) = world["case_id"], world["lead"]
    approver, team_approver = world["approver"][0], world["team_approver"][0]
    at(D(2025, 9, 29))
    await move(services, case_id, "accepted", lead.id)
    handling = await deadline(services, case_id, "handling")
    reason = "We are waiting for bank records from the auditors."
    async with services.db.write() as s:
        case = await s.get(Case, case_id)
        d = await s.get(CaseDeadline, handling.id)
        assert case is not None and d is not None
        key = await staff_key(s, case_id, lead.id, lkey)
        with pytest.raises(drules.DeadlineError):
            await extension.request_extension(s, services, case, key, d, lead.id, 31, reason)
        with pytest.raises(drules.DeadlineError):
            await extension.request_extension(s, services, case, key, d, lead.id, 10, "short")
        await extension.request_extension(s, services, case, key, d, lead.id, 20, reason)
        review = await s.get(CaseDeadline, (await deadline(services, case_id, "initial_review")).id)
        assert review is not None
        with pytest.raises(drules.DeadlineError):  # only handling may be extended
            await extension.request_extension(s, services, case, key, review, lead.id, 2, reason)
    async with services.db.write() as s:
        case = await s.get(Case, case_id)
        d = await s.get(CaseDeadline, handling.id)
        assert case is not None and d is not None
        assert [p.case_id for p in await extension.pending_extensions(s, approver)] == [case_id]
        assert await extension.pending_extensions(s, team_approver) == []
        with pytest.raises(drules.DeadlineError):  # an approver on the team
            await extension.approve_extension(s, case, d, team_approver.id, approve=True)
        with pytest.raises(drules.DeadlineError):  # not an approver at all
            await extension.approve_extension(s, case, d, lead.id, approve=True)
    async with services.db.write() as s:
        case = await s.get(Case, case_id)
        d = await s.get(CaseDeadline, handling.id)
        assert case is not None and d is not None
        await extension.approve_extension(s, case, d, approver.id, approve=True)
        assert d.extended and d.due_on == D(2025, 11, 18)  # Oct 29 + 20 days
        with pytest.raises(drules.DeadlineError):
            await extension.request_extension(s, services, case, key, d, lead.id, 5, reason)
    async with services.db.read() as s:
        events = (
            (await s.execute(select(CaseEvent).where(CaseEvent.case_id == case_id))).scalars().all()
        )
        assert [e.kind for e in events if e.public and e.kind == "extended"] == ["extended"]
        msg = (await s.execute(select(Message).where(Message.case_id == case_id))).scalar_one()
        key = await staff_key(s, case_id, lead.id, lkey)
        opened = case_sealing.open_json(key, msg.sealed, field_aad(case_id, f"message:{msg.id}"))
        assert opened == {"text": reason}  # the reporter reads the reason
        actions = (await s.execute(select(AuditEntry.action))).scalars().all()
        assert "deadline.extension_requested" in actions
        assert "deadline.extension_approved" in actions


async def test_warnings_at_50_and_80_percent_and_overdue_each_recorded_once(
    services: Services, world: dict[str, Any]
) -> None:
    case_id, lead, boss = world["case_id"], world["lead"][0], world["boss"][0]
    at(D(2025, 9, 29))
    await move(services, case_id, "accepted", lead.id)  # handling: due Oct 29 (30 days)

    async def notices(day: dt.date) -> list[tuple[str, int]]:
        at(day)
        async with services.db.write() as s:
            found = await dnotices.due_notices(s)
        return [(n.stage, n.level) for n in found]

    assert await notices(D(2025, 10, 13)) == []  # 14/30
    assert await notices(D(2025, 10, 14)) == [("handling", 50)]  # 15/30
    assert await notices(D(2025, 10, 14)) == []
    assert await notices(D(2025, 10, 22)) == []  # 23/30
    assert await notices(D(2025, 10, 23)) == [("handling", 80)]  # 24/30
    assert await notices(D(2025, 10, 29)) == []  # the due day itself is not late
    at(D(2025, 10, 30))
    async with services.db.write() as s:
        overdue = await dnotices.due_notices(s)
    assert [(n.level, n.handler_id, n.superior_id) for n in overdue] == [(100, lead.id, boss.id)]
    assert await notices(D(2025, 11, 5)) == []
    async with services.db.read() as s:
        kinds = (
            (await s.execute(select(CaseEvent.kind).where(CaseEvent.case_id == case_id)))
            .scalars()
            .all()
        )
        assert [k for k in kinds if k.startswith("deadline_")] == [
            "deadline_warning_50",
            "deadline_warning_80",
            "deadline_overdue",
        ]
        audit = (
            (
                await s.execute(
                    select(AuditEntry.detail).where(AuditEntry.action == "deadline.overdue_notice")
                )
            )
            .scalars()
            .all()
        )
        assert audit == [
            f"deadline={overdue[0].deadline_id} stage=handling level=100 handler={lead.id} "
            f"superior={boss.id} unopened=yes"  # nobody opened the case in the workspace
        ]
        rows = await dlists.overdue_cases(s, principal(lead), D(2025, 11, 5))
        assert [(r.case_id, r.stage, r.days_late) for r in rows] == [(case_id, "handling", 7)]
        counts = await dlists.overdue_by_handler(s, principal(boss), D(2025, 11, 5))
        assert [(c.handler_id, c.overdue_now) for c in counts if c.overdue_now] == [(lead.id, 1)]


async def test_overdue_list_never_shows_an_excluded_case(
    services: Services, world: dict[str, Any]
) -> None:
    case_id, lead, intake = world["case_id"], world["lead"][0], world["intake"][0]
    at(D(2025, 10, 10))  # initial review (due Sep 30) is overdue, the case still in intake
    async with services.db.read() as s:
        assert [r.case_id for r in await dlists.overdue_cases(s, principal(intake))] == [case_id]
    async with services.db.write() as s:
        s.add(Subject(case_id=case_id, sealed=b"x", user_id=intake.id))
    async with services.db.read() as s:
        assert await dlists.overdue_cases(s, principal(intake)) == []
        assert await dlists.overdue_by_handler(s, principal(intake)) == []
        assert [r.case_id for r in await dlists.overdue_cases(s, principal(lead))] == [case_id]


async def test_a_missing_year_gives_a_provisional_deadline_until_the_year_is_confirmed(
    services: Services, world: dict[str, Any]
) -> None:
    last = max(package_years())
    at(D(last, 12, 20))
    async with services.db.write() as s:  # one day entered does not cover the year
        await set_override(s, D(last + 1, 1, 1), False, "元旦", world["intake"][0].id)
    await move(services, world["case_id"], "accepted", world["lead"][0].id)
    handling = await deadline(services, world["case_id"], "handling")
    assert handling.provisional and handling.due_on.year == last + 1
    async with services.db.write() as s:
        schedule = parse_schedule(last + 1, *year_schedule(last + 1))
        await confirm_year(s, schedule, world["intake"][0].id)
    handling = await deadline(services, world["case_id"], "handling")
    assert not handling.provisional and handling.due_on.year == last + 1


async def test_eu_profile_acknowledgement_and_three_months(
    services: Services, world: dict[str, Any]
) -> None:
    rules = drules.rules_for({"deadline_profile": "eu"})
    # this test drives the EU clocks by hand: the installation's automatic hook (CN rules) off
    services.db.pre_commit_hooks.clear()
    case_id = await submit(services, "token-deadlines-eu-profile")
    lead = world["lead"][0]
    await move(services, case_id, "received", lead.id, rules=rules)
    ack = await deadline(services, case_id, "acknowledgement")
    assert ack.due_on == D(2025, 10, 9)  # Oct 3 + roll over 国庆
    await move(services, case_id, "triage", lead.id, rules=rules)
    assert (await deadline(services, case_id, "acknowledgement")).met_on == D(2025, 9, 26)
    await move(services, case_id, "accepted", lead.id, rules=rules)
    feedback = await deadline(services, case_id, "eu_feedback")
    assert (feedback.unit, feedback.due_on) == ("months", D(2025, 12, 26))
    async with services.db.read() as s:
        stages = {d.stage for d in await dl.case_deadlines(s, case_id)}
    assert stages == {"acknowledgement", "eu_feedback"}  # the Chinese clocks do not run


def test_rules_from_settings() -> None:
    rules = drules.rules_for(
        {"deadline.investigation": "10wd", "deadline.handling.extension": "15"}
    )
    assert rules["investigation"] == drules.Rule(10, "working_days")
    assert rules["handling"] == drules.Rule(30, "calendar_days", 15)
    assert drules.rules_for(None)["initial_review"] == drules.Rule(3, "working_days")
    with pytest.raises(ValueError):
        drules.rules_for({"deadline_profile": "mars"})


# --- the workspace pages ------------------------------------------------------------------------


@pytest.fixture
def desk(client: TestClient[Litestar], services: Services) -> Desk:
    d = Desk(client, services)
    d.add("intake", "intake_officer")
    d.add("lead", "team_lead,investigator")
    d.add("inv", "investigator")
    d.add("admin", "administrator")
    d.add("approver", "approver")
    return d


async def _start(services: Services, case_id: str, lead_id: str, stage: str) -> None:
    async with services.db.write() as s:
        case = await s.get(Case, case_id)
        assert case is not None
        await dl.on_stage_change(s, case, None, "received", None)
        if stage != "received":
            case.stage = stage
            s.add(
                TeamMember(
                    case_id=case_id,
                    user_id=lead_id,
                    function="lead",
                    no_conflict_declared_at=clock.now(),
                )
            )
            intake = (await s.execute(select(User).where(User.username == "intake"))).scalar_one()
            lead = await s.get(User, lead_id)
            assert lead is not None
            # the test stands in for the team formation: wrap the case key for the lead
            ikey = unlock_with_password(
                intake.sealed_private_by_password, PW, services.keyring.password_pepper
            )
            key = await staff_key(s, case_id, intake.id, ikey)
            case_sealing.grant_user(s, case_id, "case", key, lead, services.keyring.suite)
            await dl.on_stage_change(s, case, "received", stage, lead_id)


def test_overdue_page_for_intake_and_lead_never_for_others(desk: Desk) -> None:
    case_id, _code = run(desk.client, lambda: submit_case(desk.services, token="token-dl-http-1"))
    run(desk.client, lambda: _start(desk.services, case_id, desk.user_id("lead"), "received"))
    at(D(2025, 10, 10))  # the initial review (due Sep 30) is late
    page = desk.get("intake", "/workspace/overdue")
    assert page.status_code == 200
    assert case_id in page.text and "Initial review" in page.text
    assert desk.get("inv", "/workspace/overdue").status_code == 404
    assert desk.get("admin", "/workspace/overdue").status_code == 404
    # the lead is on no team: nothing to show
    assert case_id not in desk.get("lead", "/workspace/overdue").text


def test_calendar_page_warns_about_a_missing_year_and_saves_overrides(desk: Desk) -> None:
    missing = max(package_years()) + 1
    page = desk.get("admin", f"/workspace/calendar?year={missing}")
    assert page.status_code == 200
    assert "There is no confirmed schedule for this year" in page.text
    r = desk.post(
        "admin",
        "/workspace/calendar",
        {"day": f"{missing}-01-01", "kind": "restday", "note": "元旦"},
    )
    assert r.status_code == 303
    page = desk.get("admin", f"/workspace/calendar?year={missing}")
    # one day entered does not cover the year: only a confirmed complete schedule does
    assert "There is no confirmed schedule for this year" in page.text and "元旦" in page.text
    assert desk.get("intake", "/workspace/calendar").status_code == 404
    assert desk.post("intake", "/workspace/calendar", {"day": "2025-10-08"}).status_code == 404
    page = desk.get("admin", "/workspace/calendar?year=2025")
    assert "2025-10-11" in page.text  # the 调休 Saturday is listed


def test_pause_resume_extend_and_approve_through_the_pages(desk: Desk) -> None:
    case_id, _code = run(desk.client, lambda: submit_case(desk.services, token="token-dl-http-2"))
    run(desk.client, lambda: _start(desk.services, case_id, desk.user_id("lead"), "accepted"))
    handling = run(desk.client, lambda: deadline(desk.services, case_id, "handling"))
    base = f"/workspace/cases/{case_id}"
    assert desk.get("lead", f"{base}/deadlines").status_code == 200
    assert desk.get("inv", f"{base}/deadlines").status_code == 404
    assert (
        desk.post("inv", f"{base}/deadline/pause", {"deadline_id": handling.id}).status_code == 404
    )
    r = desk.post(
        "lead",
        f"{base}/deadline/pause",
        {"deadline_id": handling.id, "reason": "external_appraisal", "note": "鉴定"},
    )
    assert r.status_code == 303, r.text
    at(D(2025, 9, 30))
    r = desk.post("lead", f"{base}/deadline/resume", {"deadline_id": handling.id})
    assert r.status_code == 303, r.text
    assert run(desk.client, lambda: deadline(desk.services, case_id, "handling")).paused_days == 4
    r = desk.post(
        "lead",
        f"{base}/deadline/extend",
        {"deadline_id": handling.id, "days": "45", "reason": "Too long an extension asked."},
    )
    assert r.status_code == 400 and "The extension is too long." in r.text
    reason = "The appraisal office needs two more weeks."
    r = desk.post(
        "lead",
        f"{base}/deadline/extend",
        {"deadline_id": handling.id, "days": "14", "reason": reason},
    )
    assert r.status_code == 303, r.text
    overdue = desk.get("approver", "/workspace/overdue")
    assert case_id in overdue.text and "Approve the extension" in overdue.text
    r = desk.post(
        "lead",
        f"{base}/deadline/approve-extension",
        {"deadline_id": handling.id, "decision": "approve"},
    )
    assert r.status_code == 404  # the team never approves its own extension
    r = desk.post(
        "approver",
        f"{base}/deadline/approve-extension",
        {"deadline_id": handling.id, "decision": "approve"},
    )
    assert r.status_code == 303, r.text
    d = run(desk.client, lambda: deadline(desk.services, case_id, "handling"))
    assert d.extended and d.extension_days == 14
    page = desk.get("lead", f"{base}/deadlines")
    assert reason in page.text


async def test_hand_overs_are_counted_per_handler(
    services: Services, world: dict[str, Any]
) -> None:
    case_id, lead, boss = world["case_id"], world["lead"][0], world["boss"][0]
    at(D(2025, 9, 29))
    await move(services, case_id, "accepted", lead.id)
    async with services.db.write() as s:
        case = await s.get(Case, case_id)
        assert case is not None
        changed = await dl.set_handler(s, case, boss.id, boss.id)
        assert [d.stage for d in changed] == ["handling"]
        assert await dl.set_handler(s, case, boss.id, boss.id) == []
    assert (await deadline(services, case_id, "handling")).handler_id == boss.id
    async with services.db.read() as s:
        counts = {c.handler_id: c for c in await dlists.overdue_by_handler(s, principal(boss))}
    assert counts[lead.id].handed_over == 1
    assert counts[boss.id].handed_over == 0
    # the notices now go to the new handler
    at(D(2025, 10, 30))
    notices = await dnotices.run_due_notices(services)
    assert [(n.level, n.handler_id) for n in notices] == [(100, boss.id)]


async def test_notices_still_flag_lateness_when_the_calendar_loses_a_year(
    services: Services, world: dict[str, Any]
) -> None:
    last = max(package_years())
    case_id, lead, intake = world["case_id"], world["lead"][0], world["intake"][0]
    async with services.db.write() as s:
        await set_override(s, D(last + 1, 1, 1), False, "元旦", intake.id)
    at(D(last, 12, 20))
    await move(services, case_id, "investigating", lead.id)
    inv = await deadline(services, case_id, "investigation")
    assert inv.due_on.year == last + 1
    async with services.db.write() as s:
        await remove_override(s, D(last + 1, 1, 1), intake.id)
    at(inv.due_on + dt.timedelta(days=1))
    notices = await dnotices.run_due_notices(services)
    assert ("investigation", 100) in [(n.stage, n.level) for n in notices]


def test_rules_from_the_environment() -> None:
    env = {
        "PORTAL_MODE": "test",
        "PORTAL_DEADLINE_PROFILE": "eu",
        "PORTAL_DEADLINE_EU_FEEDBACK": "2m",
        "PORTAL_DEADLINE_EU_FEEDBACK_EXTENSION": "10",
    }
    rules = drules.rules_for(Settings.from_env(env))
    assert set(rules) == {"acknowledgement", "eu_feedback", "rehandling"}
    assert rules["eu_feedback"] == drules.Rule(2, "months", 10)
    assert drules.rules_for(Settings.from_env({"PORTAL_MODE": "test"}))["handling"] == drules.Rule(
        30, "calendar_days", 30
    )
    with pytest.raises(SettingsError):
        Settings.from_env({"PORTAL_MODE": "test", "PORTAL_DEADLINE_HANDLING": "thirty days"})


async def test_urgent_dispatch_warnings_run_in_minutes(
    services: Services, world: dict[str, Any]
) -> None:
    case_id, lead = world["case_id"], world["lead"][0]
    async with services.db.write() as s:
        await s.execute(update(Case).where(Case.id == case_id).values(urgent=True))
    at(D(2025, 9, 26), 10, 0)
    await move(services, case_id, "triage", lead.id)
    seen = []
    for minute in (4, 5, 8, 10, 11):
        at(D(2025, 9, 26), 10, minute)
        seen += [(n.stage, n.level) for n in await dnotices.run_due_notices(services)]
    assert [lvl for stage, lvl in seen if stage == "urgent_dispatch"] == [50, 80, 100]
