"""Staff who arrive after a report get the keys their role needs once a key holder works.

The case key is wrapped, when a report arrives, for the intake officers of that moment. A key
holder opening an intake-stage case (or posting a form on it) wraps the case key for the
current intake officers who lack it and whom policy lets view the case; never the identity
key, never a subject, a conflicted, a disabled or a non-intake account, never after intake.

The identity key of a real-name report is wrapped for the identity custodians of that moment.
A holder of the identity key who reads the identity (the case page) or decides an identity
request wraps it for the current custodians who lack it and whom policy lets decide identity
requests on the case; never a subject, a conflicted, a disabled account, a custodian on the
team, nor anyone who is not a custodian; and never the case key.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import TestClient
from sqlalchemy import delete, func, select, update

from crypto.recipients import unlock_with_password
from investigator.domain.casefile import NoKey, open_identity, staff_key
from investigator.domain.keyshare import share_identity_key, share_intake_key
from investigator.domain.staff import set_disabled
from investigator.policy import Principal, may_act_on_case
from portal.kernel import clock
from portal.kernel.db.models import (
    AuditEntry,
    Case,
    Conflict,
    IdentityRequest,
    KeyWrap,
    Subject,
    TeamMember,
    User,
)
from portal.kernel.services import Services
from tests.investigator.conftest import STRONG_PASSWORD
from tests.investigator.ws_helpers import REPORT_TEXT, Desk, run, submit_case

SEALED = "You do not hold the key of this case"
_DETAIL = re.compile(r"^scope=case count=(\d+) users=([0-9a-f]{32}(?:,[0-9a-f]{32})*)$")


@pytest.fixture
def desk(client: TestClient[Litestar], services: Services) -> Desk:
    d = Desk(client, services)
    d.add("intake", "intake_officer")
    d.add("lead", "team_lead,investigator")
    d.add("custodian", "identity_custodian")
    return d


def new_case(desk: Desk, token: str = "token-keyshare-0001", **kw: Any) -> str:
    case_id, _code = run(desk.client, lambda: submit_case(desk.services, token=token, **kw))
    return str(case_id)


def wraps(desk: Desk, case_id: str) -> list[tuple[str, str | None, str | None]]:
    """(scope, user_id, receipt_id) of every wrap of the case."""

    async def read() -> list[tuple[str, str | None, str | None]]:
        async with desk.services.db.read() as s:
            rows = await s.execute(
                select(KeyWrap.scope, KeyWrap.user_id, KeyWrap.receipt_id).where(
                    KeyWrap.case_id == case_id
                )
            )
            return [(r.scope, r.user_id, r.receipt_id) for r in rows]

    return list(run(desk.client, read))


def case_wrap_holders(desk: Desk, case_id: str) -> list[str]:
    return sorted(u for scope, u, _r in wraps(desk, case_id) if scope == "case" and u)


def identity_wrap_holders(desk: Desk, case_id: str) -> list[str]:
    return sorted(u for scope, u, _r in wraps(desk, case_id) if scope == "identity" and u)


def shared_entries(desk: Desk, case_id: str) -> list[AuditEntry]:
    async def read() -> list[AuditEntry]:
        async with desk.services.db.read() as s:
            stmt = (
                select(AuditEntry)
                .where(AuditEntry.case_id == case_id, AuditEntry.action == "case.key_shared")
                .order_by(AuditEntry.id)
            )
            return list((await s.execute(stmt)).scalars())

    return list(run(desk.client, read))


def set_user(desk: Desk, name: str, **values: Any) -> None:
    async def write() -> None:
        async with desk.services.db.write() as s:
            await s.execute(update(User).where(User.id == desk.user_id(name)).values(**values))

    run(desk.client, write)


def stage_of(desk: Desk, case_id: str) -> str:
    async def read() -> str:
        async with desk.services.db.read() as s:
            case = await s.get(Case, case_id)
            assert case is not None
            return case.stage

    return str(run(desk.client, read))


def test_late_officer_reads_once_a_key_holder_opens_the_case(desk: Desk) -> None:
    case_id = new_case(desk)
    desk.add("late", "intake_officer")
    path = f"/workspace/cases/{case_id}"
    # created after the report: policy lets them open the page, but it stays sealed, and
    # opening it themselves shares nothing (they hold no key to share)
    before = desk.get("late", path)
    assert before.status_code == 200
    assert SEALED in before.text and REPORT_TEXT not in before.text
    assert desk.user_id("late") not in case_wrap_holders(desk, case_id)
    assert shared_entries(desk, case_id) == []

    # an officer holding the key opens the case: the key is wrapped for the late officer
    assert desk.get("intake", path).status_code == 200
    after = desk.get("late", path)
    assert after.status_code == 200
    assert REPORT_TEXT in after.text and SEALED not in after.text
    assert case_wrap_holders(desk, case_id).count(desk.user_id("late")) == 1

    (entry,) = shared_entries(desk, case_id)
    assert entry.actor_user_id == desk.user_id("intake")
    match = _DETAIL.match(entry.detail)
    assert match, entry.detail
    assert (match.group(1), match.group(2)) == ("1", desk.user_id("late"))

    # opening it again shares nothing more: no second wrap, no second audit entry
    desk.get("intake", path)
    desk.get("late", path)
    assert case_wrap_holders(desk, case_id).count(desk.user_id("late")) == 1
    assert len(shared_entries(desk, case_id)) == 1

    # the officers of the report's day leave: the centre still reads the case
    run(desk.client, lambda: set_disabled(desk.services.db, "intake"))
    assert REPORT_TEXT in desk.get("late", path).text


def test_a_triage_action_shares_the_key(desk: Desk) -> None:
    case_id = new_case(desk)
    desk.add("late", "intake_officer")
    r = desk.post(
        "intake",
        f"/workspace/cases/{case_id}/classify",
        {"category": "bribery", "severity": "high", "risk": "low"},
    )
    assert r.status_code == 303
    assert stage_of(desk, case_id) == "triage"
    assert desk.user_id("late") in case_wrap_holders(desk, case_id)
    assert REPORT_TEXT in desk.get("late", f"/workspace/cases/{case_id}").text
    assert len(shared_entries(desk, case_id)) == 1


def test_the_page_after_a_refused_action_shares_too(desk: Desk) -> None:
    case_id = new_case(desk)
    desk.add("late", "intake_officer")
    r = desk.post("intake", f"/workspace/cases/{case_id}/classify", {"severity": "bogus"})
    # the refusal rolls the action back, then shows the case page again: a page view
    assert r.status_code == 400 and stage_of(desk, case_id) == "received"
    assert desk.user_id("late") in case_wrap_holders(desk, case_id)
    assert len(shared_entries(desk, case_id)) == 1


def test_only_enabled_unexcluded_intake_officers_get_the_key(desk: Desk) -> None:
    case_id = new_case(desk)
    desk.add("ok", "intake_officer")
    desk.add("named", "intake_officer")
    desk.add("conflicted", "intake_officer")
    desk.add("gone", "intake_officer")
    desk.add("inv", "investigator")
    desk.add("promoted", "investigator")
    # a late officer declares a conflict (policy lets them: they may view the case)
    r = desk.post("conflicted", f"/workspace/cases/{case_id}/conflict", {"confirm": "yes"})
    assert r.status_code == 303
    run(desk.client, lambda: set_disabled(desk.services.db, "gone"))
    # naming a late officer as a subject is a form posted by a key holder: it shares, after
    # the subject is recorded, so the named officer is already excluded
    r = desk.post(
        "intake",
        f"/workspace/cases/{case_id}/subjects/add",
        {
            "name": "王五",
            "department": "采购部",
            "position": "经理",
            "user_id": desk.user_id("named"),
        },
    )
    assert r.status_code == 303
    holders = case_wrap_holders(desk, case_id)
    assert desk.user_id("ok") in holders
    for name in ("named", "conflicted", "gone", "inv", "promoted", "lead", "custodian"):
        assert desk.user_id(name) not in holders, name
    (entry,) = shared_entries(desk, case_id)
    assert entry.detail == f"scope=case count=1 users={desk.user_id('ok')}"
    assert desk.get("named", f"/workspace/cases/{case_id}").status_code == 404
    assert desk.get("conflicted", f"/workspace/cases/{case_id}").status_code == 404

    # given the intake_officer role later, or re-enabled: the next key holder's visit shares
    set_user(desk, "promoted", roles="investigator,intake_officer")
    run(desk.client, lambda: set_disabled(desk.services.db, "gone", disabled=False))
    assert desk.get("ok", f"/workspace/cases/{case_id}").status_code == 200
    holders = case_wrap_holders(desk, case_id)
    assert desk.user_id("promoted") in holders and desk.user_id("gone") in holders
    for name in ("named", "conflicted", "inv"):
        assert desk.user_id(name) not in holders, name
    assert REPORT_TEXT in desk.get("promoted", f"/workspace/cases/{case_id}").text
    latest = shared_entries(desk, case_id)[-1]
    assert latest.actor_user_id == desk.user_id("ok")
    assert latest.detail.startswith("scope=case count=2 users=")
    assert set(latest.detail.split("users=")[1].split(",")) == {
        desk.user_id("promoted"),
        desk.user_id("gone"),
    }


def test_the_identity_key_is_never_shared(desk: Desk) -> None:
    case_id = new_case(desk, real_name=True)
    desk.add("late", "intake_officer,identity_custodian")
    desk.add("late_officer", "intake_officer")
    before = [w for w in wraps(desk, case_id) if w[0] != "case"]
    assert ("identity", desk.user_id("custodian"), None) in before
    assert desk.get("intake", f"/workspace/cases/{case_id}").status_code == 200
    after = wraps(desk, case_id)
    # both late officers got the case key, and nothing but the case key
    assert desk.user_id("late") in case_wrap_holders(desk, case_id)
    assert desk.user_id("late_officer") in case_wrap_holders(desk, case_id)
    assert sorted((w for w in after if w[0] != "case"), key=repr) == sorted(before, key=repr)
    assert not [w for w in after if w[0] != "case" and w[1] in (desk.user_id("late"),)]
    assert "举报人甲" not in desk.get("late_officer", f"/workspace/cases/{case_id}").text


def test_cases_beyond_the_intake_stages_are_not_shared(desk: Desk) -> None:
    investigating = new_case(desk, "token-keyshare-team")
    rejected = new_case(desk, "token-keyshare-reject")
    r = desk.post(
        "intake", f"/workspace/cases/{investigating}/accept", {"expected_stage": "received"}
    )
    assert r.status_code == 303
    r = desk.post(
        "intake",
        f"/workspace/cases/{investigating}/team/add",
        {"user_id": desk.user_id("lead"), "function": "lead", "declared_no_conflict": "yes"},
    )
    assert r.status_code == 303 and stage_of(desk, investigating) == "investigating"
    desk.add("late", "intake_officer")
    # the lead holds the key and works on the case; it is no longer at intake
    assert desk.get("lead", f"/workspace/cases/{investigating}").status_code == 200
    r = desk.post("lead", f"/workspace/cases/{investigating}/note", {"text": "a note"})
    assert r.status_code == 303
    # the rejection is a triage action by a key holder, but it takes the case out of intake
    r = desk.post(
        "intake",
        f"/workspace/cases/{rejected}/reject",
        {"reason": "duplicate", "expected_stage": "received"},
    )
    assert r.status_code == 303 and stage_of(desk, rejected) == "rejected"
    for case_id in (investigating, rejected):
        assert desk.user_id("late") not in case_wrap_holders(desk, case_id)
        assert shared_entries(desk, case_id) == []
    assert desk.get("late", f"/workspace/cases/{investigating}").status_code == 404


# --- the domain function ------------------------------------------------------------------


async def test_share_intake_key_returns_the_users_granted(services: Services) -> None:
    from tests.investigator.conftest import create_staff

    early = await create_staff(services, "early", "intake_officer")
    case_id, _code = await submit_case(services, token="token-keyshare-domain", with_files=False)
    late = await create_staff(services, "late", "intake_officer")
    await create_staff(services, "bystander", "investigator")
    async with services.db.write() as s:
        user = await s.get(User, early.user_id)
        assert user is not None
        private = unlock_with_password(
            user.sealed_private_by_password, STRONG_PASSWORD, services.keyring.password_pepper
        )
        key = await staff_key(s, case_id, early.user_id, private)
        case = await s.get(Case, case_id)
        assert case is not None
        granted = await share_intake_key(s, case, key, early.user_id)
        assert [u.id for u in granted] == [late.user_id]
        # a second call finds nobody left to grant and writes no audit entry
        assert await share_intake_key(s, case, key, early.user_id) == []
    # outside the intake stages nothing is shared, whoever lacks the key
    await create_staff(services, "later", "intake_officer")
    async with services.db.write() as s:
        case = await s.get(Case, case_id)
        assert case is not None
        case.stage = "investigating"
        assert await share_intake_key(s, case, key, early.user_id) == []
    async with services.db.read() as s:
        user = await s.get(User, late.user_id)
        assert user is not None
        private = unlock_with_password(
            user.sealed_private_by_password, STRONG_PASSWORD, services.keyring.password_pepper
        )
        assert await staff_key(s, case_id, late.user_id, private) == key
        entries = (
            await s.execute(
                select(func.count())
                .select_from(AuditEntry)
                .where(AuditEntry.action == "case.key_shared", AuditEntry.case_id == case_id)
            )
        ).scalar_one()
        assert entries == 1


async def test_only_intake_officers_and_only_at_intake(services: Services) -> None:
    """Policy may let others view a case (a team member, an approver at approval); this rule
    shares with intake officers only, and only while the case is in an intake stage."""
    from tests.investigator.conftest import create_staff

    early = await create_staff(services, "early", "intake_officer")
    case_id, _code = await submit_case(services, token="token-keyshare-roles", with_files=False)
    member = await create_staff(services, "member", "investigator")
    approver = await create_staff(services, "approver", "approver,intake_officer")
    async with services.db.write() as s:
        user = await s.get(User, early.user_id)
        assert user is not None
        private = unlock_with_password(
            user.sealed_private_by_password, STRONG_PASSWORD, services.keyring.password_pepper
        )
        key = await staff_key(s, case_id, early.user_id, private)
        # a team member (policy: may view) who holds no wrap, and the approver+officer
        s.add(
            TeamMember(
                case_id=case_id,
                user_id=member.user_id,
                function="member",
                no_conflict_declared_at=clock.now(),
            )
        )
        await s.flush()
        case = await s.get(Case, case_id)
        assert case is not None
        granted = await share_intake_key(s, case, key, early.user_id)
        assert [u.id for u in granted] == [approver.user_id]
    async with services.db.write() as s:
        await s.execute(
            delete(KeyWrap).where(KeyWrap.case_id == case_id, KeyWrap.user_id == approver.user_id)
        )
        case = await s.get(Case, case_id)
        assert case is not None
        case.stage = "approval"
        await s.flush()
        # policy lets the approver view the case now, but not as an intake officer
        both = Principal(approver.user_id, frozenset({"approver", "intake_officer"}))
        assert await may_act_on_case(s, both, case_id, "view")
        assert await share_intake_key(s, case, key, early.user_id) == []


# --- the identity key: identity custodians appointed after a real-name report ---------------

NAME = "举报人甲"  # the identity submit_case gives a real-name report
_IDENTITY_DETAIL = re.compile(
    r"^scope=identity count=(\d+) users=([0-9a-f]{32}(?:,[0-9a-f]{32})*)$"
)
_DECIDE = re.compile(r"/identity-requests/([0-9a-f]{32})/decide")


def identity_entries(desk: Desk, case_id: str) -> list[AuditEntry]:
    return [e for e in shared_entries(desk, case_id) if e.detail.startswith("scope=identity ")]


def team_case(desk: Desk, token: str, *members: tuple[str, str]) -> str:
    """A real-name report with the fixture's lead as lead, then ``members`` (name, function)."""
    case_id = new_case(desk, token, real_name=True)
    r = desk.post("intake", f"/workspace/cases/{case_id}/accept", {"expected_stage": "received"})
    assert r.status_code == 303
    for name, function in (("lead", "lead"), *members):
        r = desk.post(
            "intake" if name == "lead" else "lead",
            f"/workspace/cases/{case_id}/team/add",
            {"user_id": desk.user_id(name), "function": function, "declared_no_conflict": "yes"},
        )
        assert r.status_code == 303, r.text
    assert stage_of(desk, case_id) == "investigating"
    return case_id


