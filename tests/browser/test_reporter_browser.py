"""Reporter journeys in a real Chromium, each run with JavaScript on and with JavaScript off.

The page fixture (conftest.py) gives a fresh context per test whose Accept-Language is zh-CN,
so pages start in the default catalogue; `use_english` switches through the page's own
language form so that assertions on English msgids stay stable.
"""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

import pytest
from PIL import Image
from playwright.sync_api import Page, expect

from tests.browser.conftest import ARTIFACTS, PageLog

pytestmark = pytest.mark.browser

RECEIPT_SHAPE = re.compile(r"\d{4}(?: \d{4}){6}")
CJK = re.compile(r"[\u4e00-\u9fff]")
WHAT = "采购部经理收受供应商回扣 <b>not bold</b> & more: 2026-03 invoices were inflated."


# --- helpers -------------------------------------------------------------------------------------


def evidence_files(directory: Path) -> list[Path]:
    """A text note and a JPEG carrying EXIF (camera make, model, author)."""
    note = directory / "notes.txt"
    note.write_text("Invoice 2026-0311 was paid twice.\n发票重复付款。\n", encoding="utf-8")
    photo = directory / "photo.jpg"
    exif = Image.Exif()
    exif[0x010F] = "BrowserTestCam"  # Make
    exif[0x0110] = "Model 7"  # Model
    exif[0x013B] = "Reporter Name"  # Artist
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 40, 40)).save(buffer, "JPEG", exif=exif.tobytes())
    photo.write_bytes(buffer.getvalue())
    return [note, photo]


def use_english(page: Page) -> None:
    """Switch to English with the language form in the page header (a normal form POST)."""
    if not page.url.startswith("http"):
        page.goto("/")
    form = page.locator("form.lang-switch")
    form.locator("select[name=lang]").select_option("en")
    form.locator("button[type=submit]").click()
    expect(page.locator("html")).to_have_attribute("lang", re.compile(r"^en"))


def fill_report(page: Page, files: list[Path], *, declaration: bool = True) -> None:
    """Open the report form and fill in an anonymous report (the submit button is not pressed)."""
    page.goto("/report/new")
    page.check("#f-identity_mode-anonymous")
    page.check("#f-kind-report")
    page.select_option("#f-category", index=1)
    page.select_option("#f-relation", "employee")
    page.fill("#f-subject_name-0", "Zhang San")
    page.fill("#f-subject_department-0", "Procurement")
    page.fill("#f-what", WHAT)
    page.fill("#f-when", "March 2026")
    if declaration:
        page.check("#f-declaration")
    if files:
        page.set_input_files("#f-evidence", [str(f) for f in files])


def submit_report(page: Page, files: list[Path]) -> str:
    """Fill and send a report; return its receipt code as shown ("dddd dddd ... dddd")."""
    fill_report(page, files)
    page.click("form.report-form button[type=submit]")
    code_box = page.locator("#receipt-code")
    expect(code_box).to_be_visible()
    code = " ".join(code_box.inner_text().split())
    assert RECEIPT_SHAPE.fullmatch(code), f"unexpected receipt code shape: {code!r}"
    # the same code is in the page text a person reads
    assert code in " ".join(page.locator("main").inner_text().split())
    return code


def sign_in(page: Page, code: str) -> None:
    page.goto("/follow-up")
    field = page.locator("#f-code")
    field.press_sequentially(code.replace(" ", "-"))
    page.click("form.signin-form button[type=submit]")
    expect(page).to_have_url(re.compile(r"/follow-up/case$"))


def path_of(page: Page) -> str:
    return re.sub(r"^https?://[^/]+", "", page.url)


def assert_clean(js: bool, log: PageLog, expected: str | None = None) -> None:
    """With JavaScript on: no CSP violation, no console error (but the `expected` pattern),
    no uncaught exception."""
    assert log.csp_messages == [], f"CSP violations: {log.csp_messages}"
    if js:
        errors = [e for e in log.console_errors if not (expected and re.search(expected, e))]
        assert errors == [], f"console errors: {errors}"
        assert log.page_errors == [], f"page errors: {log.page_errors}"


def code_variants(code: str) -> list[str]:
    digits = code.replace(" ", "")
    dashed = code.replace(" ", "-")
    return [digits, code, dashed, quote(code), quote_plus(code), quote(dashed)]


def assert_code_absent(code: str, haystacks: list[str], where: str) -> None:
    for text in haystacks:
        for variant in code_variants(code):
            assert variant not in text, f"receipt code found in {where}: {text!r}"


def assert_no_code_in_cookies(code: str, cookies: list[Any]) -> None:
    assert_code_absent(
        code, [f"{c['name']}={c['value']}; path={c['path']}" for c in cookies], "a cookie"
    )


