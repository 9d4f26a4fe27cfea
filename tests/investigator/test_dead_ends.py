"""No dead ends (issue 16 point 5, W13, W5), through the real app: a page shows a form only for
an action the policy allows this person in this stage; closed cases without a team can be
archived by an intake officer, who is told where the case went; team candidates hold an
investigative role; every saved form confirms; the reporter counts only their own files."""

from __future__ import annotations

import re
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import TestClient
from sqlalchemy import select

from investigator import policy
from investigator.roles import roles_of
from portal.kernel import clock
from portal.kernel.db.models import Case, EvidenceFile, TransferPackage, User
from portal.kernel.services import Services
from tests.investigator.ws_helpers import Desk, run, submit_case
from tests.portal.test_reporter_journeys import case_page, sign_in

_FORM = re.compile(r'<form method="post" action="/workspace/cases/([0-9a-f]{32})/([^"]+)"')
_OPTION = re.compile(r'<select id="f-member" name="user_id"[^>]*>(.*?)</select>', re.S)
_VALUE = re.compile(r'<option value="([0-9a-f]{32})"')

# a case page form (its path after /workspace/cases/{id}/) -> the policy action it needs
FORM_ACTIONS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"^classify$"), "triage"),
    (re.compile(r"^accept$"), "triage"),
    (re.compile(r"^reject$"), "triage"),
    (re.compile(r"^split$"), "triage"),
    (re.compile(r"^team/(add|remove)$"), "manage_team"),
    (re.compile(r"^subjects/add$"), "manage_subjects"),
    (re.compile(r"^subjects/[0-9a-f]{32}/link$"), "manage_subjects"),
    (re.compile(r"^transfer$"), "transfer"),
    (re.compile(r"^note$"), "add_note"),
    (re.compile(r"^message$"), "message_reporter"),
    (re.compile(r"^identity/request$"), "request_identity"),
    (re.compile(r"^archive$"), "archive"),
    (re.compile(r"^conflict$"), "view"),
]


def _action_of(path: str) -> str:
    for pattern, action in FORM_ACTIONS:
        if pattern.match(path):
            return action
    raise AssertionError(f"a case page form this test does not know: {path}")


@pytest.fixture
def desk(client: TestClient[Litestar], services: Services) -> Desk:
    d = Desk(client, services)
    d.add("intake", "intake_officer")
    d.add("lead", "team_lead,investigator")
    d.add("inv", "investigator")
    d.add("admin", "administrator")
    d.add("auditor", "auditor")
    d.add("officer", "reward_officer")
    d.add("approver", "approver")
    d.add("liaison", "department_liaison", department="采购部")
    return d


def _new_case(desk: Desk, token: str, **kw: Any) -> tuple[str, str]:
    case_id, code = run(desk.client, lambda: submit_case(desk.services, token=token, **kw))
    return str(case_id), str(code)


async def _set(services: Services, case_id: str, **values: Any) -> None:
    async with services.db.write() as s:
        case = await s.get(Case, case_id)
        assert case is not None
        for name, value in values.items():
            setattr(case, name, value)


async def _stage(services: Services, case_id: str) -> str:
    async with services.db.read() as s:
        case = await s.get(Case, case_id)
        assert case is not None
        return case.stage


async def _principal(services: Services, user_id: str) -> policy.Principal:
    async with services.db.read() as s:
        user = await s.get(User, user_id)
        assert user is not None
        return policy.Principal(user.id, roles_of(user.roles), user.department_id)


async def _allowed(services: Services, user_id: str, case_id: str, action: str) -> bool:
    principal = await _principal(services, user_id)
    async with services.db.read() as s:
        return await policy.may_act_on_case(s, principal, case_id, action)


def _forms(html: str, case_id: str) -> list[str]:
    return [path for cid, path in _FORM.findall(html) if cid == case_id]


def _assert_offered_forms_are_allowed(desk: Desk, name: str, case_id: str) -> list[str]:
    """Every form on the case page needs an action the policy grants this person now."""
    page = desk.get(name, f"/workspace/cases/{case_id}")
    assert page.status_code == 200
    forms = _forms(page.text, case_id)
    stage = run(desk.client, lambda: _stage(desk.services, case_id))
    for path in forms:
        action = _action_of(path)
        granted = run(
            desk.client,
            lambda a=action: _allowed(desk.services, desk.user_id(name), case_id, a),
        )
        assert granted, f"{name} is offered {path} on a {stage} case; policy refuses {action}"
    return forms