def ask_identity(desk: Desk, case_id: str, who: str = "lead") -> str:
    r = desk.post(
        who,
        f"/workspace/cases/{case_id}/identity/request",
        {"reason": "We must interview the reporter about the ledger."},
    )
    assert r.status_code == 303, r.text

    async def read() -> str:
        async with desk.services.db.read() as s:
            return str(
                (
                    await s.execute(
                        select(IdentityRequest.id).where(
                            IdentityRequest.case_id == case_id,
                            IdentityRequest.status == "pending",
                        )
                    )
                ).scalar_one()
            )

    return str(run(desk.client, read))


def decide(desk: Desk, who: str, request_id: str, decision: str) -> int:
    r = desk.post(
        who,
        f"/workspace/identity-requests/{request_id}/decide",
        {"decision": decision, "tell_reporter": "yes"},
    )
    return int(r.status_code)


def request_status(desk: Desk, request_id: str) -> str:
    async def read() -> str:
        async with desk.services.db.read() as s:
            req = await s.get(IdentityRequest, request_id)
            assert req is not None
            return req.status

    return str(run(desk.client, read))


def test_late_custodian_decides_once_a_holder_has_decided(desk: Desk) -> None:
    case_id = team_case(desk, "token-idshare-decide")
    desk.add("late", "identity_custodian")
    first = ask_identity(desk, case_id)
    # created after the report: policy lets them decide, but they hold no identity key, so an
    # approval is refused and rolled back; they share nothing and nobody learns the identity
    listing = desk.get("late", "/workspace/identity-requests")
    assert listing.status_code == 200 and first in _DECIDE.findall(listing.text)
    assert decide(desk, "late", first, "approve") == 409
    assert request_status(desk, first) == "pending"
    assert desk.user_id("late") not in identity_wrap_holders(desk, case_id)
    assert identity_entries(desk, case_id) == []
    assert NAME not in desk.get("lead", f"/workspace/cases/{case_id}").text

    # the custodian of the report's day decides (a refusal: no key is needed for it, but they
    # hold it, so they share it); only the identity scope moves
    case_before = case_wrap_holders(desk, case_id)
    assert decide(desk, "custodian", first, "refuse") == 303
    assert identity_wrap_holders(desk, case_id).count(desk.user_id("late")) == 1
    assert case_wrap_holders(desk, case_id) == case_before
    (entry,) = identity_entries(desk, case_id)
    assert entry.actor_user_id == desk.user_id("custodian")
    match = _IDENTITY_DETAIL.match(entry.detail)
    assert match, entry.detail
    assert (match.group(1), match.group(2)) == ("1", desk.user_id("late"))
    assert len(shared_entries(desk, case_id)) == 1  # no case-scope batch either

    # the custodians of that day leave; the late one can now decide a new request
    run(desk.client, lambda: set_disabled(desk.services.db, "custodian"))
    second = ask_identity(desk, case_id)
    assert decide(desk, "late", second, "approve") == 303
    assert request_status(desk, second) == "approved"
    page = desk.get("lead", f"/workspace/cases/{case_id}")
    assert NAME in page.text and "13800000000" in page.text
    # the late custodian's decision found nobody left to share with
    assert len(identity_entries(desk, case_id)) == 1
    assert case_wrap_holders(desk, case_id) == case_before