# --- 1. a new anonymous report with two evidence files -------------------------------------------


def test_anonymous_report_with_two_files(
    page: Page, js: bool, page_log: PageLog, tmp_path: Path
) -> None:
    use_english(page)
    code = submit_report(page, evidence_files(tmp_path))
    expect(page.locator("h1")).to_have_text("Your report was received")
    # the copy button is shown by portal.js only; the download form works either way
    copy = page.locator(".copy-button")
    if js:
        expect(copy).to_be_visible()
    else:
        expect(copy).to_be_hidden()
    expect(page.locator("form[action='/receipt/download'] button")).to_be_visible()
    # both files arrived: the follow-up page counts the originals
    sign_in(page, code)
    expect(page.locator(".case-facts dd").nth(2)).to_have_text("2")
    assert_clean(js, page_log)


# --- 2. following up: language, status, reply, more evidence, sign out ---------------------------


def test_follow_up_reply_evidence_and_sign_out(
    page: Page, js: bool, page_log: PageLog, tmp_path: Path
) -> None:
    page.goto("/")
    # the default catalogue is zh_CN: the landing page speaks Chinese before the switch
    expect(page.locator("html")).to_have_attribute("lang", re.compile(r"^zh"))
    assert CJK.search(page.locator("h1").inner_text()), page.locator("h1").inner_text()
    use_english(page)
    assert not CJK.search(page.locator("h1").inner_text())

    files = evidence_files(tmp_path)
    code = submit_report(page, files[:1])
    sign_in(page, code)
    expect(page.locator("h1")).to_have_text("Your report")
    expect(page.locator(".case-facts .stage").first).to_have_text("Received")
    expect(page.locator(".case-facts dd").nth(2)).to_have_text("1")

    reply = "A second invoice, 2026-0312, shows the same pattern."
    page.fill("#reply-1", reply)
    page.click("form[action='/follow-up/message'] button[type=submit]")
    expect(page).to_have_url(re.compile(r"/follow-up/case\?done=message$"))
    expect(page.locator(".notice")).to_contain_text("Your message was sent.")
    expect(page.locator(".messages .message-reporter .message-body")).to_have_text(reply)

    page.set_input_files("#evidence-1", str(files[1]))
    page.click("form[action='/follow-up/evidence'] button[type=submit]")
    expect(page).to_have_url(re.compile(r"/follow-up/case\?done=evidence$"))
    expect(page.locator(".notice")).to_contain_text("Your files were added.")
    expect(page.locator(".case-facts dd").nth(2)).to_have_text("2")
    expect(page.locator(".timeline")).to_contain_text("You added evidence")

    page.click("form[action='/follow-up/sign-out'] button[type=submit]")
    expect(page).to_have_url(re.compile(r"/$"))
    page.goto("/follow-up/case")
    assert path_of(page) == "/follow-up", page.url
    expect(page.locator("#f-code")).to_be_visible()
    expect(page.locator("#f-code")).to_have_value("")
    assert_clean(js, page_log)


# --- 3. a refused form keeps what was typed ------------------------------------------------------


