"""The case screens through the real app, signed in through the real password + TOTP flow."""

from __future__ import annotations

import re
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import TestClient
from sqlalchemy import select

from portal.kernel.db.models import AuditEntry, Case, EvidenceFile, Subject, User
from portal.kernel.services import Services
from tests.investigator.ws_helpers import REPORT_TEXT, Desk, case_ids_on, run, submit_case

_RECEIPT = re.compile(r'<span class="receipt-group">([0-9A-Z]+)</span>')
_LINK_FORM = re.compile(r"/subjects/([0-9a-f]{32})/link")


@pytest.fixture
def desk(client: TestClient[Litestar], services: Services) -> Desk:
    d = Desk(client, services)
    d.add("intake", "intake_officer")
    d.add("lead", "team_lead,investigator")
    d.add("inv", "investigator")
    d.add("custodian", "identity_custodian")
    d.add("liaison", "department_liaison", department="采购部")
    return d


def new_case(desk: Desk, token: str = "token-case-routes-0001", **kw: Any) -> str:
    case_id, _code = run(desk.client, lambda: submit_case(desk.services, token=token, **kw))
    return str(case_id)


async def _get(services: Services, model: Any, key: str) -> Any:
    async with services.db.read() as s:
        return await s.get(model, key)


async def _rows(services: Services, stmt: Any) -> list[Any]:
    async with services.db.read() as s:
        return list((await s.execute(stmt)).scalars())


def stage_of(desk: Desk, case_id: str) -> str:
    return str(run(desk.client, lambda: _get(desk.services, Case, case_id)).stage)


def form_with_team(desk: Desk, case_id: str, *members: tuple[str, str]) -> None:
    for name, function in members:
        r = desk.post(
            "intake",
            f"/workspace/cases/{case_id}/team/add",
            {"user_id": desk.user_id(name), "function": function, "declared_no_conflict": "yes"},
        )
        assert r.status_code == 303, r.text


def test_inbox_and_list_show_metadata_never_content(desk: Desk) -> None:
    case_id = new_case(desk)
    number = run(desk.client, lambda: _get(desk.services, Case, case_id)).number
    for path in ("/workspace/inbox", "/workspace/cases", f"/workspace/cases?number={number}"):
        page = desk.get("intake", path)
        assert page.status_code == 200
        assert number in page.text and case_id in case_ids_on(page.text)
        assert REPORT_TEXT not in page.text and "采购部负责人" not in page.text
    assert "No case with that number" in desk.get("intake", "/workspace/cases?number=99999999").text
    # roles without list permission get the same 404 as a missing page
    assert desk.get("custodian", "/workspace/cases").status_code == 404
    assert desk.get("liaison", "/workspace/inbox").status_code == 404


def test_case_page_decrypts_for_intake_without_identity(desk: Desk) -> None:
    case_id = new_case(desk)
    page = desk.get("intake", f"/workspace/cases/{case_id}")
    assert page.status_code == 200
    assert REPORT_TEXT in page.text and "采购部负责人" in page.text
    # A3: no identity, and not even a hint that there is one
    assert "举报人甲" not in page.text and "13800000000" not in page.text
    assert "Reporter's identity" not in page.text and "has not given an identity" not in page.text
    assert "ledger.txt" not in page.text  # an original: team members only
    assert "evidence.png" in page.text  # its metadata-stripped working copy
    actions = run(
        desk.client,
        lambda: _rows(
            desk.services, select(AuditEntry.action).where(AuditEntry.case_id == case_id)
        ),
    )
    assert "case.view" in actions
    assert desk.get("inv", f"/workspace/cases/{case_id}").status_code == 404
    assert desk.get("intake", "/workspace/cases/" + "0" * 32).status_code == 404