def test_reading_the_identity_shares_it_with_late_custodians(desk: Desk) -> None:
    # an intake officer who is also a custodian, on duty when the report arrives
    desk.add("early", "intake_officer,identity_custodian")
    case_id = new_case(desk, "token-idshare-view", real_name=True)
    desk.add("late", "intake_officer,identity_custodian")
    desk.add("late_officer", "intake_officer")
    path = f"/workspace/cases/{case_id}"
    # an intake officer without the identity key opens the case: the late ones get the case
    # key (intake sharing) but not the identity key
    assert desk.get("intake", path).status_code == 200
    before = desk.get("late", path)
    assert REPORT_TEXT in before.text and NAME not in before.text
    assert desk.user_id("late") not in identity_wrap_holders(desk, case_id)
    # the late custodian opening it themselves shares nothing (no identity key to share)
    assert identity_entries(desk, case_id) == []

    # the early custodian reads the identity on the case page: it is shared with the late one
    case_before = case_wrap_holders(desk, case_id)
    assert NAME in desk.get("early", path).text
    assert case_wrap_holders(desk, case_id) == case_before
    after = desk.get("late", path)
    assert NAME in after.text and "13800000000" in after.text
    (entry,) = identity_entries(desk, case_id)
    assert entry.actor_user_id == desk.user_id("early")
    assert entry.detail == f"scope=identity count=1 users={desk.user_id('late')}"
    # never an intake officer who is not a custodian, never the custodian's extra case key
    holders = identity_wrap_holders(desk, case_id)
    assert desk.user_id("late_officer") not in holders and desk.user_id("intake") not in holders
    assert NAME not in desk.get("late_officer", path).text
    # reading it again shares nothing more
    desk.get("early", path)
    desk.get("late", path)
    assert identity_wrap_holders(desk, case_id).count(desk.user_id("late")) == 1
    assert len(identity_entries(desk, case_id)) == 1


