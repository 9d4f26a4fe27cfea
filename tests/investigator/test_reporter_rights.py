"""Reporter rights from the follow-up page, end to end over HTTP (issue 18, items 2 and 3).

A real-name reporter acknowledges the privacy notice before sending, reads the identity held
about them (decrypted only in their own session, only when they ask), corrects it (the
identity custodians see a record of the change), and asks to withdraw the report or the
identity; an approver or an identity custodian outside the team decides with a reason that
reaches the reporter, and every decision is audited.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import httpx
import pytest
from litestar import Litestar
from litestar.testing import TestClient
from sqlalchemy import select

from crypto.errors import CryptoError
from crypto.recipients import unwrap_for_recipient
from portal.case.rights import reply_key_aad
from portal.kernel.db.models import (
    AuditEntry,
    Case,
    Identity,
    IdentityCorrection,
    KeyWrap,
    PendingNotice,
    RightsRequest,
)
from portal.kernel.services import Services
from tests.investigator.conftest import form_token
from tests.investigator.ws_helpers import Desk, run
from tests.portal.test_reporter_journeys import (
    case_page,
    receipt_of,
    report_fields,
    sign_in,
    submit,
)

NAME = "Zhang Realname"
PHONE = "13912345678"


@pytest.fixture
def desk(client: TestClient[Litestar], services: Services) -> Desk:
    d = Desk(client, services)
    d.add("intake", "intake_officer")
    d.add("lead", "team_lead,investigator")
    d.add("custodian", "identity_custodian")
    d.add("approver", "approver")
    d.add("approver2", "approver")
    d.add("inv", "investigator")
    return d


class Reporter:
    """The reporter's own cookie jar on the shared client (staff use the Desk's jars)."""

    def __init__(self, desk: Desk) -> None:
        self.desk = desk
        self.jar = httpx.Cookies()

    def __enter__(self) -> TestClient[Litestar]:
        client = self.desk.anonymous()
        client.cookies = httpx.Cookies(self.jar)
        return client

    def __exit__(self, *_exc: object) -> None:
        self.jar = httpx.Cookies(self.desk.client.cookies)


def _rows(desk: Desk, stmt: Any) -> list[Any]:
    async def go() -> list[Any]:
        async with desk.services.db.read() as s:
            return list((await s.execute(stmt)).scalars())

    return list(run(desk.client, go))


def _real_name_report(desk: Desk, reporter: Reporter) -> tuple[str, str]:
    """Send a real-name report over HTTP; (receipt code, case id)."""
    with reporter as client:
        fields = report_fields(
            identity_mode="real_name", id_name=NAME, id_phone=PHONE, id_contact="phone"
        )
        page = submit(client, fields)
        assert page.status_code == 200, page.text
        code = receipt_of(page)
        assert sign_in(client, code).status_code == 303
        _page, _csrf, ids = case_page(client)
    assert len(ids) == 1
    return code, ids[0]


def _csrf(client: TestClient[Litestar], path: str = "/follow-up/case") -> str:
    return form_token(client.get(path).text)


def test_a_real_name_report_needs_the_privacy_notice_and_loses_nothing_typed(
    desk: Desk,
) -> None:
    reporter = Reporter(desk)
    with reporter as client:
        client.headers["accept-language"] = "en"
        form = client.get("/report/new").text
        assert 'href="/privacy"' in form and 'name="privacy_ack"' in form
        fields = report_fields(
            identity_mode="real_name", id_name=NAME, id_phone=PHONE, privacy_ack=""
        )
        refused = submit(client, fields)
        assert refused.status_code == 400
        assert "Please confirm that you have read the privacy notice" in refused.text
        assert f'value="{NAME}"' in refused.text and f'value="{PHONE}"' in refused.text
        assert "5% kickback" in refused.text  # the description typed is still there
        assert 'href="#f-privacy_ack"' in refused.text
        # an anonymous report needs no acknowledgement
        anonymous = submit(client, report_fields(privacy_ack=""))
        assert anonymous.status_code == 200 and receipt_of(anonymous)
    assert len(_rows(desk, select(Case.id))) == 1  # only the anonymous one


def test_reporter_reads_and_corrects_the_identity_custodian_sees_the_change(desk: Desk) -> None:
    reporter = Reporter(desk)
    _code, case_id = _real_name_report(desk, reporter)
    with reporter as client:
        page, csrf, _ = case_page(client)
        assert NAME not in page.text  # never on the page they usually open
        assert 'href="/privacy"' in page.text
        shown = client.get("/follow-up/case?show=identity")
        assert shown.status_code == 200
        assert NAME in shown.text and PHONE in shown.text
        assert 'name="id_phone"' in shown.text
        bad = client.post(
            "/follow-up/identity/correct",
            data={"_csrf_token": csrf, "case_id": case_id, "id_name": NAME, "id_phone": "x!"},
        )
        assert bad.status_code == 400
        assert "Enter a phone number with digits only." in bad.text
        assert 'href="#c-id_phone"' in bad.text and 'value="x!"' in bad.text  # nothing lost
        assert re.search(r'id="c-id_phone"[^>]*aria-invalid="true"', bad.text)
        same = client.post(
            "/follow-up/identity/correct",
            data={
                "_csrf_token": csrf, "case_id": case_id, "id_name": NAME, "id_phone": PHONE,
                "id_contact": "phone",
            },
            follow_redirects=False,
        )  # fmt: skip
        assert same.headers["location"].endswith("done=identity_unchanged")
        fixed = client.post(
            "/follow-up/identity/correct",
            data={
                "_csrf_token": csrf, "case_id": case_id, "id_name": NAME,
                "id_phone": "13700000000", "id_email": "zr@example.com", "id_contact": "email",
            },
            follow_redirects=False,
        )  # fmt: skip
        assert fixed.status_code == 303
        page = client.get(fixed.headers["location"])
        assert "Your details were corrected." in page.text
        assert "You corrected your name or contact details" in page.text
        shown = client.get("/follow-up/case?show=identity").text
        assert "13700000000" in shown and "zr@example.com" in shown
        # another receipt's case is not theirs
        other = client.post(
            "/follow-up/identity/correct",
            data={
                "_csrf_token": csrf,
                "case_id": "0" * 32,
                "id_name": "X",
                "id_phone": "13800000000",
            },
        )
        assert other.status_code == 404
    rows = _rows(desk, select(IdentityCorrection).where(IdentityCorrection.case_id == case_id))
    assert len(rows) == 1 and PHONE.encode() not in rows[0].sealed  # sealed
    # the custodian (not on the team) sees before and after; reading it is audited
    seen = desk.get("custodian", "/workspace/identity-corrections")
    assert seen.status_code == 200
    assert PHONE in seen.text and "13700000000" in seen.text
    views = _rows(
        desk,
        select(AuditEntry).where(
            AuditEntry.action == "identity.view", AuditEntry.case_id == case_id
        ),
    )
    assert views
    # the intake officer, an investigator, an approver: 404
    for name in ("intake", "inv", "approver"):
        assert desk.get(name, "/workspace/identity-corrections").status_code == 404


def test_withdrawal_requests_are_decided_outside_the_team_and_the_reason_reaches_the_reporter(
    desk: Desk,
) -> None:
    reporter = Reporter(desk)
    _code, case_id = _real_name_report(desk, reporter)
    with reporter as client:
        csrf = _csrf(client)
        for kind in ("withdraw_report", "withdraw_identity"):
            r = client.post(
                "/follow-up/rights",
                data={"_csrf_token": csrf, "case_id": case_id, "kind": kind},
                follow_redirects=False,
            )
            assert r.headers["location"].endswith("done=rights_asked"), kind
        again = client.post(
            "/follow-up/rights",
            data={"_csrf_token": csrf, "case_id": case_id, "kind": "withdraw_report"},
            follow_redirects=False,
        )
        assert again.headers["location"].endswith("done=rights_waiting")
        page = client.get("/follow-up/case").text
        assert "You asked to withdraw this report" in page
        assert page.count("Waiting for a decision") == 2
    requests = {r.kind: r for r in _rows(desk, select(RightsRequest))}
    assert set(requests) == {"withdraw_report", "withdraw_identity"}
    report_req, identity_req = requests["withdraw_report"], requests["withdraw_identity"]

    # the deciders are told (a count in their notification mail): approvers for the report,
    # custodians for the identity, nobody else
    from investigator.domain import notify

    run(desk.client, lambda: notify.collect(desk.services))
    told = {
        (n.user_id, n.case_id)
        for n in _rows(desk, select(PendingNotice).where(PendingNotice.kind == "rights_request"))
    }
    assert told == {
        (desk.user_id("approver"), case_id),
        (desk.user_id("approver2"), case_id),
        (desk.user_id("custodian"), case_id),
    }

    # each kind reaches its own decider only
    approver_list = desk.get("approver", "/workspace/rights-requests")
    assert approver_list.status_code == 200
    assert report_req.id in approver_list.text and identity_req.id not in approver_list.text
    custodian_list = desk.get("custodian", "/workspace/rights-requests").text
    assert identity_req.id in custodian_list and report_req.id not in custodian_list
    assert desk.get("inv", "/workspace/rights-requests").status_code == 404
    assert desk.get("intake", "/workspace/rights-requests").status_code == 404
    # an approver on the team does not decide (four eyes); a custodian cannot decide a report
    run(desk.client, lambda: _add_member(desk, case_id, "approver2"))
    assert report_req.id not in desk.get("approver2", "/workspace/rights-requests").text
    url = f"/workspace/rights-requests/{report_req.id}/decide"
    assert desk.post("approver2", url, {"decision": "grant", "reason": "x"}).status_code == 404
    assert desk.post("custodian", url, {"decision": "grant", "reason": "x"}).status_code == 404
    # a decision needs a reason
    no_reason = desk.post("approver", url, {"decision": "refuse", "reason": " "})
    assert no_reason.status_code == 400
    assert "Give the reason for your decision" in no_reason.text

    refuse_reason = "The matter concerns a safety risk the company must still look into."
    done = desk.post("approver", url, {"decision": "refuse", "reason": refuse_reason})
    assert done.status_code == 303
    grant_reason = "Your name and contact details have been deleted."
    done = desk.post(
        "custodian",
        f"/workspace/rights-requests/{identity_req.id}/decide",
        {"decision": "grant", "reason": grant_reason},
    )
    assert done.status_code == 303
    # decided twice: refused
    twice = desk.post("approver", url, {"decision": "grant", "reason": "again"})
    assert twice.status_code == 400

    # the identity is gone for good: no row, no wrap of its key (custodians' nor the receipt's)
    assert not _rows(desk, select(Identity).where(Identity.case_id == case_id))
    assert not _rows(
        desk,
        select(KeyWrap).where(KeyWrap.case_id == case_id, KeyWrap.scope == "identity"),
    )
    case = _rows(desk, select(Case).where(Case.id == case_id))[0]
    assert case.anonymous
    actions = [
        (e.action, e.detail)
        for e in _rows(desk, select(AuditEntry).where(AuditEntry.case_id == case_id))
    ]
    assert ("rights.refuse", f"request={report_req.id} kind=withdraw_report") in actions
    assert any(a == "rights.grant" and identity_req.id in d for a, d in actions)
    assert all(refuse_reason not in d and grant_reason not in d for _a, d in actions)

    # the reasons are sealed to the reporter's receipt: no staff member's key opens them
    decided = {r.kind: r for r in _rows(desk, select(RightsRequest))}
    for req in decided.values():
        assert req.sealed_decision and refuse_reason.encode() not in req.sealed_decision
        with pytest.raises((CryptoError, ValueError)):
            unwrap_for_recipient(
                b"\x01" * 32, req.sealed_reply_key or b"", reply_key_aad(case_id, req.id)
            )

    with reporter as client:
        page = client.get("/follow-up/case").text
        assert "Refused" in page and refuse_reason in page
        assert "Granted" in page and grant_reason in page
        assert "Your name and contact details were deleted as you asked" in page
        assert "Your request to withdraw this report was refused" in page
        assert "No name or contact details are held about you for this report." in page


async def _add_member(desk: Desk, case_id: str, name: str) -> None:
    from portal.kernel.db.models import TeamMember

    async with desk.services.db.write() as s:
        s.add(
            TeamMember(
                case_id=case_id,
                user_id=desk.user_id(name),
                function="member",
                no_conflict_declared_at=dt.datetime.now(dt.UTC),
            )
        )


def test_rights_pages_in_chinese(desk: Desk) -> None:
    reporter = Reporter(desk)
    _real_name_report(desk, reporter)
    with reporter as client:
        for lang, words in (
            ("zh-CN", ("您的个人信息和您的权利", "撤回本举报")),
            ("zh-TW", ("您的個人資訊和您的權利", "撤回本舉報")),
        ):
            client.headers["accept-language"] = lang
            page = client.get("/follow-up/case").text
            for word in words:
                assert word in page, (lang, word)
            assert re.search(r"withdraw_report|rights_asked", _visible(page)) is None
        client.headers["accept-language"] = "en"


def _visible(html: str) -> str:
    """The page's text without tags and attribute values (internal codes may sit in values)."""
    return re.sub(r"<[^>]+>", " ", html)
