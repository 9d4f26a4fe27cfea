"""The staff journey after triage, in a real Chromium, in zh-CN and in English (issue 8).

Each person works in a browser context of their own (own cookies), signed in for the first
time through the real flow (password, authenticator enrolment, forced password change):

* ``test_anonymous_report_to_rated_outcome``: an anonymous reporter sends two files; the intake
  officer asks a question, triages, names the accused (a staff account), accepts and forms the
  team (then lands on the case list, told why); the reporter reads the question, replies and
  adds a file; the lead adds an investigator and writes the investigation plan and a record;
  the investigator answers the reporter and closes the step; the lead writes the handling plan
  and submits it; an approver approves it (then lands on the case list); the investigator
  records the implementation; the lead concludes the case as substantiated; the reporter signs
  in with the receipt code, reads the outcome and the answer, and rates the handling, which
  the lead then reads. Staff not on the case and the accused get 404 and never see the report;
  the reporter never sees a staff name, a role or an internal step.
* ``test_real_name_reward``: a real-name report handled to a substantiated conclusion; the lead
  proposes a reward, an approver approves it with an opinion; the reporter sees it granted,
  claims it (the team cannot read the claim), and only then does the reward officer pay it.

Both run in zh-CN (the default catalogue: assertions on the Chinese words, checked to be
Chinese) and in English, one with JavaScript on and one with it off (staff and reporter
alike; see ANONYMOUS_LANG_JS and REWARD_LANG_JS). On a failure every person's page is saved as a
screenshot in tests/browser/artifacts/.
"""

from __future__ import annotations

import datetime as dt
import re
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from investigator.roles import ROLES
from tests.browser.conftest import ARTIFACTS, PageLog, _safe_name
from tests.browser.test_reporter_browser import (
    assert_clean,
    evidence_files,
    fill_report,
    path_of,
    sign_in,
    use_english,
)
from tests.browser.test_workspace_browser import (
    Tr,
    add_staff,
    first_sign_in,
    open_case_with,
    submit_marked_report,
    until_the_server_sees_them,
)

pytestmark = pytest.mark.browser

# zh_CN is the default catalogue (the page's Accept-Language is zh-CN); English is chosen with
# the language form. Not the full matrix with JavaScript on and off (four more minutes): each
# journey runs once per language, and each language once with JavaScript off. The anonymous
# report is sent with JavaScript off in the default catalogue (issue 8).
ANONYMOUS_LANG_JS = [
    pytest.param("zh_CN", False, id="zh_CN-nojs"),
    pytest.param("en", True, id="en-js"),
]
REWARD_LANG_JS = [
    pytest.param("zh_CN", True, id="zh_CN-js"),
    pytest.param("en", False, id="en-nojs"),
]
NUMBER = re.compile(r"\d{8,12}")
INTERNAL_EVENTS = (
    "team_changed",
    "classified",
    "plan_saved",
    "step_added",
    "investigation_record",
    "reward_proposed",
)


# --- the cast: staff members, each in their own browser context ---------------------------------


@dataclass
class Person:
    page: Page
    username: str
    name: str
    errors: list[str] = field(default_factory=list)