def test_an_approved_requester_who_reads_the_identity_shares_it(desk: Desk) -> None:
    case_id = team_case(desk, "token-idshare-member")
    assert decide(desk, "custodian", ask_identity(desk, case_id), "approve") == 303
    desk.add("late", "identity_custodian")
    # the lead holds the identity key now and reads it on the case page
    case_before = case_wrap_holders(desk, case_id)
    assert NAME in desk.get("lead", f"/workspace/cases/{case_id}").text
    assert desk.user_id("late") in identity_wrap_holders(desk, case_id)
    assert case_wrap_holders(desk, case_id) == case_before
    (entry,) = identity_entries(desk, case_id)
    assert entry.actor_user_id == desk.user_id("lead")
    assert entry.detail == f"scope=identity count=1 users={desk.user_id('late')}"


def test_only_enabled_unexcluded_custodians_off_the_team_get_the_identity_key(
    desk: Desk,
) -> None:
    case_id = new_case(desk, "token-idshare-who", real_name=True)
    desk.add("ok", "identity_custodian")
    desk.add("named", "identity_custodian")
    desk.add("conflicted", "identity_custodian,intake_officer")
    desk.add("gone", "identity_custodian")
    desk.add("on_team", "identity_custodian,investigator")
    desk.add("officer", "intake_officer")
    desk.add("inv", "investigator")
    desk.add("promoted", "investigator")
    path = f"/workspace/cases/{case_id}"
    # a late custodian declares a conflict (policy lets them: at intake they may view it)
    r = desk.post("conflicted", f"{path}/conflict", {"confirm": "yes"})
    assert r.status_code == 303
    r = desk.post(
        "intake",
        f"{path}/subjects/add",
        {
            "name": "王五",
            "department": "采购部",
            "position": "经理",
            "user_id": desk.user_id("named"),
        },
    )
    assert r.status_code == 303
    r = desk.post("intake", f"{path}/accept", {"expected_stage": "received"})
    assert r.status_code == 303
    for name, function in (("lead", "lead"), ("inv", "member"), ("on_team", "member")):
        r = desk.post(
            "intake" if name == "lead" else "lead",
            f"{path}/team/add",
            {"user_id": desk.user_id(name), "function": function, "declared_no_conflict": "yes"},
        )
        assert r.status_code == 303, r.text
    run(desk.client, lambda: set_disabled(desk.services.db, "gone"))
    # the late intake officer got the case key while the case was at intake (intake sharing)
    assert desk.user_id("officer") in case_wrap_holders(desk, case_id)
    case_before = case_wrap_holders(desk, case_id)
    case_batches = len(shared_entries(desk, case_id))
    assert decide(desk, "custodian", ask_identity(desk, case_id), "refuse") == 303
    holders = identity_wrap_holders(desk, case_id)
    assert holders == sorted([desk.user_id("custodian"), desk.user_id("ok")])
    (entry,) = identity_entries(desk, case_id)
    assert entry.detail == f"scope=identity count=1 users={desk.user_id('ok')}"
    # the custodian on the team may not decide (four eyes), so gets nothing either
    listing = desk.get("on_team", "/workspace/identity-requests")
    assert listing.status_code == 200 and not _DECIDE.findall(listing.text)

    # given the custodian role later, or re-enabled: the next holder's decision shares; the
    # late custodian "ok" holds the key now and is that holder
    set_user(desk, "promoted", roles="investigator,identity_custodian")
    run(desk.client, lambda: set_disabled(desk.services.db, "gone", disabled=False))
    assert decide(desk, "ok", ask_identity(desk, case_id), "approve") == 303
    holders = identity_wrap_holders(desk, case_id)
    for name in ("promoted", "gone", "lead"):  # the lead: the approved request, not sharing
        assert desk.user_id(name) in holders, name
    for name in ("named", "conflicted", "on_team", "officer", "inv", "intake"):
        assert desk.user_id(name) not in holders, name
    latest = identity_entries(desk, case_id)[-1]
    assert latest.actor_user_id == desk.user_id("ok")
    assert latest.detail.startswith("scope=identity count=2 users=")
    assert set(latest.detail.split("users=")[1].split(",")) == {
        desk.user_id("promoted"),
        desk.user_id("gone"),
    }
    # the case key went to nobody through any of it
    assert case_wrap_holders(desk, case_id) == case_before
    assert len(shared_entries(desk, case_id)) == case_batches + 2  # the two identity batches


