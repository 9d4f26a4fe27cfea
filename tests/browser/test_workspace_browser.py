"""The investigator workspace in a real Chromium, with JavaScript on and off.

One journey across two browser contexts: a reporter submits a report (the `page` fixture's
context); an intake officer created with `portal user add` signs in for the first time in a
second context (password, authenticator enrolment with a pyotp code, forced password change,
recovery key), triages the case (classify, accept, add a team lead with the no-conflict
declaration) and the reporter then reads the new stage in plain words.
"""

from __future__ import annotations

import re
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pyotp
import pytest
from playwright.sync_api import BrowserContext, Page, expect

from portal.kernel.i18n import translations
from portal.kernel.readmostly import DEFAULT_TTL_S
from tests.browser.conftest import ROOT, PageLog
from tests.browser.test_reporter_browser import (
    CJK,
    RECEIPT_SHAPE,
    assert_clean,
    fill_report,
    path_of,
    sign_in,
    use_english,
)

pytestmark = pytest.mark.browser

NEW_PASSWORD = "violet harbour lantern seventeen"
ONE_TIME = re.compile(r"one-time password \(shown once\): (\S+)")


# --- helpers -------------------------------------------------------------------------------------


class Tr:
    """The words a page shows in one catalogue: ``tr("Stage")`` is "Stage" in English and the
    zh_CN msgstr in Chinese (where it must contain Chinese characters: a missing translation
    fails instead of passing on the English source)."""

    def __init__(self, lang: str) -> None:
        self.lang = lang
        self._catalogue = translations(lang)

    def __call__(self, msgid: str, **values: Any) -> str:
        text = self._catalogue.gettext(msgid)
        if self.lang.startswith("zh"):
            assert CJK.search(text), f"no {self.lang} translation of {msgid!r}"
        return text % values if values else text


ENGLISH = Tr("en")