def test_triage_accept_and_reject(desk: Desk) -> None:
    a = new_case(desk, "token-case-routes-accept")
    b = new_case(desk, "token-case-routes-reject")
    stale = desk.post("intake", f"/workspace/cases/{a}/accept", {"expected_stage": "triage"})
    assert stale.status_code == 409 and stage_of(desk, a) == "received"
    r = desk.post("intake", f"/workspace/cases/{a}/accept", {"expected_stage": "received"})
    assert r.status_code == 303 and stage_of(desk, a) == "accepted"
    # accepted twice: refused, nothing changes
    again = desk.post("intake", f"/workspace/cases/{a}/accept", {"expected_stage": "accepted"})
    assert again.status_code == 400 and stage_of(desk, a) == "accepted"
    # the first team takes it out of the intake stages: the intake officer no longer opens it,
    # so they are sent to the case list with a notice saying why, not to a case page's 404
    r = desk.post(
        "intake",
        f"/workspace/cases/{a}/team/add",
        {"user_id": desk.user_id("lead"), "function": "lead", "declared_no_conflict": "yes"},
    )
    assert r.status_code == 303 and r.headers["location"] == "/workspace/cases?done=team_formed"
    assert stage_of(desk, a) == "investigating"
    assert desk.get("intake", f"/workspace/cases/{a}").status_code == 404
    listing = desk.get("intake", r.headers["location"])
    assert listing.status_code == 200
    assert "The case now has its investigation team" in listing.text
    assert a not in case_ids_on(listing.text)
    bad = desk.post("intake", f"/workspace/cases/{b}/reject", {"reason": "because"})
    assert bad.status_code == 400 and stage_of(desk, b) == "received"
    r = desk.post(
        "intake",
        f"/workspace/cases/{b}/reject",
        {"reason": "duplicate", "expected_stage": "received"},
    )
    assert r.status_code == 303 and stage_of(desk, b) == "rejected"
    assert r.headers["location"] == "/workspace/cases?done=rejected"
    assert "The case was not accepted" in desk.get("intake", r.headers["location"]).text
    # an unknown notice name shows no notice at all
    plain = desk.get("intake", "/workspace/cases?done=<b>x</b>")
    assert plain.status_code == 200 and 'class="notice"' not in plain.text
    assert "<b>x</b>" not in plain.text
    classify = desk.post(
        "intake", f"/workspace/cases/{a}/classify", {"severity": "high", "risk": "low"}
    )
    assert classify.status_code == 404


def test_classify_moves_to_triage(desk: Desk) -> None:
    case_id = new_case(desk)
    r = desk.post(
        "intake",
        f"/workspace/cases/{case_id}/classify",
        {"category": "bribery", "severity": "high", "risk": "medium", "urgent": "yes"},
    )
    assert r.status_code == 303
    case = run(desk.client, lambda: _get(desk.services, Case, case_id))
    assert (case.stage, case.severity, case.urgent) == ("triage", "high", True)


def test_team_add_needs_the_declaration(desk: Desk) -> None:
    case_id = new_case(desk)
    page = desk.get("intake", f"/workspace/cases/{case_id}")
    assert desk.user_id("lead") in page.text  # offered in the picker
    missing = desk.post(
        "intake",
        f"/workspace/cases/{case_id}/team/add",
        {"user_id": desk.user_id("lead"), "function": "lead"},
    )
    assert missing.status_code == 400
    assert "declare that they have no conflict" in missing.text
    assert desk.get("lead", f"/workspace/cases/{case_id}").status_code == 404
    form_with_team(desk, case_id, ("lead", "lead"))
    page = desk.get("lead", f"/workspace/cases/{case_id}")
    assert page.status_code == 200 and REPORT_TEXT in page.text
    assert "ledger.txt" in page.text  # members see originals
    # the lead manages the team from now on
    desk.post("intake", f"/workspace/cases/{case_id}/accept", {"expected_stage": "received"})
    r = desk.post(
        "lead",
        f"/workspace/cases/{case_id}/team/add",
        {"user_id": desk.user_id("inv"), "function": "expert", "declared_no_conflict": "yes"},
    )
    # the lead still sees the case: back to its page
    assert r.status_code == 303 and r.headers["location"] == f"/workspace/cases/{case_id}?saved=1"
    assert desk.get("inv", f"/workspace/cases/{case_id}").status_code == 200
    r = desk.post(
        "lead", f"/workspace/cases/{case_id}/team/remove", {"user_id": desk.user_id("inv")}
    )
    assert r.status_code == 303
    assert desk.get("inv", f"/workspace/cases/{case_id}").status_code == 404