async def test_share_identity_key_returns_the_custodians_granted(services: Services) -> None:
    from tests.investigator.conftest import create_staff

    early = await create_staff(services, "early", "identity_custodian")
    await create_staff(services, "officer", "intake_officer")
    case_id, _code = await submit_case(services, token="token-idshare-domain", with_files=False)
    late = await create_staff(services, "late", "identity_custodian")
    member = await create_staff(services, "member", "identity_custodian,investigator")
    named = await create_staff(services, "named", "identity_custodian")
    conflicted = await create_staff(services, "conflicted", "identity_custodian")
    await create_staff(services, "officer2", "intake_officer")
    await create_staff(services, "inv", "investigator,team_lead,approver,reward_officer")
    async with services.db.write() as s:
        s.add(
            TeamMember(
                case_id=case_id,
                user_id=member.user_id,
                function="member",
                no_conflict_declared_at=clock.now(),
            )
        )
        s.add(Subject(case_id=case_id, sealed=b"x", user_id=named.user_id))
        s.add(Conflict(case_id=case_id, user_id=conflicted.user_id))
    async with services.db.write() as s:
        wraps_before = list(
            (
                await s.execute(
                    select(KeyWrap.user_id, KeyWrap.wrapped).where(
                        KeyWrap.case_id == case_id, KeyWrap.scope != "identity"
                    )
                )
            ).all()
        )
        user = await s.get(User, early.user_id)
        assert user is not None
        private = unlock_with_password(
            user.sealed_private_by_password, STRONG_PASSWORD, services.keyring.password_pepper
        )
        ikey = await staff_key(s, case_id, early.user_id, private, scope="identity")
        case = await s.get(Case, case_id)
        assert case is not None
        granted = await share_identity_key(s, case, ikey, early.user_id)
        assert [u.id for u in granted] == [late.user_id]
        assert await share_identity_key(s, case, ikey, early.user_id) == []
    async with services.db.read() as s:
        user = await s.get(User, late.user_id)
        assert user is not None
        private = unlock_with_password(
            user.sealed_private_by_password, STRONG_PASSWORD, services.keyring.password_pepper
        )
        identity = await open_identity(s, case_id, late.user_id, private)
        assert identity is not None and identity["name"] == NAME
        # the late custodian got no case key, and no other wrap changed
        with pytest.raises(NoKey):
            await staff_key(s, case_id, late.user_id, private)
        wraps_after = list(
            (
                await s.execute(
                    select(KeyWrap.user_id, KeyWrap.wrapped).where(
                        KeyWrap.case_id == case_id, KeyWrap.scope != "identity"
                    )
                )
            ).all()
        )
        assert sorted(map(tuple, wraps_after), key=repr) == sorted(
            map(tuple, wraps_before), key=repr
        )
        identity_holders = set(
            (
                await s.execute(
                    select(KeyWrap.user_id).where(
                        KeyWrap.case_id == case_id, KeyWrap.scope == "identity"
                    )
                )
            ).scalars()
        )
        # None: the reporter's own receipt wrap of the identity key (issue 18)
        assert identity_holders == {early.user_id, late.user_id, None}
        details = list(
            (
                await s.execute(
                    select(AuditEntry.detail).where(
                        AuditEntry.action == "case.key_shared", AuditEntry.case_id == case_id
                    )
                )
            ).scalars()
        )
        assert details == [f"scope=identity count=1 users={late.user_id}"]


async def test_a_destroyed_case_shares_no_identity_key(services: Services) -> None:
    from tests.investigator.conftest import create_staff

    early = await create_staff(services, "early", "identity_custodian")
    case_id, _code = await submit_case(services, token="token-idshare-gone", with_files=False)
    await create_staff(services, "late", "identity_custodian")
    async with services.db.write() as s:
        user = await s.get(User, early.user_id)
        assert user is not None
        private = unlock_with_password(
            user.sealed_private_by_password, STRONG_PASSWORD, services.keyring.password_pepper
        )
        ikey = await staff_key(s, case_id, early.user_id, private, scope="identity")
        case = await s.get(Case, case_id)
        assert case is not None
        case.destroyed_on = clock.today()
        assert await share_identity_key(s, case, ikey, early.user_id) == []
