"""The workspace's design in a real Chromium (issue 16, item 8).

The ten main staff pages are opened in zh_CN and in English by one staff member holding the
roles that see them (administrator, intake officer, team lead, approver, auditor), with one
report in the inbox:

* a full-page screenshot of each is kept under ``tests/browser/artifacts/screens/`` (or
  ``$PORTAL_SCREENSHOT_DIR``; git ignores it), at 1280 px and, for the case page and the
  case list, at 768 px;
* axe-core (the copy bundled in the ``axe-playwright-python`` test dependency, injected from
  the local file: no CDN) reports no violation on any of them;
* the stylesheet is first-party and applies: sticky table headers, the badges, and no page
  wider than the 768 px window (no sideways scrolling of the page itself);
* print: the case summary hides the forms and navigation and keeps the key facts.
"""

from __future__ import annotations

import json
import os
import re
import secrets
from collections.abc import Iterator
from importlib.resources import files
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from tests.browser.conftest import ARTIFACTS, ROOT
from tests.browser.test_reporter_browser import fill_report
from tests.browser.test_workspace_browser import add_staff, first_sign_in

pytestmark = pytest.mark.browser

# not test-results/: pytest-playwright empties that directory when a run starts
SCREENS = Path(os.environ.get("PORTAL_SCREENSHOT_DIR") or ARTIFACTS / "screens")
LANGS = ("zh_CN", "en")
ROLES = "administrator,intake_officer,team_lead,approver,auditor"
# the ten main staff pages: (slug, path; {case} is the case id)
PAGES = (
    ("home", "/workspace/"),
    ("inbox", "/workspace/inbox"),
    ("cases", "/workspace/cases"),
    ("case", "/workspace/cases/{case}"),
    ("deadlines", "/workspace/cases/{case}/deadlines"),
    ("overdue", "/workspace/overdue"),
    ("statistics", "/workspace/statistics"),
    ("audit", "/workspace/audit"),
    ("users", "/workspace/users"),
    ("directory", "/workspace/directory"),
)
NARROW = {"case", "cases", "inbox", "audit"}


def axe_source() -> str:
    """axe.min.js from the installed test dependency (read from disk, never fetched)."""
    return (files("axe_playwright_python") / "axe.min.js").read_text(encoding="utf-8")


def axe_violations(page: Page) -> list[dict[str, Any]]:
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.evaluate(axe_source())
    result = page.evaluate(
        """async () => {
            const r = await axe.run(document, {resultTypes: ['violations']});
            return r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                nodes: v.nodes.slice(0, 5).map(n => n.target.join(' '))}));
        }"""
    )
    assert isinstance(result, list)
    return result


@pytest.fixture(scope="module")
def staff(browser: Browser, portal_server: str, portal_env: dict[str, str]) -> Iterator[Any]:
    """(signed-in context, case id): the staff member first, then a report they can open."""
    username = f"design{secrets.token_hex(3)}"
    one_time = add_staff(portal_env, username, ROLES, "设计审查")
    reporter = browser.new_context(base_url=portal_server, locale="zh-CN")
    page = reporter.new_page()
    fill_report(page, [])
    marker = f"DESIGN-{secrets.token_hex(4)}"
    page.fill("#f-what", f"{marker}：三月份的发票向同一供应商重复支付。")
    page.click("form.report-form button[type=submit]")
    expect(page.locator("#receipt-code")).to_be_visible()
    reporter.close()

    context = browser.new_context(base_url=portal_server, locale="en-US")
    context.set_default_timeout(15_000)
    page = context.new_page()
    first_sign_in(page, username, one_time)
    case_id = ""
    page.goto("/workspace/inbox?stage=received")
    for href in page.locator("table.case-list tbody a").evaluate_all("els => els.map(e => e.href)"):
        page.goto(href)
        if marker in page.locator("main").inner_text():
            case_id = href.rstrip("/").rsplit("/", 1)[-1]
            break
    assert case_id, "the report is not in the inbox"
    page.close()
    yield context, case_id
    context.close()


def _set_lang(context: BrowserContext, base_url: str, lang: str) -> None:
    context.add_cookies([{"name": "lang", "value": lang, "url": base_url}])


def _shot(page: Page, lang: str, slug: str, width: int) -> Path:
    SCREENS.mkdir(parents=True, exist_ok=True)
    path = SCREENS / f"{lang}-{slug}-{width}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