def test_linking_a_subject_hides_the_case_from_that_user(desk: Desk) -> None:
    case_id = new_case(desk)
    number = run(desk.client, lambda: _get(desk.services, Case, case_id)).number
    form_with_team(desk, case_id, ("lead", "lead"), ("inv", "member"))
    assert case_id in case_ids_on(desk.get("inv", "/workspace/cases").text)
    page = desk.get("lead", f"/workspace/cases/{case_id}")
    subject_id = _LINK_FORM.search(page.text).group(1)  # type: ignore[union-attr]
    r = desk.post(
        "lead",
        f"/workspace/cases/{case_id}/subjects/{subject_id}/link",
        {"user_id": desk.user_id("inv")},
    )
    assert r.status_code == 303
    assert desk.get("inv", f"/workspace/cases/{case_id}").status_code == 404
    assert case_id not in case_ids_on(desk.get("inv", "/workspace/cases").text)
    search = desk.get("inv", f"/workspace/cases?number={number}")
    assert case_id not in search.text and "No case with that number" in search.text
    # every case route answers 404 to the subject, exactly like a missing case
    assert desk.post("inv", f"/workspace/cases/{case_id}/note", {"text": "x"}).status_code == 404
    # the team picker no longer offers them, without saying why
    assert (
        desk.user_id("inv")
        not in desk.get("lead", f"/workspace/cases/{case_id}")
        .text.split('id="f-member"')[1]
        .split("</select>")[0]
    )
    subjects = run(
        desk.client,
        lambda: _rows(desk.services, select(Subject.user_id).where(Subject.case_id == case_id)),
    )
    assert desk.user_id("inv") in subjects


def test_adding_a_subject_with_a_staff_account(desk: Desk) -> None:
    case_id = new_case(desk)
    r = desk.post(
        "intake",
        f"/workspace/cases/{case_id}/subjects/add",
        {
            "name": "王五",
            "department": "财务部",
            "position": "经理",
            "user_id": desk.user_id("lead"),
        },
    )
    assert r.status_code == 303
    assert "王五" in desk.get("intake", f"/workspace/cases/{case_id}").text
    refused = desk.post(
        "intake",
        f"/workspace/cases/{case_id}/team/add",
        {"user_id": desk.user_id("lead"), "function": "lead", "declared_no_conflict": "yes"},
    )
    assert refused.status_code == 400 and "cannot be added" in refused.text


def test_conflict_declaration_removes_the_case(desk: Desk) -> None:
    case_id = new_case(desk)
    form_with_team(desk, case_id, ("inv", "member"))
    assert desk.post("inv", f"/workspace/cases/{case_id}/conflict").status_code == 400
    r = desk.post("inv", f"/workspace/cases/{case_id}/conflict", {"confirm": "yes"})
    assert r.status_code == 303 and r.headers["location"] == "/workspace/cases?done=conflict"
    assert desk.get("inv", f"/workspace/cases/{case_id}").status_code == 404
    assert case_id not in case_ids_on(desk.get("inv", "/workspace/cases").text)


def test_messages_and_notes_are_sealed_and_shown(desk: Desk) -> None:
    case_id = new_case(desk)
    r = desk.post("intake", f"/workspace/cases/{case_id}/message", {"text": "Please tell us when."})
    assert r.status_code == 303
    r = desk.post("intake", f"/workspace/cases/{case_id}/note", {"text": "Check the ledger."})
    assert r.status_code == 303
    assert desk.post("intake", f"/workspace/cases/{case_id}/note", {"text": " "}).status_code == 400
    page = desk.get("intake", f"/workspace/cases/{case_id}").text
    assert "Please tell us when." in page and "Check the ledger." in page


def _file(desk: Desk, case_id: str, kind: str) -> str:
    ids = run(
        desk.client,
        lambda: _rows(
            desk.services,
            select(EvidenceFile.id).where(
                EvidenceFile.case_id == case_id, EvidenceFile.kind == kind
            ),
        ),
    )
    return str(ids[0])


