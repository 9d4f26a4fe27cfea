"""C6: an installation created with the SM4-GCM suite works end to end over HTTP.

The keyring is created with ``Suite.SM4GCM`` (what ``portal init --suite sm4gcm`` does); a
report with an evidence file goes through the real form; every stored ciphertext names suite
2 in its header (``cases.content``, messages: envelope byte 2; the file store objects: evidence
stream byte 2; ``cases.suite``); the reporter's receipt opens the follow-up page and a reply;
the intake officer reads the report; the team lead downloads the file, byte for byte. Skipped
only when this ``cryptography`` build lacks SM4 (``crypto.suites.self_test``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from litestar import Litestar
from litestar.testing import TestClient
from sqlalchemy import select

from crypto.errors import SuiteUnavailableError
from crypto.suites import Suite, self_test
from portal.kernel.db.models import Case, EvidenceFile, Message
from portal.kernel.services import Services
from portal.kernel.settings import Settings
from tests.conftest import _prepare_database, _run
from tests.investigator.ws_helpers import Desk
from tests.portal.test_reporter_journeys import (
    case_page,
    receipt_of,
    report_fields,
    run_db,
    sign_in,
    stored_files,
    submit,
)

EVIDENCE = bytes(range(256)) * 40 + "账本 第一页".encode()
WHAT = "The warehouse manager sells stock on the side every Friday."


@pytest.fixture
def services(settings: Settings, request: pytest.FixtureRequest) -> Iterator[Services]:
    """The shared fixture, with the keyring created for the 国密 suite."""
    from crypto.keyring import create_keyring
    from portal.app.wiring import build_services

    try:
        self_test(Suite.SM4GCM)
    except SuiteUnavailableError as exc:
        pytest.skip(f"this cryptography build lacks SM4: {exc}")
    create_keyring(settings.keyring_dir, Suite.SM4GCM)
    _prepare_database(settings, request)
    built = build_services(settings)
    yield built
    _run(built.close())


def test_C6_sm4gcm_installation_report_follow_up_and_download(
    client: TestClient[Litestar], services: Services, settings: Settings
) -> None:
    assert services.keyring.suite is Suite.SM4GCM
    client.headers["accept-language"] = "en"
    desk = Desk(client, services)
    desk.add("intake", "intake_officer")  # before the report, so it is wrapped for them
    desk.add("lead", "team_lead,investigator")
    desk.anonymous()

    response = submit(
        client,
        report_fields(what=WHAT),
        [("evidence", ("ledger.bin", EVIDENCE, "application/octet-stream"))],
    )
    assert response.status_code == 200, response.text
    code = receipt_of(response)

    # the reporter's side, with the receipt
    assert sign_in(client, code).status_code == 303
    page, csrf, ids = case_page(client)
    assert len(ids) == 1 and "Received" in page.text
    case_id = ids[0]
    sent = client.post(
        "/follow-up/message",
        data={"_csrf_token": csrf, "case_id": case_id, "text": "A detail sealed under SM4."},
        follow_redirects=False,
    )
    assert sent.status_code == 303
    page, _csrf, _ = case_page(client, sent.headers["location"])
    assert "A detail sealed under SM4." in page.text

    # what is stored names the SM4 suite (id 2) in every header
    async def stored(s: object) -> tuple[Case, list[Message], list[EvidenceFile]]:
        case = (await s.execute(select(Case).where(Case.id == case_id))).scalar_one()  # type: ignore[attr-defined]
        msgs = list((await s.execute(select(Message).where(Message.case_id == case_id))).scalars())  # type: ignore[attr-defined]
        files = list(
            (await s.execute(select(EvidenceFile).where(EvidenceFile.case_id == case_id))).scalars()  # type: ignore[attr-defined]
        )
        return case, msgs, files

    case, messages, files = run_db(client, stored)
    assert case.suite == Suite.SM4GCM.value == 2
    assert case.content[:3] == b"E\x01\x02"
    assert messages and all(m.sealed[:3] == b"E\x01\x02" for m in messages)
    objects = stored_files(settings)
    assert files and len(objects) >= len(files)
    for path in objects:
        assert path.read_bytes()[:3] == b"S\x01\x02", path
        assert EVIDENCE[:64] not in path.read_bytes()

    # the intake officer reads the report and forms the team; the lead (who may open
    # originals) downloads the file intact
    case_html = desk.get("intake", f"/workspace/cases/{case_id}")
    assert case_html.status_code == 200 and WHAT in case_html.text
    added = desk.post(
        "intake",
        f"/workspace/cases/{case_id}/team/add",
        {"user_id": desk.user_id("lead"), "function": "lead", "declared_no_conflict": "yes"},
    )
    assert added.status_code == 303, added.text
    case_html = desk.get("lead", f"/workspace/cases/{case_id}")
    assert case_html.status_code == 200 and WHAT in case_html.text
    links = set(re.findall(r'href="/workspace/files/([0-9a-f]{32})"', case_html.text))
    assert links, "no file link on the case page"
    bodies = [desk.get("lead", f"/workspace/files/{file_id}") for file_id in links]
    assert all(r.status_code == 200 for r in bodies)
    assert EVIDENCE in [r.content for r in bodies]