def test_missing_declaration_keeps_typed_text(
    page: Page, js: bool, page_log: PageLog, tmp_path: Path
) -> None:
    use_english(page)
    fill_report(page, evidence_files(tmp_path)[:1], declaration=False)
    # the browser's own validation stops the form first ...
    expect(page.locator("#f-declaration:invalid")).to_have_count(1)
    page.click("form.report-form button[type=submit]")
    assert path_of(page) == "/report/new"
    expect(page.locator(".error-summary")).to_have_count(0)
    # ... so drop `required`, as a browser without HTML validation would, to reach the server
    page.evaluate("document.getElementById('f-declaration').removeAttribute('required')")
    page.click("form.report-form button[type=submit]")

    summary = page.locator(".error-summary")
    expect(summary).to_be_visible()
    expect(summary).to_contain_text("Please confirm the declaration.")
    expect(page.locator("#e-declaration")).to_contain_text("Please confirm the declaration.")
    expect(page.locator("#f-declaration")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#f-declaration")).not_to_be_checked()
    # everything typed is still there, exactly (markup in the text stays text)
    expect(page.locator("#f-what")).to_have_value(WHAT)
    expect(page.locator("#f-subject_name-0")).to_have_value("Zhang San")
    expect(page.locator("#f-subject_department-0")).to_have_value("Procurement")
    expect(page.locator("#f-when")).to_have_value("March 2026")
    expect(page.locator("#f-relation")).to_have_value("employee")
    expect(page.locator("#f-category")).not_to_have_value("")
    expect(page.locator("#f-identity_mode-anonymous")).to_be_checked()
    expect(page.locator("main b")).to_have_count(0)
    # files are never kept: the page names the one to choose again
    expect(page.locator(".file-list")).to_have_text("notes.txt")
    # only the declaration was wrong
    expect(summary.locator("li")).to_have_count(1)
    # Chromium logs the XMLHttpRequest's 400 (the refused form) as a console error
    assert_clean(js, page_log, expected=r"status of 400 \(Bad Request\) \(http://[^)]+/report\)$")


# --- 4. the receipt code stays out of cookies and URLs -------------------------------------------


def test_receipt_code_never_in_cookies_or_urls(
    page: Page, js: bool, page_log: PageLog, tmp_path: Path
) -> None:
    use_english(page)
    code = submit_report(page, evidence_files(tmp_path))
    assert_no_code_in_cookies(code, page.context.cookies())

    # the download is a POST: the file holds the code, its URL does not
    with page.expect_download() as info:
        page.click("form[action='/receipt/download'] button[type=submit]")
    download = info.value
    assert download.suggested_filename == "receipt.txt"
    assert code in Path(download.path()).read_text(encoding="utf-8")
    page_log.urls.append(download.url)

    sign_in(page, code)
    assert_no_code_in_cookies(code, page.context.cookies())
    page.fill("#reply-1", "Checking that nothing leaks.")
    page.click("form[action='/follow-up/message'] button[type=submit]")
    expect(page.locator(".notice")).to_be_visible()
    # the signed-in page never shows the code either
    assert code.replace(" ", "") not in page.content().replace(" ", "")
    page.click("form[action='/follow-up/sign-out'] button[type=submit]")
    expect(page).to_have_url(re.compile(r"/$"))

    cookies = page.context.cookies()
    assert cookies, "expected at least the language and CSRF cookies"
    assert_no_code_in_cookies(code, cookies)
    assert len(page_log.urls) > 8, page_log.urls
    assert_code_absent(code, page_log.urls, "a URL")
    assert_clean(js, page_log)


# --- 5. every page is clean with JavaScript on and works with it off -----------------------------


def test_pages_work_and_respect_csp(
    page: Page, js: bool, page_log: PageLog, tmp_path: Path
) -> None:
    response = page.goto("/")
    assert response is not None and response.ok
    assert "script-src 'self'" in (response.headers.get("content-security-policy") or "")
    if not js:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        # the default (zh_CN) page needs a CJK system font to be readable (fonts-noto-cjk)
        page.screenshot(path=str(ARTIFACTS / "landing-zh_CN-nojs.png"))
    use_english(page)
    if not js:
        page.screenshot(path=str(ARTIFACTS / "landing-nojs.png"))
    for path in ("/", "/help", "/report/new", "/follow-up"):
        response = page.goto(path)
        assert response is not None and response.status == 200, path
        expect(page.locator("h1")).to_be_visible()
        expect(page.locator("form.lang-switch")).to_be_visible()

    code = submit_report(page, evidence_files(tmp_path))
    if not js:
        page.screenshot(path=str(ARTIFACTS / "receipt-nojs.png"))
    if js:
        # portal.js ran (CSP allowed the same-origin script): it revealed the copy button
        expect(page.locator(".copy-button")).to_be_visible()
    else:
        expect(page.locator(".copy-button")).to_be_hidden()
    sign_in(page, code)
    expect(page.locator(".case")).to_have_count(1)
    # the retaliation form sits in <details>: native, no script needed
    page.click("details.retaliation summary")
    expect(page.locator("#ret-1")).to_be_visible()
    assert_clean(js, page_log)


# --- a real browser's same-origin POST: `Origin: null` under Referrer-Policy: no-referrer -------


def test_same_origin_post_is_accepted(browser: Any, portal_server: str, js: bool) -> None:
    """Browsers send `Origin: null` + `Sec-Fetch-Site: same-origin` for our forms; once this
    refused every POST with 403 (portal/http/csrf.py cross_site_refusal)."""
    context = browser.new_context(base_url=portal_server, java_script_enabled=js, locale="zh-CN")
    try:
        page = context.new_page()
        page.goto("/")
        with page.expect_response(re.compile(r"/lang$")) as info:
            page.locator("form.lang-switch select[name=lang]").select_option("en")
            page.locator("form.lang-switch button[type=submit]").click()
        sent = info.value.request.all_headers()
        assert info.value.status == 303, (
            f"POST /lang answered {info.value.status}; origin={sent.get('origin')!r} "
            f"sec-fetch-site={sent.get('sec-fetch-site')!r}"
        )
        expect(page.locator("html")).to_have_attribute("lang", re.compile(r"^en"))
    finally:
        context.close()