def test_file_download_headers_and_originals_rule(desk: Desk) -> None:
    case_id = new_case(desk)
    form_with_team(desk, case_id, ("lead", "lead"))
    original = _file(desk, case_id, "original")
    working = _file(desk, case_id, "working")
    r = desk.get("intake", f"/workspace/files/{working}")
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/octet-stream"
    assert r.headers["content-disposition"].startswith("attachment;")
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.content.startswith(b"\x89PNG") and b"Reporter Name" not in r.content
    originals = list(
        run(
            desk.client,
            lambda: _rows(
                desk.services,
                select(EvidenceFile.id).where(
                    EvidenceFile.case_id == case_id, EvidenceFile.kind == "original"
                ),
            ),
        )
    )
    assert original in originals
    for file_id in originals:
        assert desk.get("intake", f"/workspace/files/{file_id}").status_code == 404
    got = [desk.get("lead", f"/workspace/files/{f}") for f in originals]
    assert all(g.status_code == 200 for g in got)
    assert any(g.content == b"secret ledger lines" for g in got)
    assert desk.get("inv", f"/workspace/files/{working}").status_code == 404
    assert desk.get("lead", "/workspace/files/nope").status_code == 404
    actions = run(
        desk.client,
        lambda: _rows(
            desk.services, select(AuditEntry.detail).where(AuditEntry.action == "file.download")
        ),
    )
    assert any(working in a for a in actions)


def test_transfer_package_reaches_the_liaison_not_the_case(desk: Desk) -> None:
    case_id = new_case(desk)
    dept = run(
        desk.client,
        lambda: _get(desk.services, User, desk.user_id("liaison")),
    ).department_id
    r = desk.post(
        "intake",
        f"/workspace/cases/{case_id}/transfer",
        {
            "department_id": dept,
            "summary": "Supplier quality dispute, please handle.",
            "due_on": "2999-01-01",
        },
    )
    assert r.status_code == 303, r.text
    package_path, _saved = r.headers["location"].split("?")
    assert _saved == "saved=1"  # the package page confirms the transfer
    package_id = package_path.rsplit("/", 1)[1]
    assert stage_of(desk, case_id) == "transferred"
    page = desk.get("intake", package_path)
    assert page.status_code == 200 and "Supplier quality dispute" in page.text
    client = desk.use("intake")
    upload = client.post(
        f"{package_path}/files",
        files=[
            ("_csrf_token", (None, desk.tokens["intake"])),
            ("redacted", ("redacted.txt", b"blacked out copy", "text/plain")),
        ],
        follow_redirects=False,
    )
    assert upload.status_code == 303, upload.text
    # the liaison: summary and redacted copy, never the case page nor an original
    listing = desk.get("liaison", "/workspace/transfers")
    assert listing.status_code == 200
    assert "Supplier quality dispute" in listing.text and "redacted.txt" in listing.text
    assert REPORT_TEXT not in listing.text and "举报人甲" not in listing.text
    assert desk.get("liaison", f"/workspace/cases/{case_id}").status_code == 404
    redacted = _file(desk, case_id, "redacted")
    got = desk.get("liaison", f"/workspace/files/{redacted}")
    assert got.status_code == 200 and got.content == b"blacked out copy"
    for kind in ("original", "working"):
        assert (
            desk.get("liaison", f"/workspace/files/{_file(desk, case_id, kind)}").status_code == 404
        )
    assert desk.get("liaison", package_path).status_code == 404  # the creator's page only
    r = desk.post(
        "liaison", f"/workspace/transfers/{package_id}/report-back", {"text": "Refunded."}
    )
    assert r.status_code == 303
    assert "Refunded." in desk.get("liaison", "/workspace/transfers").text
    # another department's liaison sees nothing
    desk.add("other", "department_liaison", department="财务部")
    assert "Supplier quality dispute" not in desk.get("other", "/workspace/transfers").text
    assert (
        desk.post(
            "other", f"/workspace/transfers/{package_id}/report-back", {"text": "x"}
        ).status_code
        == 404
    )