class Cast:
    """Staff accounts created with `portal user add` (before the report: an intake officer
    receives the key of the reports that arrive after their account exists), each signed in
    later, for the first time, in a browser context of their own, in the journey's language."""

    def __init__(self, browser: Any, base_url: str, js: bool, env: dict[str, str]) -> None:
        self.browser, self.base_url, self.js, self.env = browser, base_url, js, env
        self.suffix = secrets.token_hex(3)
        self.contexts: list[BrowserContext] = []
        self.accounts: dict[str, tuple[str, str, str]] = {}
        self.people: dict[str, Person] = {}

    def hire(self, **roles_of: str) -> None:
        """One account per keyword: ``hire(lead="team_lead")``."""
        for key, roles in roles_of.items():
            username, name = f"{key}-{self.suffix}", f"{key.title()} {self.suffix}"
            self.accounts[key] = (username, name, add_staff(self.env, username, roles, name))

    def join(self, key: str, tr: Tr) -> Person:
        username, name, one_time = self.accounts[key]
        context = self.browser.new_context(
            base_url=self.base_url, java_script_enabled=self.js, locale="zh-CN"
        )
        context.set_default_timeout(10_000)
        self.contexts.append(context)
        page = context.new_page()
        person = Person(page, username, name)
        page.on("pageerror", lambda exc: person.errors.append(str(exc)))
        page.on(
            "console",
            lambda m: (
                person.errors.append(m.text)
                if m.type == "error" and not m.location.get("url", "").endswith("/favicon.ico")
                else None
            ),
        )
        if tr.lang == "en":
            use_english(page)
        first_sign_in(page, username, one_time, tr)
        self.people[key] = person
        return person

    def assert_clean(self, *, expect_404: tuple[str, ...] = ()) -> None:
        """No console error nor page error with JavaScript on, but the 404 answers expected
        for the people named in `expect_404`."""
        if not self.js:
            return
        for key, person in self.people.items():
            errors = person.errors
            if key in expect_404:
                errors = [e for e in errors if "status of 404" not in e]
            assert errors == [], f"{key}: {errors}"


@pytest.fixture
def cast(
    browser: Any,
    portal_server: str,
    js: bool,
    portal_env: dict[str, str],
    request: pytest.FixtureRequest,
) -> Iterator[Cast]:
    the_cast = Cast(browser, portal_server, js, portal_env)
    try:
        yield the_cast
    finally:
        call = getattr(request.node, "rep_call", None)
        if call is not None and call.failed:
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            for key, person in the_cast.people.items():
                name = f"failed-{_safe_name(request.node.nodeid)}-{key}.png"
                try:
                    person.page.screenshot(path=str(ARTIFACTS / name), full_page=True)
                except Exception as exc:  # the page may be gone; the failure matters more
                    print(f"screenshot of {key} failed: {exc}")
        for context in the_cast.contexts:
            context.close()


# --- helpers -------------------------------------------------------------------------------------


def press(page: Page, action_end: str) -> None:
    """Submit the form whose action ends with `action_end` (a normal form POST)."""
    page.locator(f"form[action$='{action_end}'] button[type=submit]").click()


def staff_option(person: Person) -> str:
    return f"{person.name} ({person.username})"


def case_number(staff: Page) -> str:
    match = NUMBER.search(staff.locator("h1").inner_text())
    assert match, staff.locator("h1").inner_text()
    return match.group(0)


def reporter_page_for(page: Page, tr: Tr) -> None:
    """Set the reporter's language: zh-CN is the default catalogue, English is chosen."""
    page.goto("/")
    if tr.lang == "en":
        use_english(page)
    else:
        expect(page.locator("html")).to_have_attribute("lang", re.compile(r"^zh"))
    expect(page.locator("h1")).to_be_visible()


def reporter_sign_out(page: Page) -> None:
    press(page, "/follow-up/sign-out")
    expect(page).to_have_url(re.compile(r"/$"))


def stage_of_report(page: Page) -> Any:
    return page.locator(".case-facts .stage").first


def assert_nothing_internal(page: Page, people: list[Person], texts: list[str]) -> None:
    """The reporter's page names no staff member, no role, no internal step or text."""
    html = page.content()
    for person in people:
        assert person.username not in html, person.username
        assert person.name not in html, person.name
    for word in [r for r in ROLES if "_" in r] + list(INTERNAL_EVENTS) + texts:
        assert word not in html, word


def assert_shut_out(person: Person, case_path: str, number: str, marker: str, tr: Tr) -> None:
    """`person` may not open the case, find it, or read a word of it: 404 like a missing one."""
    staff = person.page
    for path in (case_path, f"{case_path}/investigation", f"{case_path}/handling"):
        response = staff.goto(path)
        assert response is not None and response.status == 404, path
        expect(staff.locator("h1")).to_have_text(tr("Page not found"))
        assert marker not in staff.content()
    staff.goto("/workspace/cases")
    expect(staff.locator("h1")).to_have_text(tr("Cases"))
    assert staff.locator(f"a[href='{case_path}']").count() == 0
    staff.goto(f"/workspace/cases?number={number}")
    expect(staff.locator("main")).to_contain_text(tr("No case with that number in your view."))
    assert marker not in staff.content()