def test_case_page_buttons_follow_the_policy_in_every_stage(desk: Desk) -> None:
    case_id, _code = _new_case(desk, "token-dead-ends-stages-01")
    # intake: triage forms while the case is under review
    forms = _assert_offered_forms_are_allowed(desk, "intake", case_id)
    assert {"classify", "accept", "reject", "split", "transfer", "note"} <= set(forms)
    assert "archive" not in forms
    r = desk.post("intake", f"/workspace/cases/{case_id}/accept", {"expected_stage": "received"})
    assert r.status_code == 303
    # accepted: classify still, but no second accept nor a reject that always fails
    forms = _assert_offered_forms_are_allowed(desk, "intake", case_id)
    assert "classify" in forms and not {"accept", "reject", "split"} & set(forms)
    r = desk.post(
        "intake",
        f"/workspace/cases/{case_id}/team/add",
        {"user_id": desk.user_id("lead"), "function": "lead", "declared_no_conflict": "yes"},
    )
    assert r.status_code == 303
    # the lead, while investigating: team, subjects, notes, no archive
    forms = _assert_offered_forms_are_allowed(desk, "lead", case_id)
    assert {"team/add", "subjects/add", "note", "message"} <= set(forms)
    assert "archive" not in forms
    investigation = desk.get("lead", f"/workspace/cases/{case_id}/investigation").text
    assert f'action="/workspace/cases/{case_id}/investigation/steps"' in investigation
    assert f'action="/workspace/cases/{case_id}/investigation/records"' in investigation
    # concluded: the lead may archive, and the button works
    run(
        desk.client,
        lambda: _set(desk.services, case_id, stage="concluded", outcome="unsubstantiated",
                     closed_on=clock.today()),
    )  # fmt: skip
    forms = _assert_offered_forms_are_allowed(desk, "lead", case_id)
    assert "archive" in forms and "team/add" not in forms and "transfer" not in forms
    # no investigation step or record on a concluded case: the form would always fail
    investigation = desk.get("lead", f"/workspace/cases/{case_id}/investigation").text
    assert '/investigation/steps"' not in investigation
    assert '/investigation/records"' not in investigation
    refused = desk.post(
        "lead",
        f"/workspace/cases/{case_id}/investigation/steps",
        {"title": "x", "owner_id": desk.user_id("lead"), "due_on": "2999-01-01"},
    )
    assert refused.status_code in (400, 409)
    # reopened: the policy refuses archiving, and the page offers no archive button
    run(desk.client, lambda: _set(desk.services, case_id, stage="reopened"))
    assert not run(
        desk.client,
        lambda: _allowed(desk.services, desk.user_id("lead"), case_id, "archive"),
    )
    forms = _assert_offered_forms_are_allowed(desk, "lead", case_id)
    assert "archive" not in forms
    assert desk.post("lead", f"/workspace/cases/{case_id}/archive").status_code == 404
    # concluded again: archived through the button, the page confirms
    run(desk.client, lambda: _set(desk.services, case_id, stage="concluded"))
    done = desk.post("lead", f"/workspace/cases/{case_id}/archive")
    assert done.status_code == 303
    assert done.headers["location"] == f"/workspace/cases/{case_id}?saved=1"
    after = desk.get("lead", done.headers["location"])
    assert "Your changes were saved." in after.text
    assert run(desk.client, lambda: _stage(desk.services, case_id)) == "archived"
    assert "archive" not in _assert_offered_forms_are_allowed(desk, "lead", case_id)


def test_rejected_case_is_archived_by_an_intake_officer_who_is_told_where_it_went(
    desk: Desk,
) -> None:
    case_id, _code = _new_case(desk, "token-dead-ends-reject-01")
    number = run(desk.client, lambda: _case(desk.services, case_id)).number
    r = desk.post(
        "intake",
        f"/workspace/cases/{case_id}/reject",
        {"reason": "insufficient", "expected_stage": "received"},
    )
    assert r.status_code == 303 and r.headers["location"] == "/workspace/cases?done=rejected"
    # the case has left the intake officer's view, but waits on their list of closed cases
    assert desk.get("intake", f"/workspace/cases/{case_id}").status_code == 404
    home = desk.get("intake", "/workspace/")
    assert 'href="/workspace/closed"' in home.text
    listing = desk.get("intake", "/workspace/closed")
    assert listing.status_code == 200 and number in listing.text
    assert f'action="/workspace/cases/{case_id}/archive"' in listing.text
    # nobody else archives it, nor sees the list
    for name in ("inv", "lead", "admin", "auditor", "approver"):
        assert desk.get(name, "/workspace/closed").status_code == 404
        assert desk.post(name, f"/workspace/cases/{case_id}/archive").status_code == 404
    done = desk.post("intake", f"/workspace/cases/{case_id}/archive")
    assert done.status_code == 303 and done.headers["location"] == "/workspace/closed?done=archived"
    told = desk.get("intake", done.headers["location"])
    assert "The case was archived. It is now in the archive" in told.text
    assert f'action="/workspace/cases/{case_id}/archive"' not in told.text
    assert run(desk.client, lambda: _stage(desk.services, case_id)) == "archived"
    # the approvers find it in the archive
    assert number in desk.get("approver", "/workspace/archive").text


