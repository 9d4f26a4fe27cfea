"""Departments and report categories, kept by administrators on /workspace/directory."""

from __future__ import annotations

import re

from litestar import Litestar
from litestar.testing import TestClient
from sqlalchemy import select

from portal.kernel.db.models import AuditEntry, Case, Category, Department
from portal.kernel.services import Services
from tests.investigator.ws_helpers import Desk, run, submit_case

PAGE = "/workspace/directory"


def _desk(client: TestClient[Litestar], services: Services) -> Desk:
    desk = Desk(client, services)
    desk.add("admin", "administrator")
    desk.add("intake", "intake_officer")
    desk.add("inv", "investigator,team_lead,approver,auditor")
    return desk


async def _departments(services: Services) -> dict[str, Department]:
    async with services.db.read() as s:
        return {d.name: d for d in (await s.execute(select(Department))).scalars()}


async def _actions(services: Services) -> list[str]:
    async with services.db.read() as s:
        return list((await s.execute(select(AuditEntry.action))).scalars())


def test_only_administrators_keep_the_lists(
    client: TestClient[Litestar], services: Services
) -> None:
    desk = _desk(client, services)
    for who in ("intake", "inv"):
        assert desk.get(who, PAGE).status_code == 404
        assert desk.post(who, f"{PAGE}/departments", {"name": "法务部"}).status_code == 404
        assert desk.post(who, f"{PAGE}/categories/bribery", {"active": "off"}).status_code == 404
        assert "/workspace/directory" not in desk.get(who, "/workspace/").text
    assert desk.anonymous().get(PAGE, follow_redirects=False).status_code in (303, 404)
    assert "法务部" not in run(client, lambda: _departments(services))
    assert 'href="/workspace/directory"' in desk.get("admin", "/workspace/").text
    assert desk.get("admin", PAGE).status_code == 200


def test_departments_added_renamed_switched_off_and_offered_at_triage(
    client: TestClient[Litestar], services: Services
) -> None:
    desk = _desk(client, services)
    added = desk.post("admin", f"{PAGE}/departments", {"name": "  采购部\u202e "})
    assert added.status_code == 303 and added.headers["location"] == PAGE + "?saved=1"
    depts = run(client, lambda: _departments(services))
    assert list(depts) == ["采购部"]  # trimmed, the bidi override dropped
    dept_id = depts["采购部"].id

    again = desk.post("admin", f"{PAGE}/departments", {"name": "采购部"})
    assert again.status_code == 400 and "exists already" in again.text
    empty = desk.post("admin", f"{PAGE}/departments", {"name": " \u200b "})
    assert empty.status_code == 400 and "Every name is needed" in empty.text
    long = desk.post("admin", f"{PAGE}/departments", {"name": "部" * 201})
    assert long.status_code == 400 and "limited to 200 characters" in long.text
    assert desk.post("admin", f"{PAGE}/departments/nope", {"name": "x"}).status_code == 404

    # the intake officer classifies a case: the department is offered
    case_id, _code = run(client, lambda: submit_case(services, token="dir-1", with_files=False))
    page = desk.get("intake", f"/workspace/cases/{case_id}")
    assert page.status_code == 200 and f'value="{dept_id}"' in page.text

    renamed = desk.post("admin", f"{PAGE}/departments/{dept_id}", {"name": "采购与供应链部"})
    assert renamed.status_code == 303
    off = desk.post("admin", f"{PAGE}/departments/{dept_id}", {"active": "off"})
    assert off.status_code == 303
    dept = run(client, lambda: _departments(services))["采购与供应链部"]
    assert dept.id == dept_id and not dept.active
    assert f'value="{dept_id}"' not in desk.get("intake", f"/workspace/cases/{case_id}").text
    assert "Switched off" in desk.get("admin", PAGE).text

    actions = run(client, lambda: _actions(services))
    for action in ("department.add", "department.rename", "department.disable"):
        assert action in actions


