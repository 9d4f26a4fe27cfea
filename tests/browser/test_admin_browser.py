"""The administrator's first day, in a real Chromium, in zh-CN and in English.

An administrator created with `portal user add --roles administrator` signs in for the first
time; the workspace home warns that nobody holds the intake officer and identity custodian
roles. On the directory page they add a department (and are refused a duplicate), add a
report category with its three names and switch a seeded category off. On the staff accounts
page they create an intake officer (the one-time password is shown once) and give that account
the identity custodian role on its own page: the warnings disappear. A reporter is offered the
new category, not the switched-off one, and sends a report in it; the intake officer (first
sign-in) finds the new department and category in that case's triage form and not the
switched-off category. The administrator never sees report content: the inbox and the case
page answer 404 for them.

Each run has a portal server of its own (a fresh `portal init`): the warnings need a portal
with no intake officer, and switching a seeded category off must not reach the other browser
tests. zh-CN (the default catalogue, with JavaScript on) and English (JavaScript off).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect

from investigator.domain.directory import DEPARTMENT_EXISTS
from investigator.domain.staff import MISSING_ROLE_WARNINGS
from investigator.web.auth_routes import NOBODY_ON_DUTY
from tests.browser.conftest import _SERVER_ENV, PageLog, _serve
from tests.browser.test_casework_browser import (  # noqa: F401 (the `cast` fixture)
    Cast,
    Person,
    case_number,
    cast,
    press,
    reporter_page_for,
)
from tests.browser.test_reporter_browser import assert_clean, fill_report, path_of
from tests.browser.test_workspace_browser import Tr, open_case_with

pytestmark = pytest.mark.browser

LANG_JS = [
    pytest.param("zh_CN", True, id="zh_CN-js"),
    pytest.param("en", False, id="en-nojs"),
]
SWITCHED_OFF = "business_dispute"  # a seeded category
ONE_TIME_SHAPE = re.compile(r"\S{8,}")


# --- a server of its own for each run ------------------------------------------------------------


@pytest.fixture
def portal_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A fresh portal (no staff account yet) for this test only."""
    yield from _serve(tmp_path_factory, readers=False)


@pytest.fixture
def portal_env(portal_server: str) -> dict[str, str]:
    return dict(_SERVER_ENV[portal_server])


# --- helpers -------------------------------------------------------------------------------------


def home_warnings(admin: Page) -> list[str]:
    """The home's warnings about missing roles (the calendar-year prompt, which depends on the
    date, is checked in tests/investigator/test_calendar_years.py)."""
    admin.goto("/workspace/")
    callouts = admin.locator("main p.callout:not(.calendar-year)")
    return [" ".join(t.split()) for t in callouts.all_inner_texts()]


def category_name(tr: Tr, names: dict[str, str]) -> str:
    return names["en"] if tr.lang == "en" else names["zh_cn"]


def add_department(admin: Page, name: str) -> None:
    admin.fill("#d-name", name)
    press(admin, "/workspace/directory/departments")


def create_account(admin: Page, username: str, name: str, role: str, tr: Tr) -> str:
    """Create an account on the staff accounts page; returns the one-time password shown."""
    admin.goto("/workspace/users")
    expect(admin.locator("h1")).to_have_text(tr("Staff accounts"))
    admin.fill("#u-name", username)
    admin.fill("#u-display", name)
    admin.check(f"input[name=roles][value={role}]")
    press(admin, "/workspace/users")
    created = admin.locator("section.callout")
    expect(created.locator("h2")).to_have_text(tr("Account created"))
    expect(created).to_contain_text(username)
    one_time = admin.locator("section.callout .receipt-code").inner_text().strip()
    assert ONE_TIME_SHAPE.fullmatch(one_time), one_time
    # shown once: the list, opened again, does not show it
    admin.goto("/workspace/users")
    expect(admin.locator("section.callout")).to_have_count(0)
    assert one_time not in admin.content()
    return one_time