def test_transferred_case_is_archived_once_the_department_reported_back(desk: Desk) -> None:
    case_id, _code = _new_case(desk, "token-dead-ends-transfer-01")
    dept = run(desk.client, lambda: _user(desk.services, desk.user_id("liaison"))).department_id
    r = desk.post(
        "intake",
        f"/workspace/cases/{case_id}/transfer",
        {"department_id": dept, "summary": "A supplier quality dispute.", "due_on": "2999-01-01"},
    )
    assert r.status_code == 303
    # not closed yet: listed, no button (it would always fail)
    listing = desk.get("intake", "/workspace/closed")
    assert "Waiting for the department to report back" in listing.text
    assert f'action="/workspace/cases/{case_id}/archive"' not in listing.text
    package_id = run(desk.client, lambda: _package(desk.services, case_id))
    r = desk.post("liaison", f"/workspace/transfers/{package_id}/report-back", {"text": "Done."})
    assert r.status_code == 303
    listing = desk.get("intake", "/workspace/closed")
    assert f'action="/workspace/cases/{case_id}/archive"' in listing.text
    done = desk.post("intake", f"/workspace/cases/{case_id}/archive")
    assert done.status_code == 303 and done.headers["location"].endswith("done=archived")
    assert run(desk.client, lambda: _stage(desk.services, case_id)) == "archived"


def test_team_candidates_hold_an_investigative_role(desk: Desk) -> None:
    case_id, _code = _new_case(desk, "token-dead-ends-team-01")
    page = desk.get("intake", f"/workspace/cases/{case_id}")
    select_box = _OPTION.search(page.text)
    assert select_box is not None
    offered = set(_VALUE.findall(select_box.group(1)))
    assert {desk.user_id("lead"), desk.user_id("inv")} <= offered
    for name in ("admin", "auditor", "officer", "liaison", "approver", "intake"):
        assert desk.user_id(name) not in offered, name
    # and the form refuses them too, with the words used for anyone who cannot be added
    for name in ("admin", "auditor", "officer", "liaison"):
        r = desk.post(
            "intake",
            f"/workspace/cases/{case_id}/team/add",
            {"user_id": desk.user_id(name), "function": "lead", "declared_no_conflict": "yes"},
        )
        assert r.status_code == 400 and "cannot be added to the team" in r.text, name
    assert run(desk.client, lambda: _stage(desk.services, case_id)) == "received"
    # the first member takes the case out of intake: the officer is told where it went
    r = desk.post("intake", f"/workspace/cases/{case_id}/accept", {"expected_stage": "received"})
    r = desk.post(
        "intake",
        f"/workspace/cases/{case_id}/team/add",
        {"user_id": desk.user_id("lead"), "function": "lead", "declared_no_conflict": "yes"},
    )
    assert r.headers["location"] == "/workspace/cases?done=team_formed"
    assert "now has its investigation team" in desk.get("intake", r.headers["location"]).text


def test_saved_forms_confirm_and_withdrawal_says_where_the_case_went(desk: Desk) -> None:
    case_id, _code = _new_case(desk, "token-dead-ends-saved-01")
    r = desk.post("intake", f"/workspace/cases/{case_id}/note", {"text": "Called the desk."})
    assert r.status_code == 303 and r.headers["location"].endswith("?saved=1#notes")
    page = desk.get("intake", r.headers["location"].split("#")[0])
    assert 'role="status"' in page.text and "Your changes were saved." in page.text
    # no confirmation without a save
    assert "Your changes were saved." not in desk.get("intake", f"/workspace/cases/{case_id}").text
    r = desk.post("intake", f"/workspace/cases/{case_id}/conflict", {"confirm": "yes"})
    assert r.headers["location"] == "/workspace/cases?done=conflict"
    assert "You withdrew from the case" in desk.get("intake", r.headers["location"]).text