def accept_and_form_team(intake: Person, lead: Person, case_path: str, tr: Tr) -> None:
    """The intake officer accepts the open case and makes `lead` its lead: the case leaves
    their view and they land on the case list, with the notice saying why."""
    staff = intake.page
    press(staff, "/accept")
    expect(staff.locator(".case-meta dd").first).to_have_text(tr("Accepted"))
    team = staff.locator("#team")
    team.locator("#f-member").select_option(label=staff_option(lead))
    team.locator("#f-function").select_option("lead")
    team.locator("#f-declared").check()
    press(staff, "/team/add")
    expect(staff).to_have_url(re.compile(r"/workspace/cases\?done=team_formed$"))
    expect(staff.locator("h1")).to_have_text(tr("Cases"))
    expect(staff.locator("p.notice")).to_have_text(
        tr(
            "The case now has its investigation team and has left the intake stages, "
            "so you no longer have access to it."
        )
    )
    assert staff.locator(f"a[href='{case_path}']").count() == 0


def write_and_submit_plan(lead: Person, case_path: str, analysis: str, tr: Tr) -> None:
    staff = lead.page
    staff.goto(f"{case_path}/handling")
    expect(staff.locator("h1")).to_have_text(
        tr("Handling of case %(number)s", number=case_number(staff))
    )
    staff.fill("#p-analysis", analysis)
    staff.fill("#pn-0", "Zhang San")
    staff.select_option("#pr-0", "direct")
    staff.check("#pm-0-warning")
    staff.check("#pm-0-fine")
    staff.fill("#p-timeline", "Within 30 days.")
    staff.fill("#p-not-heard", "He left the company and did not answer our letters.")
    press(staff, "/handling/plan")
    expect(staff).to_have_url(re.compile(re.escape(case_path) + r"/handling(\?saved=\w+)?$"))
    draft = staff.locator("article.plan-draft")
    expect(draft.locator("h3")).to_have_text(
        f"{tr('Version %(version)s', version=1)} · {tr('Draft')}"
    )
    expect(draft).to_contain_text(tr("Warning (警告)"))
    expect(staff.locator(".case-meta dd").first).to_have_text(tr("Handling"))
    press(staff, "/handling/submit")
    expect(staff.locator("article.plan-submitted h3")).to_contain_text(tr("Submitted for approval"))


def approve_plan(approver: Person, case_path: str, analysis: str, tr: Tr) -> None:
    """The approver finds the case in their list (approval stage), reads the plan, approves;
    the case leaves their view and they land on the case list, told why."""
    staff = approver.page
    staff.goto("/workspace/cases")
    staff.locator(f"a[href='{case_path}']").click()
    expect(staff.locator(".case-meta dd").first).to_have_text(tr("Approval"))
    staff.goto(f"{case_path}/handling")
    expect(staff.locator("article.plan-submitted")).to_contain_text(analysis)
    staff.check("#d-approve")
    staff.fill("#d-comments", "Approved as written.")
    press(staff, "/handling/decide")
    expect(staff).to_have_url(re.compile(r"/workspace/cases\?done=plan_decided$"))
    expect(staff.locator("p.notice")).to_have_text(
        tr(
            "Your decision on the handling plan was recorded. The case has left the approval "
            "stage, so it is no longer in your view."
        )
    )
    assert staff.locator(f"a[href='{case_path}']").count() == 0