def test_categories_reach_the_report_form_in_every_language(
    client: TestClient[Litestar], services: Services
) -> None:
    desk = _desk(client, services)
    names = {
        "name_zh_cn": "数据泄露",
        "name_zh_tw": "資料外洩",
        "name_en": "Data leak",
    }
    bad_code = desk.post(
        "admin", f"{PAGE}/categories", {"code": "Data Leak!", **names, "in_scope": "yes"}
    )
    assert bad_code.status_code == 400 and "lower-case letters" in bad_code.text
    assert 'value="Data Leak!"' in bad_code.text  # what was typed is kept
    missing = desk.post("admin", f"{PAGE}/categories", {"code": "data_leak", "name_en": "x"})
    assert missing.status_code == 400 and "Every name is needed" in missing.text
    added = desk.post(
        "admin", f"{PAGE}/categories", {"code": "data_leak", **names, "in_scope": "yes"}
    )
    assert added.status_code == 303
    dup = desk.post("admin", f"{PAGE}/categories", {"code": "data_leak", **names})
    assert dup.status_code == 400 and "exists already" in dup.text

    reporter = desk.anonymous()
    for lang, name in (("zh-CN", "数据泄露"), ("zh-TW", "資料外洩"), ("en", "Data leak")):
        form = reporter.get("/report/new", headers={"accept-language": lang})
        assert form.status_code == 200 and name in form.text, lang
        assert 'value="data_leak"' in form.text

    # renamed and taken out of scope, then switched off: gone from the form, kept in the table
    changed = desk.post(
        "admin",
        f"{PAGE}/categories/data_leak",
        {**names, "name_en": "Leak of data", "scope": "1"},
    )
    assert changed.status_code == 303

    async def category() -> Category | None:
        async with services.db.read() as s:
            return await s.get(Category, "data_leak")

    cat = run(client, category)
    assert cat is not None and cat.name_en == "Leak of data" and not cat.in_scope
    assert desk.post("admin", f"{PAGE}/categories/data_leak", {"active": "off"}).status_code == 303
    form = desk.anonymous().get("/report/new", headers={"accept-language": "en"})
    assert 'value="data_leak"' not in form.text
    assert desk.post("admin", f"{PAGE}/categories/none_such", {"active": "on"}).status_code == 404
    actions = run(client, lambda: _actions(services))
    assert actions.count("category.change") == 2 and "category.add" in actions


def test_names_are_escaped_on_the_page(client: TestClient[Litestar], services: Services) -> None:
    desk = _desk(client, services)
    payload = '<script>alert(1)</script>"><img src=x onerror=alert(2)>'
    assert desk.post("admin", f"{PAGE}/departments", {"name": payload}).status_code == 303
    html = desk.get("admin", PAGE).text
    assert "<script>alert(1)" not in html and "<img src=x" not in html
    assert re.search(r"&lt;script&gt;alert\(1\)&lt;/script&gt;", html)


def test_switched_off_rows_leave_the_triage_choices_but_stay_in_their_case(
    client: TestClient[Litestar], services: Services
) -> None:
    """Regression: the triage form offered every category, switched off or not, and classify
    took a switched-off category or department."""
    desk = _desk(client, services)
    assert desk.post("admin", f"{PAGE}/departments", {"name": "审计部"}).status_code == 303
    assert desk.post("admin", f"{PAGE}/departments", {"name": "法务部"}).status_code == 303
    depts = run(client, lambda: _departments(services))
    audit_id, legal_id = depts["审计部"].id, depts["法务部"].id
    case_id, _code = run(client, lambda: submit_case(services, token="dir-off", with_files=False))
    case_path = f"/workspace/cases/{case_id}"
    classify = {"category": "bribery", "severity": "high", "risk": "low"}
    # the case is classified as bribery in 审计部; then both are switched off, and fraud too
    first = desk.post("intake", f"{case_path}/classify", {**classify, "department_id": audit_id})
    assert first.status_code == 303
    for path in ("categories/bribery", "categories/fraud", f"departments/{audit_id}"):
        assert desk.post("admin", f"{PAGE}/{path}", {"active": "off"}).status_code == 303

    page = desk.get("intake", case_path).text
    triage = page[page.index('id="f-cat"') : page.index('id="f-sev"')]
    assert 'value="bribery" selected' in triage  # the case's own, kept
    assert 'value="fraud"' not in triage  # switched off: not offered
    assert 'value="embezzlement"' in triage
    start = page.index('id="f-dept"')
    dept_choice = page[start : page.index("</select>", start)]
    assert f'value="{audit_id}" selected' in dept_choice and f'value="{legal_id}"' in dept_choice
    start = page.index('id="f-t-dept"')  # a transfer goes to an active department only
    transfer = page[start : page.index("</select>", start)]
    assert f'value="{audit_id}"' not in transfer and f'value="{legal_id}"' in transfer

    # classify refuses a switched-off category or department that the case does not have
    refused = desk.post("intake", f"{case_path}/classify", {**classify, "category": "fraud"})
    assert refused.status_code == 400 and "Choose a category." in refused.text
    desk.post("admin", f"{PAGE}/departments/{legal_id}", {"active": "off"})
    refused = desk.post("intake", f"{case_path}/classify", {**classify, "department_id": legal_id})
    assert refused.status_code == 400 and "Choose a department." in refused.text
    # and keeps the ones it has
    kept = desk.post("intake", f"{case_path}/classify", {**classify, "department_id": audit_id})
    assert kept.status_code == 303

    async def case_row() -> tuple[str, str | None]:
        async with services.db.read() as s:
            case = await s.get(Case, case_id)
            assert case is not None
            return case.category, case.department_id

    assert run(client, case_row) == ("bribery", audit_id)