# --- the journey ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("lang", "js"), LANG_JS)
def test_administrator_first_day(
    page: Page,
    js: bool,
    lang: str,
    page_log: PageLog,
    cast: Cast,  # noqa: F811 (the fixture)
) -> None:
    tr = Tr(lang)
    suffix = cast.suffix
    department = f"审计部 {suffix}" if lang == "zh_CN" else f"Internal Audit {suffix}"
    code = f"cat_{suffix}"
    names = {
        "zh_cn": f"数据造假 {suffix}",
        "zh_tw": f"數據造假 {suffix}",
        "en": f"Falsified data {suffix}",
    }
    marker = f"MARK-{suffix}"

    # 1. the administrator, created with `portal user add`, signs in for the first time
    cast.hire(admin="administrator")
    admin_person = cast.join("admin", tr)
    admin = admin_person.page

    # 2. nobody can open a report yet: the home says so, in the page's language
    # (and nobody is on duty: until a roster is saved, the intake officers are)
    expected = [
        tr(MISSING_ROLE_WARNINGS["intake_officer"]),
        tr(MISSING_ROLE_WARNINGS["identity_custodian"]),
    ]
    # reports about the centre itself need an independent reviewer, the owner's to appoint
    reviewer = tr(MISSING_ROLE_WARNINGS["independent_reviewer"])
    assert home_warnings(admin) == [*expected, reviewer, tr(NOBODY_ON_DUTY)]
    # the administrator's home offers no way to report content
    expect(admin.locator("a[href='/workspace/inbox']")).to_have_count(0)

    # 3. departments and categories
    admin.locator("a[href='/workspace/directory']").click()
    expect(admin.locator("h1")).to_have_text(tr("Departments and categories"))
    add_department(admin, department)
    expect(admin).to_have_url(re.compile(r"/workspace/directory(\?saved=1)?$"))
    assert department in [
        admin.locator("input[id^='dn-']").nth(i).input_value()
        for i in range(admin.locator("input[id^='dn-']").count())
    ]
    # the same name again: refused with the reason, what was typed kept
    add_department(admin, department)
    expect(admin.locator("p.form-error")).to_have_text(tr(DEPARTMENT_EXISTS))
    expect(admin.locator("#d-name")).to_have_value(department)
    assert admin.locator("input[id^='dn-']").count() == 1
    # a category with its three names
    admin.goto("/workspace/directory")
    admin.fill("#c-code", code)
    admin.fill("#c-cn", names["zh_cn"])
    admin.fill("#c-tw", names["zh_tw"])
    admin.fill("#c-en", names["en"])
    press(admin, "/workspace/directory/categories")
    expect(admin).to_have_url(re.compile(r"/workspace/directory(\?saved=1)?$"))
    expect(admin.locator(f"#cn-{code}")).to_have_value(names["zh_cn"])
    expect(admin.locator(f"#tw-{code}")).to_have_value(names["zh_tw"])
    expect(admin.locator(f"#en-{code}")).to_have_value(names["en"])
    # a seeded category switched off
    row = admin.locator("tr", has=admin.locator(f"#cn-{SWITCHED_OFF}"))
    expect(row.locator("td").nth(3)).to_have_text(tr("Active"))
    row.locator(f"form[action$='/categories/{SWITCHED_OFF}'] input[value=off] ~ button").click()
    expect(admin).to_have_url(re.compile(r"/workspace/directory(\?saved=1)?$"))
    row = admin.locator("tr", has=admin.locator(f"#cn-{SWITCHED_OFF}"))
    expect(row.locator("td").nth(3)).to_have_text(tr("Switched off"))

    # 4. an intake officer, then the identity custodian role on the account's own page
    intake_name, intake_username = f"Intake {suffix}", f"intake-{suffix}"
    one_time = create_account(admin, intake_username, intake_name, "intake_officer", tr)
    assert home_warnings(admin) == [*expected[1:], reviewer]
    admin.goto("/workspace/users")
    admin.locator("table a", has_text=intake_username).click()
    assert re.fullmatch(r"/workspace/users/[^/]+", path_of(admin)), admin.url
    expect(admin.locator("h1")).to_have_text(tr("Roles of %(name)s", name=intake_username))
    expect(admin.locator("input[name=roles][value=intake_officer]")).to_be_checked()
    admin.check("input[name=roles][value=identity_custodian]")
    admin.locator("form[action^='/workspace/users/'] button[type=submit]").click()
    expect(admin).to_have_url(re.compile(r"/workspace/users(\?saved=1)?$"))
    account_row = admin.locator("tr", has_text=intake_username)
    # the roles in words, never their codes
    expect(account_row).to_contain_text(tr("Intake officer"))
    expect(account_row).to_contain_text(tr("Identity custodian"))
    expect(account_row).not_to_contain_text("intake_officer")
    assert home_warnings(admin) == [reviewer]
    cast.hire(board="independent_reviewer")  # the owner, with `portal user add`
    assert home_warnings(admin) == []
    expect(admin.locator("main p.callout:not(.calendar-year)")).to_have_count(0)

    # 5. the reporter is offered the new category in their language, not the switched-off one
    reporter_page_for(page, tr)
    fill_report(page, [])
    options = page.locator("#f-category option")
    expect(options.and_(page.locator(f"[value={code}]"))).to_have_text(category_name(tr, names))
    expect(page.locator(f"#f-category option[value={SWITCHED_OFF}]")).to_have_count(0)
    page.select_option("#f-category", code)
    page.fill("#f-what", f"{marker}: the test results of March 2026 were rewritten.")
    page.click("form.report-form button[type=submit]")
    expect(page.locator("#receipt-code")).to_be_visible()

    # 6. the intake officer signs in for the first time and triages that case
    cast.accounts["intake"] = (intake_username, intake_name, one_time)
    intake: Person = cast.join("intake", tr)
    open_case_with(intake.page, marker)
    case_path = path_of(intake.page)
    number = case_number(intake.page)
    triage = intake.page.locator("#triage")
    expect(triage.locator("#f-dept option", has_text=department)).to_have_count(1)
    expect(triage.locator(f"#f-cat option[value={code}]")).to_have_text(category_name(tr, names))
    expect(triage.locator(f"#f-cat option[value={code}]")).to_have_attribute("selected", "")
    expect(triage.locator(f"#f-cat option[value={SWITCHED_OFF}]")).to_have_count(0)
    triage.locator("#f-sev").select_option("medium")
    triage.locator("#f-risk").select_option("low")
    triage.locator("#f-dept").select_option(label=department)
    press(intake.page, "/classify")
    expect(intake.page.locator(".case-meta dd").first).to_have_text(tr("Triage"))
    expect(intake.page.locator("#f-dept option:checked")).to_have_text(department)

    # 7. the administrator never sees report content
    for path in ("/workspace/inbox", "/workspace/inbox?stage=received", case_path):
        response = admin.goto(path)
        assert response is not None and response.status == 404, path
        expect(admin.locator("h1")).to_have_text(tr("Page not found"))
        assert marker not in admin.content()
        assert number not in admin.content()

    assert_clean(js, page_log)
    # the refused duplicate (400) and the refused pages (404) are logged by Chromium
    admin_person.errors[:] = [e for e in admin_person.errors if "status of 400" not in e]
    cast.assert_clean(expect_404=("admin",))