def conclude_substantiated(lead: Person, case_path: str, feedback: str, tr: Tr) -> None:
    staff = lead.page
    staff.goto(f"{case_path}/handling")
    expect(staff.locator(".case-meta dd").first).to_have_text(tr("Implementing"))
    staff.select_option("#c-outcome", "substantiated")
    staff.fill("#c-process", "Ledgers compared with the bank statements; two interviews.")
    staff.fill("#c-feedback", feedback)
    press(staff, "/handling/conclude")
    meta = staff.locator(".case-meta")
    expect(meta.locator("dd").first).to_have_text(tr("Concluded"))
    expect(meta.locator("dd").nth(1)).to_have_text(tr("Substantiated"))
    expect(staff.locator("#result")).to_contain_text(feedback)


# --- 1. anonymous report, with two files, to a rated outcome -------------------------------------


@pytest.mark.parametrize(("lang", "js"), ANONYMOUS_LANG_JS)
def test_anonymous_report_to_rated_outcome(
    page: Page, js: bool, lang: str, page_log: PageLog, cast: Cast, tmp_path: Path
) -> None:
    tr = Tr(lang)
    marker = f"MARK-{cast.suffix}"
    question = f"Q-{cast.suffix}: which supplier received the second payment?"
    reply = f"R-{cast.suffix}: Supplier B, invoice 2026-0312; the bank slip is attached."
    answer = f"A-{cast.suffix}: thank you, the slip helps; we are checking the ledgers."
    feedback = f"F-{cast.suffix}: your report was confirmed and the measures were taken."
    internal = {
        "step": f"Step-{cast.suffix}: compare the ledgers with the bank statements",
        "record": f"Record-{cast.suffix}: the ledgers show two payments for one invoice",
        "note": f"Note-{cast.suffix}: the department head seems to know",
        "analysis": f"Analysis-{cast.suffix}: Zhang San approved both payments",
        "implementation": f"Impl-{cast.suffix}: a written warning was issued",
    }

    cast.hire(
        intake="intake_officer",
        lead="team_lead",
        inv="investigator",
        approver="approver",
        accused="team_lead",
        outsider="investigator",
    )
    until_the_server_sees_them()

    # the reporter, JavaScript as parametrized, sends two files anonymously
    reporter_page_for(page, tr)
    files = evidence_files(tmp_path)
    code = submit_marked_report(page, marker, files)
    expect(page.locator("h1")).to_have_text(tr("Your report was received"))

    # the intake officer asks a question, triages, names the accused, accepts, forms the team
    intake = cast.join("intake", tr)
    lead = cast.join("lead", tr)
    accused = cast.join("accused", tr)
    staff = intake.page
    open_case_with(staff, marker)
    case_path = path_of(staff)
    number = case_number(staff)
    expect(staff.locator("h1")).to_have_text(tr("Case %(number)s", number=number))
    expect(staff.locator(".case-meta dd").first).to_have_text(tr("Received"))
    staff.fill("#f-msg", question)
    press(staff, f"{case_path}/message")
    expect(staff.locator("#messages .message-staff")).to_contain_text(question)
    triage = staff.locator("#triage")
    triage.locator("#f-sev").select_option("high")
    triage.locator("#f-risk").select_option("medium")
    press(staff, "/classify")
    expect(staff.locator(".case-meta dd").first).to_have_text(tr("Triage"))
    staff.fill("#f-s-name", "Li Si")
    staff.fill("#f-s-dept", "Procurement")
    staff.select_option("#f-s-user", label=staff_option(accused))
    press(staff, "/subjects/add")
    expect(staff.locator("#subjects")).to_contain_text("Li Si")
    # the accused is no longer offered as a team member (without saying why); the lead is
    offered = staff.locator("#f-member option")
    assert offered.filter(has_text=lead.username).count() == 1
    assert offered.filter(has_text=accused.username).count() == 0
    accept_and_form_team(intake, lead, case_path, tr)

    # the accused: not a word of the report, whatever their role
    assert_shut_out(accused, case_path, number, marker, tr)

    # the reporter reads the question, replies and adds a file
    sign_in(page, code)
    expect(page.locator("h1")).to_have_text(tr("Your report"))
    expect(stage_of_report(page)).to_have_text(tr("Under investigation"))
    expect(page.locator(".messages .message-staff .message-body")).to_have_text(question)
    page.fill("#reply-1", reply)
    press(page, "/follow-up/message")
    expect(page.locator(".notice")).to_contain_text(tr("Your message was sent."))
    slip = tmp_path / "bank-slip.txt"
    slip.write_text("Transfer 2026-03-14, Supplier B, 48,000 RMB\n", encoding="utf-8")
    page.set_input_files("#evidence-1", str(slip))
    press(page, "/follow-up/evidence")
    expect(page).to_have_url(re.compile(r"/follow-up/case\?done=evidence$"))
    expect(page.locator(".notice")).to_contain_text(tr("Your files were added."))
    expect(page.locator(".case-facts dd").nth(2)).to_have_text("3")
    assert_nothing_internal(page, [intake, lead, accused], [])
    reporter_sign_out(page)

    # the lead adds an investigator and writes the investigation plan and a record
    inv = cast.join("inv", tr)
    staff = lead.page
    staff.goto(case_path)
    expect(staff.locator(".case-meta dd").first).to_have_text(tr("Investigating"))
    expect(staff.locator("#report .sealed-text").first).to_contain_text(marker)
    expect(staff.locator("#messages .message-reporter")).to_contain_text(reply)
    team = staff.locator("#team")
    team.locator("#f-member").select_option(label=staff_option(inv))
    team.locator("#f-function").select_option("member")
    team.locator("#f-declared").check()
    press(staff, "/team/add")
    # the lead still sees it
    expect(staff).to_have_url(re.compile(re.escape(case_path) + r"(\?saved=\w+)?$"))
    expect(staff.locator("#team ul")).to_contain_text(f"{inv.name} · {tr('Member')}")
    staff.locator(f"a[href='{case_path}/investigation']").click()
    expect(staff.locator("h1")).to_have_text(tr("Investigation of case %(number)s", number=number))
    staff.fill("#step-title", internal["step"])
    staff.select_option("#step-owner", label=inv.name)
    staff.fill("#step-due", (dt.date.today() + dt.timedelta(days=14)).isoformat())
    press(staff, "/investigation/steps")
    expect(staff.locator("tr.step-open")).to_contain_text(internal["step"])
    staff.select_option("#rec-method", "document_review")
    staff.fill("#rec-text", internal["record"])
    press(staff, "/investigation/records")
    expect(staff).to_have_url(re.compile(re.escape(case_path) + r"/investigation(\?saved=\w+)?$"))
    records = staff.locator("ol.records")
    expect(records).to_contain_text(internal["record"])
    expect(records).to_contain_text(tr("Document review"))

    # the investigator finds the case in their list, reads the reply and the new file, answers
    staff = inv.page
    staff.goto("/workspace/cases")
    staff.locator(f"a[href='{case_path}']").click()
    expect(staff.locator("#messages .message-reporter")).to_contain_text(reply)
    expect(staff.locator("#files")).to_contain_text("bank-slip.txt")
    expect(staff.locator("#files")).to_contain_text("photo.jpg")
    file_href = staff.locator("#files a[href^='/workspace/files/']").first.get_attribute("href")
    assert file_href
    staff.fill("#f-msg", answer)
    press(staff, f"{case_path}/message")
    expect(staff.locator("#messages .message-staff").last).to_contain_text(answer)
    staff.fill("#f-note", internal["note"])
    press(staff, "/note")
    expect(staff.locator("#notes")).to_contain_text(internal["note"])
    staff.goto(f"{case_path}/investigation")
    staff.locator("tr.step select[name=status]").select_option("done")
    staff.locator("tr.step button[type=submit]").click()
    expect(staff.locator("tr.step-done")).to_contain_text(internal["step"])

    # staff not on the case: 404 everywhere, even an approver before the approval stage
    outsider = cast.join("outsider", tr)
    assert_shut_out(outsider, case_path, number, marker, tr)
    for person in (outsider, accused):
        assert person.page.request.get(file_href).status == 404
    assert inv.page.request.get(file_href).status == 200
    approver = cast.join("approver", tr)
    response = approver.page.goto(case_path)
    assert response is not None and response.status == 404

    # the lead writes the handling plan and submits it; the approver approves it
    write_and_submit_plan(lead, case_path, internal["analysis"], tr)
    approve_plan(approver, case_path, internal["analysis"], tr)

    # the investigator records the implementation; the lead concludes
    staff = inv.page
    staff.goto(f"{case_path}/handling")
    expect(staff.locator("article.plan-approved h3")).to_contain_text(tr("Approved"))
    staff.fill("#impl-text", internal["implementation"])
    press(staff, "/handling/implementation")
    expect(staff.locator("#implementation")).to_contain_text(internal["implementation"])
    conclude_substantiated(lead, case_path, feedback, tr)

    # the reporter signs in with the receipt code, reads the outcome and rates the handling
    sign_in(page, code)
    expect(stage_of_report(page)).to_have_text(tr("Concluded"))
    timeline = page.locator("ol.timeline")
    for words in (
        "Your submission was received",
        "An investigation team was formed",
        "The handling decision was approved and is being carried out",
        "The responsible department reported carrying out the measures",
        "Concluded: your report was found to be true. The center's message below explains "
        "the outcome.",
    ):
        expect(timeline).to_contain_text(tr(words))
    bodies = page.locator(".messages .message-body")
    expect(bodies).to_have_text([question, reply, answer, feedback])
    assert_nothing_internal(
        page, [intake, lead, inv, approver, accused, outsider], list(internal.values())
    )
    page.check("#fb-1-satisfied")
    page.fill("#fb-1-text", f"Thanks-{cast.suffix}")
    press(page, "/follow-up/feedback")
    expect(page.locator(".notice")).to_contain_text(tr("Thank you. Your answer was recorded."))
    expect(timeline).to_contain_text(tr("You said you are satisfied with the handling"))
    reporter_sign_out(page)

    # the lead reads the answer
    staff = lead.page
    staff.goto(f"{case_path}/handling")
    survey = staff.locator("#survey")
    expect(survey).to_contain_text(tr("Satisfied"))
    expect(survey).to_contain_text(f"Thanks-{cast.suffix}")

    assert_clean(js, page_log)
    cast.assert_clean(expect_404=("accused", "outsider", "approver"))


