"""A3 for a 举报+投诉 submission (issue 13, point 6): the complainant block is identity.

The 举报 case of a combined submission holds no complainant identity in its content: the
complainant's name, phone and address are sealed under the identity key with the reporter's
identity, and reached the same way: an identity custodian reads them; an investigator only
after a reasoned request a custodian approves (audited, the reporter told); intake and the
team never. Nothing of them is in plaintext anywhere in the database or its files.
"""

from __future__ import annotations

import html
from pathlib import Path

import pytest
from litestar import Litestar
from litestar.testing import TestClient
from sqlalchemy import select

from portal.kernel.db.models import AuditEntry, Case, CaseEvent, IdentityRequest
from portal.kernel.services import Services
from portal.kernel.settings import Settings
from tests.investigator.ws_helpers import Desk, run
from tests.portal.test_reporter_canary import (
    _dump_database,
    _files_under,
    _hits,
    _letters,
    _needles,
)
from tests.portal.test_reporter_journeys import receipt_of, report_fields, submit

PHONE = "13912345678"


@pytest.fixture
def desk(client: TestClient[Litestar], services: Services) -> Desk:
    d = Desk(client, services)
    d.add("intake", "intake_officer")
    d.add("lead", "team_lead,investigator")
    # a custodian who also works intake, so the case page can show what the custodian reads
    d.add("custodian", "identity_custodian,intake_officer")
    return d


def _both(desk: Desk, marker: str) -> tuple[str, str]:
    desk.anonymous()
    page = submit(
        desk.client,
        report_fields(
            kind="both",
            what=f"what happened {marker}",
            complainant_name=f"complainant {marker}",
            complainant_phone=PHONE,
            complainant_address=f"address {marker}",
            respondent_name="Purchasing department",
            respondent_address="Head office",
            request="Return the deposit",
        ),
    )
    assert page.status_code == 200, page.text
    receipt_of(page)

    async def ids() -> dict[str, str]:
        async with desk.services.db.read() as s:
            return {str(k): str(i) for k, i in (await s.execute(select(Case.kind, Case.id))).all()}

    by_kind: dict[str, str] = run(desk.client, ids)
    return by_kind["report"], by_kind["complaint"]


def test_A3_the_complainant_block_of_a_combined_report_is_reached_like_an_identity(
    desk: Desk, settings: Settings
) -> None:
    marker = _letters()
    secrets_ = (f"complainant {marker}", PHONE, f"address {marker}")
    report_id, complaint_id = _both(desk, marker)

    def shows(page_text: str) -> list[str]:
        return [v for v in secrets_ if v in html.unescape(page_text)]

    # intake reads the 举报 case, its text, and none of the complainant's identity
    intake_page = desk.get("intake", f"/workspace/cases/{report_id}")
    assert intake_page.status_code == 200
    assert f"what happened {marker}" in html.unescape(intake_page.text)
    assert shows(intake_page.text) == []
    # the custodian reads all three, as identity
    custodian_page = desk.get("custodian", f"/workspace/cases/{report_id}")
    assert custodian_page.status_code == 200 and shows(custodian_page.text) == list(secrets_)
    # the 投诉 case is handled in the complainant's name (R4): it keeps its complaint whole
    assert shows(desk.get("intake", f"/workspace/cases/{complaint_id}").text) == list(secrets_)

    # the team: none of it, until a reasoned request is approved by a custodian
    added = desk.post(
        "intake",
        f"/workspace/cases/{report_id}/team/add",
        {"user_id": desk.user_id("lead"), "function": "lead", "declared_no_conflict": "yes"},
    )
    assert added.status_code == 303, added.text
    assert shows(desk.get("lead", f"/workspace/cases/{report_id}").text) == []
    asked = desk.post(
        "lead",
        f"/workspace/cases/{report_id}/identity/request",
        {"reason": "We must hear the complainant about the deposit."},
    )
    assert asked.status_code == 303, asked.text
    assert shows(desk.get("lead", f"/workspace/cases/{report_id}").text) == []

    async def request_id() -> str:
        async with desk.services.db.read() as s:
            row = await s.execute(
                select(IdentityRequest.id).where(IdentityRequest.case_id == report_id)
            )
            return str(row.scalar_one())

    decided = desk.post(
        "custodian",
        f"/workspace/identity-requests/{run(desk.client, request_id)}/decide",
        {"decision": "approve", "tell_reporter": "yes"},
    )
    assert decided.status_code == 303, decided.text
    assert shows(desk.get("lead", f"/workspace/cases/{report_id}").text) == list(secrets_)

    async def trail() -> tuple[list[tuple[str, str | None]], list[str]]:
        async with desk.services.db.read() as s:
            audit = await s.execute(
                select(AuditEntry.action, AuditEntry.actor_user_id)
                .where(AuditEntry.case_id == report_id, AuditEntry.action.like("identity.%"))
                .order_by(AuditEntry.id)
            )
            told = await s.execute(
                select(CaseEvent.kind).where(
                    CaseEvent.case_id == report_id, CaseEvent.public.is_(True)
                )
            )
            return [(a, u) for a, u in audit.all()], list(told.scalars())

    entries, public_events = run(desk.client, trail)
    assert ("identity.request", desk.user_id("lead")) in entries
    assert ("identity.approve", desk.user_id("custodian")) in entries
    assert entries.count(("identity.view", desk.user_id("lead"))) == 1
    assert ("identity.view", desk.user_id("custodian")) in entries
    assert "identity_disclosed" in public_events  # the reporter is told

    # a canary sweep: no column of any row and no file under the data directory holds any of it
    needles = _needles(secrets_)
    leaks = [(t, c) for t, c, data in _dump_database(desk.client) if _hits(data, needles)]
    assert leaks == [], leaks
    for path in _files_under(Path(settings.data_dir)):
        assert not _hits(path.read_bytes(), needles), path