def test_identity_request_approved_by_a_custodian(desk: Desk) -> None:
    case_id = new_case(desk)
    form_with_team(desk, case_id, ("lead", "lead"))
    page = desk.get("lead", f"/workspace/cases/{case_id}")
    assert "举报人甲" not in page.text and "Request the reporter" in page.text
    short = desk.post("lead", f"/workspace/cases/{case_id}/identity/request", {"reason": "why"})
    assert short.status_code == 400
    r = desk.post(
        "lead",
        f"/workspace/cases/{case_id}/identity/request",
        {"reason": "We must interview the reporter about the ledger."},
    )
    assert r.status_code == 303
    listing = desk.get("custodian", "/workspace/identity-requests")
    assert listing.status_code == 200
    request_id = re.search(r"/identity-requests/([0-9a-f]{32})/decide", listing.text).group(1)  # type: ignore[union-attr]
    assert (
        desk.post("custodian", f"/workspace/identity-requests/{request_id}/decide").status_code
        == 400
    )
    r = desk.post(
        "custodian",
        f"/workspace/identity-requests/{request_id}/decide",
        {"decision": "approve", "tell_reporter": "yes"},
    )
    assert r.status_code == 303
    page = desk.get("lead", f"/workspace/cases/{case_id}")
    assert "举报人甲" in page.text and "13800000000" in page.text
    assert request_id not in desk.get("custodian", "/workspace/identity-requests").text
    # the lead cannot decide requests (not a custodian)
    assert desk.get("lead", "/workspace/identity-requests").status_code == 404


def test_custodian_who_is_a_subject_never_sees_the_request(desk: Desk) -> None:
    case_id = new_case(desk)
    form_with_team(desk, case_id, ("lead", "lead"))
    desk.post(
        "lead",
        f"/workspace/cases/{case_id}/identity/request",
        {"reason": "We must interview the reporter about the ledger."},
    )
    desk.post(
        "lead",
        f"/workspace/cases/{case_id}/subjects/add",
        {"name": "Custodian", "user_id": desk.user_id("custodian")},
    )
    listing = desk.get("custodian", "/workspace/identity-requests")
    assert listing.status_code == 200 and "/decide" not in listing.text


def test_register_by_phone_gives_a_working_receipt(
    desk: Desk, client: TestClient[Litestar]
) -> None:
    form = desk.get("intake", "/workspace/register")
    assert form.status_code == 200
    token = re.search(r'name="submission_token" value="([^"]+)"', form.text).group(1)  # type: ignore[union-attr]
    assert desk.get("lead", "/workspace/register").status_code == 404
    fields = {
        "submission_token": token,
        "channel": "phone",
        "kind": "report",
        "identity_mode": "anonymous",
        "category": "bribery",
        "relation": "supplier",
        "what": "A caller says the warehouse manager sells stock on the side.",
        "declaration": "yes",
    }
    bad = desk.post("intake", "/workspace/register", {**fields, "channel": "pigeon"})
    assert bad.status_code == 400 and "Choose how the report was received" in bad.text
    done = desk.post("intake", "/workspace/register", fields)
    assert done.status_code == 200, done.text
    code = " ".join(_RECEIPT.findall(done.text))
    assert code
    phone_cases = run(
        desk.client, lambda: _rows(desk.services, select(Case).where(Case.channel == "phone"))
    )
    assert len(phone_cases) == 1
    # the reporter's side: the receipt signs in
    anon = desk.anonymous()
    signin = anon.get("/follow-up")
    csrf = re.search(r'name="_csrf_token"\s+value="([^"]+)"', signin.text).group(1)  # type: ignore[union-attr]
    attempts = re.search(r'name="attempts"\s+value="([^"]*)"', signin.text)
    data = {"_csrf_token": csrf, "code": code}
    if attempts:
        data["attempts"] = attempts.group(1)
    r = anon.post("/follow-up", data=data, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/follow-up/case"
    followup = anon.get("/follow-up/case")
    assert followup.status_code == 200 and "Report (举报)" in followup.text