def test_the_reporter_counts_only_the_files_they_sent(desk: Desk) -> None:
    """R7: a staff upload (a signed interview record) is not one of "the files you sent"."""
    case_id, code = _new_case(desk, "token-dead-ends-files-01")
    desk.post("intake", f"/workspace/cases/{case_id}/accept", {"expected_stage": "received"})
    for name, function in (("lead", "lead"), ("inv", "member")):
        desk.post(
            "intake" if name == "lead" else "lead",
            f"/workspace/cases/{case_id}/team/add",
            {"user_id": desk.user_id(name), "function": function, "declared_no_conflict": "yes"},
        )
    client = desk.use("inv")
    up = client.post(
        f"/workspace/cases/{case_id}/investigation/records",
        data={"_csrf_token": desk.tokens["inv"], "method": "interview", "text": "Signed."},
        files={"file": ("signed.pdf", b"%PDF-1.4 signed", "application/pdf")},
        follow_redirects=False,
    )
    assert up.status_code == 303, up.text
    originals = run(desk.client, lambda: _originals(desk.services, case_id))
    assert sorted(originals) == ["reporter", "reporter", "staff"]
    reporter = desk.anonymous()
    assert sign_in(reporter, code).status_code == 303
    page, _csrf, _ids = case_page(reporter)
    facts = re.search(r"Files you sent</dt>\s*<dd>(\d+)</dd>", page.text)
    assert facts is not None and facts.group(1) == "2"


async def _case(services: Services, case_id: str) -> Case:
    async with services.db.read() as s:
        case = await s.get(Case, case_id)
        assert case is not None
        return case


async def _user(services: Services, user_id: str) -> User:
    async with services.db.read() as s:
        user = await s.get(User, user_id)
        assert user is not None
        return user


async def _package(services: Services, case_id: str) -> str:
    async with services.db.read() as s:
        return str(
            (
                await s.execute(
                    select(TransferPackage.id).where(TransferPackage.case_id == case_id)
                )
            ).scalar_one()
        )


async def _originals(services: Services, case_id: str) -> list[str]:
    async with services.db.read() as s:
        rows = await s.execute(
            select(EvidenceFile.uploaded_by).where(
                EvidenceFile.case_id == case_id, EvidenceFile.kind == "original"
            )
        )
        return [str(r) for r in rows.scalars()]


_LOCATION_CASE = re.compile(r"^/workspace/cases/([0-9a-f]{32})\?saved=1$")


def test_manual_split_at_triage_makes_two_linked_cases(desk: Desk) -> None:
    """W3 with R3: one report becomes two cases, each with its number, the same exclusions,
    followed by the reporter with the one receipt."""
    desk.add("intake2", "intake_officer")
    case_id, code = _new_case(desk, "token-dead-ends-split-01")
    number = run(desk.client, lambda: _case(desk.services, case_id)).number
    # another intake officer withdraws from the report (回避) before the split
    r = desk.post("intake2", f"/workspace/cases/{case_id}/conflict", {"confirm": "yes"})
    assert r.status_code == 303
    page = desk.get("intake", f"/workspace/cases/{case_id}")
    assert f'action="/workspace/cases/{case_id}/split"' in page.text
    form = {"kind": "complaint", "category": "bribery", "expected_stage": "received"}
    empty = desk.post("intake", f"/workspace/cases/{case_id}/split", form | {"part": " "})
    assert empty.status_code == 400 and "Describe the part" in empty.text
    r = desk.post(
        "intake",
        f"/workspace/cases/{case_id}/split",
        form | {"part": "The supplier's late deliveries: a complaint of its own."},
    )
    assert r.status_code == 303, r.text
    found = _LOCATION_CASE.match(r.headers["location"])
    assert found is not None
    new_id = found.group(1)
    assert new_id != case_id
    new = run(desk.client, lambda: _case(desk.services, new_id))
    assert new.linked_case_id == case_id and new.number != number
    assert (new.kind, new.stage, new.received_on) == (
        "complaint",
        "received",
        _received(desk, case_id),
    )
    shown = desk.get("intake", r.headers["location"])
    assert shown.status_code == 200 and "Your changes were saved." in shown.text
    assert "late deliveries" in shown.text and number in shown.text
    assert "采购部负责人" in shown.text  # the persons named come along
    # the same exclusions: the officer who withdrew sees neither case
    assert desk.get("intake2", f"/workspace/cases/{case_id}").status_code == 404
    assert desk.get("intake2", f"/workspace/cases/{new_id}").status_code == 404
    # the reporter follows both with the one receipt
    reporter = desk.anonymous()
    assert sign_in(reporter, code).status_code == 303
    follow, _csrf, ids = case_page(reporter)
    assert set(ids) >= {case_id, new_id}
    assert "Your report was split into two cases" in follow.text
    # once accepted, no split is offered, and a stale form is refused
    desk.post("intake", f"/workspace/cases/{new_id}/accept", {"expected_stage": "received"})
    assert (
        f"/workspace/cases/{new_id}/split"
        not in desk.get("intake", f"/workspace/cases/{new_id}").text
    )
    stale = desk.post(
        "intake",
        f"/workspace/cases/{new_id}/split",
        form | {"expected_stage": "accepted", "part": "x"},
    )
    assert stale.status_code == 400 and "Only a case under review can be split" in stale.text


def _received(desk: Desk, case_id: str) -> Any:
    return run(desk.client, lambda: _case(desk.services, case_id)).received_on
