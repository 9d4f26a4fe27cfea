"""A3: every step of an identity disclosure is in the audit log, through the real pages.

The request (``identity.request``, by the requester), the custodian's decision
(``identity.approve`` / ``identity.refuse``, naming the request and the requester) and every
page that shows the identity (``identity.view``, one per showing, by the reader); pages that
do not show it write none. The chain still verifies afterwards.
"""

from __future__ import annotations

import re

import pytest
from litestar import Litestar
from litestar.testing import TestClient
from sqlalchemy import select

from portal.kernel import audit
from portal.kernel.db.models import AuditEntry, IdentityRequest
from portal.kernel.services import Services
from tests.investigator.ws_helpers import Desk, run, submit_case

_DECIDE = re.compile(r"/identity-requests/([0-9a-f]{32})/decide")
NAME, PHONE = "举报人甲", "13800000000"  # the identity submit_case gives a real-name report


@pytest.fixture
def desk(client: TestClient[Litestar], services: Services) -> Desk:
    d = Desk(client, services)
    d.add("intake", "intake_officer")
    d.add("lead", "team_lead,investigator")
    d.add("lead2", "team_lead,investigator")
    d.add("custodian", "identity_custodian")
    return d


def _entries(desk: Desk, case_id: str) -> list[tuple[str, str | None, str]]:
    async def go() -> list[tuple[str, str | None, str]]:
        async with desk.services.db.read() as s:
            rows = await s.execute(
                select(AuditEntry.action, AuditEntry.actor_user_id, AuditEntry.detail)
                .where(AuditEntry.case_id == case_id, AuditEntry.action.like("identity.%"))
                .order_by(AuditEntry.id)
            )
            return [(a, u, d) for a, u, d in rows]

    return list(run(desk.client, go))


def _new_team_case(desk: Desk, token: str) -> str:
    case_id, _code = run(desk.client, lambda: submit_case(desk.services, token=token))
    for name in ("lead", "lead2"):
        added = desk.post(
            "intake",
            f"/workspace/cases/{case_id}/team/add",
            {"user_id": desk.user_id(name), "function": "lead", "declared_no_conflict": "yes"},
        )
        assert added.status_code == 303, added.text
    return str(case_id)


def _request(desk: Desk, who: str, case_id: str) -> str:
    asked = desk.post(
        who,
        f"/workspace/cases/{case_id}/identity/request",
        {"reason": "We must interview the reporter about the ledger."},
    )
    assert asked.status_code == 303, asked.text

    async def go() -> str:
        async with desk.services.db.read() as s:
            return str(
                (
                    await s.execute(
                        select(IdentityRequest.id).where(
                            IdentityRequest.case_id == case_id,
                            IdentityRequest.requester_id == desk.user_id(who),
                            IdentityRequest.status == "pending",
                        )
                    )
                ).scalar_one()
            )

    request_id = str(run(desk.client, go))
    assert request_id in _DECIDE.findall(desk.get("custodian", "/workspace/identity-requests").text)
    return request_id


def test_A3_request_decision_and_every_view_of_the_identity_are_audited(desk: Desk) -> None:
    case_id = _new_team_case(desk, "token-a3-identity-audit-1")
    lead, lead2 = desk.user_id("lead"), desk.user_id("lead2")
    custodian = desk.user_id("custodian")

    # before any disclosure: case pages without the identity write no identity entry
    page = desk.get("lead", f"/workspace/cases/{case_id}")
    assert page.status_code == 200 and NAME not in page.text
    assert _entries(desk, case_id) == []

    approved_id = _request(desk, "lead", case_id)
    refused_id = _request(desk, "lead2", case_id)
    assert [(a, u) for a, u, _d in _entries(desk, case_id)] == [
        ("identity.request", lead),
        ("identity.request", lead2),
    ]
    assert {d for _a, _u, d in _entries(desk, case_id)} == {
        f"request={approved_id}",
        f"request={refused_id}",
    }

    for request_id, decision in ((approved_id, "approve"), (refused_id, "refuse")):
        decided = desk.post(
            "custodian",
            f"/workspace/identity-requests/{request_id}/decide",
            {"decision": decision, "tell_reporter": "yes"},
        )
        assert decided.status_code == 303, decided.text
    decisions = _entries(desk, case_id)[2:]
    assert decisions == [
        ("identity.approve", custodian, f"request={approved_id} requester={lead} told=True"),
        ("identity.refuse", custodian, f"request={refused_id} requester={lead2} told=True"),
    ]

    # each showing of the identity is its own entry, by the reader
    for _ in range(2):
        shown = desk.get("lead", f"/workspace/cases/{case_id}")
        assert shown.status_code == 200 and NAME in shown.text and PHONE in shown.text
    # the refused requester sees no identity and logs no reading
    not_shown = desk.get("lead2", f"/workspace/cases/{case_id}")
    assert not_shown.status_code == 200 and NAME not in not_shown.text
    views = [(a, u) for a, u, _d in _entries(desk, case_id)[4:]]
    assert views == [("identity.view", lead), ("identity.view", lead)]

    # a case page shown again with an error message still shows, and logs, the identity
    refused_action = desk.post(
        "lead", f"/workspace/cases/{case_id}/identity/request", {"reason": "short"}
    )
    assert refused_action.status_code == 400 and NAME in refused_action.text
    assert _entries(desk, case_id)[-1][:2] == ("identity.view", lead)

    result = run(desk.client, lambda: audit.verify(desk.services.db))
    assert result.ok, result