def add_staff(env: dict[str, str], username: str, roles: str, name: str) -> str:
    """`portal user add` against the live server's data; returns the one-time password."""
    command = [sys.executable, "-m", "portal.app.cli", "user", "add", username]
    command += ["--roles", roles, "--name", name]
    done = subprocess.run(
        command,
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, f"user add failed:\n{done.stdout}\n{done.stderr}"
    match = ONE_TIME.search(done.stdout)
    assert match, done.stdout
    return match.group(1)


def until_the_server_sees_them() -> None:
    """Accounts made with `portal user add` (another process) reach the running server's
    read-mostly staff list within `DEFAULT_TTL_S` (portal.kernel.readmostly): a report that
    arrives sooner is wrapped for the officers it knew, not for the new one. Called after
    adding staff who must read the next report."""
    time.sleep(DEFAULT_TTL_S + 0.5)


def submit_marked_report(page: Page, marker: str, files: Sequence[Path] = ()) -> str:
    """An anonymous report whose text carries `marker` (and `files`); returns the receipt code."""
    fill_report(page, list(files))
    what = f"{marker}: invoices of March 2026 were paid twice to the same supplier."
    page.fill("#f-what", what)
    page.click("form.report-form button[type=submit]")
    code_box = page.locator("#receipt-code")
    expect(code_box).to_be_visible()
    code = " ".join(code_box.inner_text().split())
    assert RECEIPT_SHAPE.fullmatch(code), code
    return code


def first_sign_in(staff: Page, username: str, one_time: str, tr: Tr = ENGLISH) -> str:
    """Password -> authenticator enrolment -> forced password change -> recovery key -> home,
    with the headings checked in the page's language; returns the authenticator secret."""
    staff.goto("/workspace/")
    staff.fill("#username", username)
    staff.fill("#password", one_time)
    staff.click("form[action='/workspace/signin'] button[type=submit]")
    expect(staff).to_have_url(re.compile(r"/workspace/totp/enrol$"))
    expect(staff.locator("h1")).to_have_text(tr("Set up two-step sign-in"))
    expect(staff.locator("img.qr")).to_be_visible()
    secret = staff.locator("code.secret").inner_text().replace(" ", "")
    assert re.fullmatch(r"[A-Z2-7]{16,}", secret), secret
    staff.fill("#code", pyotp.TOTP(secret).now())
    staff.click("form[action='/workspace/totp/enrol'] button[type=submit]")
    # the one-time password must be replaced before anything else
    expect(staff).to_have_url(re.compile(r"/workspace/password$"))
    expect(staff.locator("h1")).to_have_text(tr("Change password"))
    expect(staff.locator("#current_password")).to_have_count(0)
    staff.fill("#new_password", NEW_PASSWORD)
    staff.fill("#new_password_again", NEW_PASSWORD)
    staff.click("form[action='/workspace/password'] button[type=submit]")
    expect(staff.locator("h1")).to_have_text(
        tr("Your password is changed. Here is your recovery key")
    )
    assert staff.locator(".recovery-key code").inner_text().strip()
    staff.click("a.button[href='/workspace/']")
    expect(staff).to_have_url(re.compile(r"/workspace/$"))
    expect(staff.locator("h1")).to_have_text(tr("Workspace"))
    expect(staff.locator("main")).to_contain_text(tr("Signed in as %(name)s.", name=username))
    return secret


def open_case_with(staff: Page, marker: str) -> None:
    """From the inbox, open the received cases one by one until the one carrying `marker`."""
    staff.goto("/workspace/inbox?stage=received")
    links = staff.locator("table.case-list tbody a")
    hrefs = [links.nth(i).get_attribute("href") for i in range(links.count())]
    assert hrefs, "the inbox lists no received case"
    for href in hrefs:
        assert href
        staff.goto(href)
        if marker in staff.locator("#report").inner_text():
            return
    raise AssertionError(f"no case in the inbox carries {marker!r}")


@pytest.fixture
def staff_context(browser: Any, portal_server: str, js: bool) -> Iterator[BrowserContext]:
    """A second, separate browser context (its own cookies) for the staff member."""
    context = browser.new_context(base_url=portal_server, java_script_enabled=js, locale="zh-CN")
    context.set_default_timeout(10_000)
    try:
        yield context
    finally:
        context.close()


# --- the journey ---------------------------------------------------------------------------------


def test_intake_triage_and_reporter_sees_stage(
    page: Page,
    js: bool,
    page_log: PageLog,
    staff_context: BrowserContext,
    portal_env: dict[str, str],
) -> None:
    suffix = secrets.token_hex(3)
    officer, lead = f"intake-{suffix}", f"lead-{suffix}"
    officer_pw = add_staff(portal_env, officer, "intake_officer", f"Intake {suffix}")
    lead_pw = add_staff(portal_env, lead, "team_lead", f"Lead {suffix}")
    until_the_server_sees_them()

    # the reporter
    use_english(page)
    marker = f"MARK-{suffix}"
    code = submit_marked_report(page, marker)

    # the intake officer, in a new context: the workspace starts in the default catalogue
    staff = staff_context.new_page()
    staff_errors: list[str] = []
    staff.on("pageerror", lambda exc: staff_errors.append(str(exc)))
    staff.on(
        "console",
        lambda m: (
            staff_errors.append(m.text)
            if m.type == "error" and not m.location.get("url", "").endswith("/favicon.ico")
            else None
        ),
    )
    staff.goto("/workspace/")
    expect(staff.locator("html")).to_have_attribute("lang", re.compile(r"^zh"))
    assert CJK.search(staff.locator("h1").inner_text()), staff.locator("h1").inner_text()
    use_english(staff)
    # the form sends back to request.url.path, which Litestar gives without the trailing slash
    assert path_of(staff) in ("/workspace", "/workspace/"), staff.url
    expect(staff.locator("h1")).to_have_text("Workspace sign-in")
    first_sign_in(staff, officer, officer_pw)

    # the inbox: metadata only, never the report's text
    staff.click("a[href='/workspace/inbox']")
    expect(staff.locator("h1")).to_have_text("Inbox of new reports")
    expect(staff.locator("table.case-list")).to_be_visible()
    assert marker not in staff.content()

    # the case page shows the report
    open_case_with(staff, marker)
    case_path = path_of(staff)
    assert re.fullmatch(r"/workspace/cases/[^/]+", case_path), case_path
    expect(staff.locator("#report .sealed-text").first).to_contain_text(marker)
    expect(staff.locator(".case-meta dd").first).to_have_text("Received")

    # classify
    triage = staff.locator("#triage")
    triage.locator("#f-sev").select_option("high")
    triage.locator("#f-risk").select_option("medium")
    triage.locator("#f-urgent").check()
    triage.locator("form[action$='/classify'] button[type=submit]").click()
    expect(staff).to_have_url(re.compile(re.escape(case_path) + r"(\?saved=\w+)?$"))
    meta = staff.locator(".case-meta")
    expect(meta).to_contain_text("High")  # the severity in words, never its code
    expect(meta).to_contain_text("Urgent")
    expect(meta.locator("dd").first).to_have_text("Triage")  # the staff's word for the stage

    # accept
    staff.locator("#triage form[action$='/accept'] button[type=submit]").click()
    expect(staff.locator(".case-meta dd").first).to_have_text("Accepted")
    expect(staff.locator("#triage")).to_have_count(1)  # accepted is still an intake stage

    # add the team lead, declaring no conflict of interest
    team = staff.locator("#team")
    team.locator("#f-member").select_option(label=f"Lead {suffix} ({lead})")
    team.locator("#f-function").select_option("lead")
    team.locator("#f-declared").check()
    team.locator("button", has_text="Add to the team").click()
    # the case has left the intake stages (it is now under investigation), and with them the
    # intake officer's access: they land on the case list, told why, not on a 404
    expect(staff).to_have_url(re.compile(r"/workspace/cases\?done=team_formed$"))
    expect(staff.locator("h1")).to_have_text("Cases")
    expect(staff.locator("p.notice")).to_have_text(
        "The case now has its investigation team and has left the intake stages, "
        "so you no longer have access to it."
    )
    assert marker not in staff.content()
    assert staff.locator(f"a[href='{case_path}']").count() == 0
    # the case page answers 404 for them from now on
    staff.goto(case_path)
    expect(staff.locator("h1")).to_have_text("Page not found")
    assert marker not in staff.content()

    # the team lead (first sign-in too) now sees the case, the team and the timeline
    staff.goto("/workspace/")
    staff.click("form.signout button[type=submit]")
    expect(staff.locator("h1")).to_have_text("Workspace sign-in")
    first_sign_in(staff, lead, lead_pw)
    staff.goto(case_path)
    expect(staff.locator("#report .sealed-text").first).to_contain_text(marker)
    expect(staff.locator(".case-meta dd").first).to_have_text("Investigating")
    expect(staff.locator(".case-meta")).to_contain_text("High")
    expect(staff.locator("#team ul")).to_contain_text(f"Lead {suffix} · Lead")
    timeline = staff.locator("#timeline").inner_text()
    # the events in words, never their codes
    for words in (
        "Initial review started",
        "Classified",
        "Accepted (受理)",
        "Investigation team formed",
        "Investigation team changed",
    ):
        assert words in timeline, timeline
    for kind in ("triage_started", "classified", "investigation_started", "team_changed"):
        assert kind not in timeline, timeline

    if js:
        # the expected 404 answer above is logged by Chromium as a console error
        unexpected = [e for e in staff_errors if "status of 404" not in e]
        assert unexpected == [], unexpected

    # the reporter follows up in the first context and reads the stage in plain words
    sign_in(page, code)
    expect(page.locator(".case-facts .stage").first).to_have_text("Under investigation")
    reporter_timeline = page.locator("ol.timeline").inner_text()
    for words in (
        "Your submission was received",
        "The center started reviewing your report",
        "Your report was accepted for handling",
        "An investigation team was formed",
    ):
        assert words in reporter_timeline, reporter_timeline
    # internal steps stay internal
    for internal in ("classified", "team_changed", f"Lead {suffix}", lead):
        assert internal not in page.content(), internal
    assert_clean(js, page_log)