# --- 2. a real-name report, a reward granted, claimed and paid -----------------------------------


@pytest.mark.parametrize(("lang", "js"), REWARD_LANG_JS)
def test_real_name_reward(page: Page, js: bool, lang: str, page_log: PageLog, cast: Cast) -> None:
    tr = Tr(lang)
    marker = f"MARK-{cast.suffix}"
    reporter_name, phone = f"Wang Wu {cast.suffix}", "13912345678"
    basis = f"Basis-{cast.suffix}: named the supplier and the bank account"
    feedback = f"F-{cast.suffix}: your report was confirmed; 1,200,000 RMB were recovered."

    cast.hire(
        intake="intake_officer", lead="team_lead", approver="approver", officer="reward_officer"
    )

    # the reporter gives their name
    reporter_page_for(page, tr)
    fill_report(page, [])
    page.check("#f-identity_mode-real_name")
    page.fill("#f-id_name", reporter_name)
    page.fill("#f-id_phone", phone)
    page.check("#f-id_contact-phone")
    page.check("#f-privacy_ack")  # a real-name reporter acknowledges the privacy notice
    page.fill("#f-what", f"{marker}: the supplier was paid twice for the same invoices.")
    page.click("form.report-form button[type=submit]")
    code_box = page.locator("#receipt-code")
    expect(code_box).to_be_visible()
    code = " ".join(code_box.inner_text().split())

    # intake, team, plan, approval, conclusion
    intake = cast.join("intake", tr)
    lead = cast.join("lead", tr)
    approver = cast.join("approver", tr)
    officer = cast.join("officer", tr)
    open_case_with(intake.page, marker)
    case_path = path_of(intake.page)
    accept_and_form_team(intake, lead, case_path, tr)
    lead.page.goto(case_path)
    # A3: the team does not see the reporter's identity
    assert reporter_name not in lead.page.content() and phone not in lead.page.content()
    write_and_submit_plan(lead, case_path, f"Analysis-{cast.suffix}", tr)
    approve_plan(approver, case_path, f"Analysis-{cast.suffix}", tr)
    conclude_substantiated(lead, case_path, feedback, tr)

    # the lead proposes the reward
    staff = lead.page
    staff.goto(f"{case_path}/reward")
    number = case_number(staff)
    expect(staff.locator("h1")).to_have_text(tr("Reward, case %(number)s", number=number))
    staff.fill("#f-amount", "8000")
    staff.fill("#f-recovered", "1200000")
    staff.fill("#f-basis", basis)
    press(staff, "/reward/propose")
    expect(staff.locator(".reward-status")).to_have_text(tr("Proposed, waiting for the approvers"))
    expect(staff.locator("main")).to_contain_text(basis)

    # a proposal is internal: the reporter sees the outcome, no reward yet
    sign_in(page, code)
    expect(stage_of_report(page)).to_have_text(tr("Concluded"))
    expect(page.locator(".messages .message-body").last).to_have_text(feedback)
    expect(page.locator("form.reward-claim")).to_have_count(0)
    reporter_sign_out(page)

    # 8,000 RMB needs one approver (PORTAL_REWARD_APPROVALS): they decide from their list,
    # with an opinion; the reward officer has nothing to pay before the reporter's claim
    staff = approver.page
    staff.goto("/workspace/rewards")
    staff.locator(f"a[href='{case_path}/reward']").click()
    expect(staff.locator("main")).to_contain_text(basis)  # they hold the reward key
    staff.check("#d-approve")
    staff.fill("#f-opinion", f"Opinion-{cast.suffix}")
    press(staff, "/reward/decide")
    expect(staff).to_have_url(re.compile(re.escape(case_path) + r"/reward(\?saved=\w+)?$"))
    expect(staff.locator("table.reward-decisions")).to_contain_text(f"Opinion-{cast.suffix}")
    officer.page.goto(f"{case_path}/reward")
    expect(officer.page.locator(".reward-status")).to_have_text(
        tr("Approved, waiting for the reporter's claim")
    )
    expect(officer.page.locator("#f-ref")).to_have_count(0)

    # the reporter sees the reward granted and claims it
    sign_in(page, code)
    timeline = page.locator("ol.timeline")
    expect(timeline).to_contain_text(
        tr("A reward was granted to you for this report. You can claim it below.")
    )
    claim = page.locator("form.reward-claim")
    expect(claim).to_be_visible()
    claim.locator("input[name=name]").fill(reporter_name)
    claim.locator("textarea[name=payment]").fill(f"Bank of Example, {reporter_name}, 6222 0000")
    press(page, "/follow-up/reward-claim")
    expect(page.locator(".notice")).to_contain_text(
        tr("Your reward claim was sent. Only the reward officers can read it.")
    )
    expect(page.locator("form.reward-claim")).to_have_count(0)
    assert_nothing_internal(page, [intake, lead, approver, officer], [basis])
    reporter_sign_out(page)

    # the claim is for the reward officers only: the lead cannot read it
    lead.page.goto(f"{case_path}/reward")
    assert "6222 0000" not in lead.page.content()
    assert lead.page.locator("#h-claim").count() == 0
    # the reward officer reads it and records the payment
    staff = officer.page
    staff.goto(f"{case_path}/reward")
    expect(staff.locator("main")).to_contain_text("6222 0000")
    staff.fill("#f-ref", f"TRX-{cast.suffix}")
    press(staff, "/reward/pay")
    expect(staff.locator(".reward-status")).to_have_text(tr("Paid"))

    # the reporter sees it paid
    sign_in(page, code)
    expect(page.locator("ol.timeline")).to_contain_text(tr("Your reward was paid"))
    assert f"TRX-{cast.suffix}" not in page.content()

    assert_clean(js, page_log)
    cast.assert_clean()