@pytest.mark.parametrize("lang", LANGS)
def test_main_pages_screenshots_and_no_axe_violation(
    staff: Any, portal_server: str, lang: str
) -> None:
    context, case_id = staff
    _set_lang(context, portal_server, lang)
    page = context.new_page()
    problems: dict[str, Any] = {}
    try:
        for slug, path in PAGES:
            for width in (1280, 768) if slug in NARROW else (1280,):
                page.set_viewport_size({"width": width, "height": 900})
                response = page.goto(path.format(case=case_id))
                assert response is not None and response.status == 200, (slug, path)
                expect(page.locator("html")).to_have_attribute(
                    "lang", re.compile(r"^zh-Hans" if lang == "zh_CN" else r"^en")
                )
                # the workspace navigation with the sign-out is on every page
                assert page.locator("header form.signout").count() == 1, (slug, "no navigation")
                # first-party styles only, and the workspace stylesheet applies
                sheets = page.evaluate(
                    "() => [...document.styleSheets].map(s => s.href || 'inline')"
                )
                assert all(s.startswith(portal_server) for s in sheets), sheets
                assert any(s.endswith("/static/workspace.css") for s in sheets), sheets
                # usable at 768 px: the page itself never scrolls sideways
                overflow = page.evaluate(
                    "() => document.documentElement.scrollWidth - window.innerWidth"
                )
                assert overflow <= 1, (slug, width, overflow)
                shot = _shot(page, lang, slug, width)
                assert shot.stat().st_size > 5_000
                if width == 1280:
                    found = axe_violations(page)
                    if found:
                        problems[slug] = found
    finally:
        page.close()
    assert not problems, json.dumps(problems, ensure_ascii=False, indent=1)
    assert len(list(SCREENS.glob(f"{lang}-*-1280.png"))) >= len(PAGES)


def test_tables_badges_and_print_styles(staff: Any, portal_server: str) -> None:
    context, case_id = staff
    _set_lang(context, portal_server, "en")
    page = context.new_page()
    try:
        page.set_viewport_size({"width": 1280, "height": 900})
        page.goto("/workspace/inbox")
        header = page.locator("table.case-list thead th").first
        assert header.evaluate("e => getComputedStyle(e).position") == "sticky"
        badge = page.locator("table.case-list .badge-stage").first
        expect(badge).to_be_visible()
        assert badge.evaluate("e => getComputedStyle(e).borderRadius") != "0px"

        page.goto(f"/workspace/cases/{case_id}")
        facts = page.locator(".case-header dl.case-meta")
        expect(facts).to_be_visible()
        # key facts first: the header comes before every section of the case
        assert page.evaluate(
            "() => { const h = document.querySelector('.case-header');"
            " const s = document.querySelector('main section');"
            " return !!(h.compareDocumentPosition(s) & Node.DOCUMENT_POSITION_FOLLOWING); }"
        )
        page.emulate_media(media="print")
        assert (
            page.locator("header.site-header").evaluate("e => getComputedStyle(e).display")
            == "none"
        )
        assert (
            page.locator("main form").first.evaluate("e => getComputedStyle(e).display") == "none"
        )
        assert page.locator("nav.case-nav").evaluate("e => getComputedStyle(e).display") == "none"
        expect(facts).to_be_visible()
        SCREENS.mkdir(parents=True, exist_ok=True)
        page.pdf(path=str(SCREENS / "en-case-print.pdf"))
        page.goto("/workspace/statistics")
        assert (
            page.locator("header.site-header").evaluate("e => getComputedStyle(e).display")
            == "none"
        )
        page.emulate_media(media="screen")
        # two-column forms on a wide screen: the audit filters sit side by side
        page.goto("/workspace/audit")
        boxes = [page.locator(f"#{i}").bounding_box() for i in ("f-person", "f-case")]
        assert boxes[0] and boxes[1] and abs(boxes[0]["y"] - boxes[1]["y"]) < 5
    finally:
        page.close()


def test_badge_classes_are_documented_in_the_stylesheet() -> None:
    css = (ROOT / "static" / "workspace.css").read_text(encoding="utf-8")
    head = css.split("*/", 1)[0]
    for cls in ("badge-overdue", "badge-warning", "badge-ok", "badge-stage", "badge-severity"):
        assert f".{cls}" in head, cls  # documented at the top ...
        assert re.search(rf"\.{cls}\b[^{{]*\{{", css.split("*/", 1)[1]), cls  # ... and defined
    assert "http" not in css and "@import" not in css  # nothing from elsewhere
