"""The privacy notice with the administrator's values, and the poster (issue 18, items 2, 6).

The administrator keeps the handler, contact, portal address and retention periods on
/workspace/privacy (validated against the legal floors, audited); the public notice shows them
in zh-CN, zh-TW and en and is linked from the landing page, the report form and the follow-up
page; the archive step applies the periods; the A4 poster carries the address and a QR code
drawn on the server that encodes exactly that address.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import httpx
import pytest
import segno
from litestar import Litestar
from litestar.testing import TestClient
from sqlalchemy import select

from portal.kernel.db.models import AuditEntry, OrgSetting
from portal.kernel.services import Services
from tests.investigator.ws_helpers import Desk, run

HANDLER = "示例集团有限公司 Example Group Co., Ltd."
CONTACT = "个人信息保护负责人 王五, privacy@example.com, 010-12345678"
ADDRESS = "https://jubao.example.com/"
VALID = {
    "handler_name": HANDLER,
    "contact": CONTACT,
    "portal_address": ADDRESS,
    "retention_substantiated_years": "12",
    "retention_unsubstantiated_years": "5",
    "retention_identity_years": "4",
    "log_retention_months": "9",
}


@pytest.fixture
def desk(client: TestClient[Litestar], services: Services) -> Desk:
    d = Desk(client, services)
    d.add("admin", "administrator")
    d.add("intake", "intake_officer")
    d.add("custodian", "identity_custodian")
    d.add("auditor", "auditor")
    return d


def _rows(desk: Desk, stmt: Any) -> list[Any]:
    async def go() -> list[Any]:
        async with desk.services.db.read() as s:
            return list((await s.execute(stmt)).scalars())

    return list(run(desk.client, go))


def _public(desk: Desk, path: str, lang: str) -> httpx.Response:
    client = desk.anonymous()
    client.headers["accept-language"] = lang
    try:
        return client.get(path)
    finally:
        client.headers["accept-language"] = "en"


def test_settings_are_validated_audited_and_shown_in_every_language(desk: Desk) -> None:
    # before anything is saved: the notice says the company has not filled it in yet, with
    # the installation's retention defaults
    before = _public(desk, "/privacy", "en")
    assert before.status_code == 200
    assert 'id="org-missing"' in before.text
    assert re.search(r'id="ret-unsubstantiated">3 years<', before.text)

    assert desk.get("admin", "/workspace/privacy").status_code == 200
    for refused, field, message in (
        ({"retention_unsubstantiated_years": "2"}, "retention_unsubstantiated_years",
         "At least 3 years"),
        ({"retention_substantiated_years": "2"}, "retention_substantiated_years",
         "At least 3 years"),
        ({"log_retention_months": "5"}, "log_retention_months", "At least 6 months"),
        ({"portal_address": "jubao.example.com"}, "portal_address", "starting with https://"),
        ({"handler_name": "  "}, "handler_name", "This is required."),
        ({"retention_identity_years": "x"}, "retention_identity_years", "whole number"),
        ({"retention_identity_years": "6"}, "retention_identity_years", "cannot be kept longer"),
    ):  # fmt: skip
        page = desk.post("admin", "/workspace/privacy", {**VALID, **refused})
        assert page.status_code == 400, field
        assert f'id="e-{field}"' in page.text and message in page.text, field
        assert CONTACT in page.text  # nothing typed is lost
    assert not _rows(desk, select(OrgSetting))  # nothing was saved

    saved = desk.post("admin", "/workspace/privacy", VALID)
    assert saved.status_code == 200 and 'id="privacy-saved"' in saved.text
    entries = _rows(desk, select(AuditEntry).where(AuditEntry.action == "privacy.settings"))
    assert len(entries) == 1 and "handler_name" in entries[0].detail
    assert "log_retention_months" in entries[0].detail and CONTACT not in entries[0].detail

    headings = {
        "zh-CN": ("隐私声明", "个人信息处理者", "12 年", "9 个月", "您的权利及如何行使"),
        "zh-TW": ("隱私宣告", "個人資訊處理者", "12 年", "9 個月", "您的權利及如何行使"),
        "en": ("Privacy notice", "Personal information handler", "12 years", "9 months",
               "Your rights and how to use them"),
    }  # fmt: skip
    for lang, words in headings.items():
        page = _public(desk, "/privacy", lang)
        assert page.status_code == 200
        assert HANDLER in page.text and "privacy@example.com" in page.text, lang
        for word in words:
            assert word in page.text, (lang, word)
        assert re.search(r'id="ret-identity">[^<]*4', page.text), lang
        assert 'id="org-missing"' not in page.text

    # linked from the landing page, the report form and the follow-up sign-in
    for path in ("/", "/report/new", "/follow-up"):
        assert 'href="/privacy"' in _public(desk, path, "en").text, path

    # only the administrator keeps them
    for name in ("intake", "custodian", "auditor"):
        assert desk.get(name, "/workspace/privacy").status_code == 404
        assert desk.post(name, "/workspace/privacy", VALID).status_code == 404
        assert desk.get(name, "/workspace/poster").status_code == 404


def test_archive_applies_the_administrators_retention(desk: Desk) -> None:
    from investigator.domain.retention import archive
    from portal.kernel.db.models import Case, Identity
    from tests.investigator.ws_helpers import submit_case

    assert desk.post("admin", "/workspace/privacy", VALID).status_code == 200

    async def go() -> tuple[dt.date, dt.date | None]:
        case_id, _ = await submit_case(desk.services, token="privacy-retention-0001")
        async with desk.services.db.write() as s:
            case = await s.get(Case, case_id)
            assert case is not None
            case.stage, case.outcome = "rejected", "rejected"
            case.closed_on = dt.date(2026, 1, 15)
            record = await archive(s, desk.services.settings, case, None)
            identity = await s.get(Identity, case_id)
            return record.retain_until, identity.retain_until if identity else None

    retain_until, identity_until = run(desk.client, go)
    assert retain_until == dt.date(2031, 1, 15)  # 5 years, not the installation's 3
    assert identity_until == dt.date(2030, 1, 15)  # 4 years


def _matrix_from_svg(svg: str) -> list[list[bool]]:
    view = re.search(r'viewBox="0 0 (\d+) (\d+)"', svg)
    assert view
    size = int(view.group(1))
    quiet = 4
    n = size - 2 * quiet
    grid = [[False] * n for _ in range(n)]
    for x, y, w in re.findall(r'<rect x="(\d+)" y="(\d+)" width="(\d+)" height="1"/>', svg):
        for i in range(int(w)):
            grid[int(y) - quiet][int(x) - quiet + i] = True
    return grid


def test_poster_renders_for_print_with_a_qr_code_of_the_configured_address(desk: Desk) -> None:
    page = desk.get("admin", "/workspace/poster")
    assert page.status_code == 200
    assert 'id="poster-no-address"' in page.text and "<svg" not in page.text

    assert desk.post("admin", "/workspace/privacy", VALID).status_code == 200
    page = desk.get("admin", "/workspace/poster")
    assert page.status_code == 200
    html = page.text
    assert '<html lang="zh-CN">' in html and 'href="/static/poster.css"' in html
    assert f'<p class="address" id="poster-address">{ADDRESS}</p>' in html
    for words in ("可以举报什么", "匿名受到保护", "查询码", "怎样举报、怎样跟进"):
        assert words in html
    assert "http" not in re.sub(r'(href|src)="/[^"]*"', "", html).replace(ADDRESS, "").replace(
        "http://www.w3.org/2000/svg", ""
    )  # no third-party resource
    svg = re.search(r"<svg.*?</svg>", html, re.S)
    assert svg
    drawn = _matrix_from_svg(svg.group(0))
    # the matrix drawn is the symbol of exactly the configured address ...
    expected = segno.make(ADDRESS, error="m", micro=False, boost_error=False)
    assert drawn == [[bool(c) for c in row] for row in expected.matrix]
    assert expected.designator.endswith("M") and expected.mode == "byte"
    # ... and of no other address (one changed character changes the symbol)
    other = segno.make(ADDRESS.replace("jubao", "jubaO"), error="m", micro=False)
    assert drawn != [[bool(c) for c in row] for row in other.matrix]

    css = desk.anonymous().get("/static/poster.css").text
    assert "@page" in css and "A4" in css and "@media print" in css
