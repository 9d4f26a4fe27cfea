"""The blank report form, rendered once and stamped per visit (portal.http.page_cache, issue 17).

Every visitor gets their own session's CSRF token and a submission token of their own; nothing
of another visitor's page and none of the marks reach a page; apart from the two tokens the
page is what the template renders; a language, a renamed category or a closed channel shows at
once; and the stamped form is the one a report is made with (the journeys in
test_reporter_journeys.py submit through it).
"""

from __future__ import annotations

import re

import httpx
from litestar import Litestar
from litestar.testing import TestClient
from sqlalchemy import update

from portal.kernel.db.models import Category
from tests.conftest import appoint_readers_via
from tests.portal.test_reporter_journeys import (
    CSRF_RE,
    TOKEN_RE,
    count_cases,
    report_fields,
    submit,
)

MARK_RE = re.compile(r"(?:csrf|submissiontoken)[0-9a-f]{32}")


def _tokens(text: str) -> tuple[str, str]:
    csrf, token = CSRF_RE.search(text), TOKEN_RE.search(text)
    assert csrf and token
    return csrf.group(1), token.group(1)


def test_each_visit_gets_its_own_tokens_and_nothing_else_differs(
    client: TestClient[Litestar],
) -> None:
    appoint_readers_via(client)
    visitor_a = [client.get("/report/new") for _ in range(2)]
    cookies_a = httpx.Cookies(client.cookies)
    client.cookies.clear()  # another visitor: a session of their own
    visitor_b = client.get("/report/new")
    pages = [*visitor_a, visitor_b]
    assert all(p.status_code == 200 for p in pages)
    (csrf_a1, sub_a1), (csrf_a2, sub_a2), (csrf_b, sub_b) = (_tokens(p.text) for p in pages)
    assert csrf_a1 == csrf_a2  # the session's own token, on every visit
    assert csrf_b != csrf_a1
    assert len({sub_a1, sub_a2, sub_b}) == 3  # a new submission token every visit
    assert csrf_a1 not in visitor_b.text and sub_a1 not in visitor_b.text
    for page in pages:
        assert MARK_RE.search(page.text) is None
    # apart from the tokens the pages are the same text
    norm = [
        p.text.replace(c, "CSRF").replace(s, "SUB")
        for p, (c, s) in zip(pages, [(csrf_a1, sub_a1), (csrf_a2, sub_a2), (csrf_b, sub_b)])
    ]
    assert norm[0] == norm[1] == norm[2]
    # and a report made with the stamped form, in its own session, is taken once
    client.cookies = cookies_a
    before = count_cases(client)
    done = submit(client, report_fields(), tokens=(csrf_a1, sub_a1))
    assert done.status_code == 200 and "receipt" in done.text.lower()
    assert count_cases(client) == before + 1


def test_language_category_and_channel_changes_show_at_once(client: TestClient[Litestar]) -> None:
    assert client.get("/report/new").status_code == 503  # nobody could open a report yet
    appoint_readers_via(client)
    zh = client.get("/report/new", headers={"accept-language": "zh-CN"}).text
    en = client.get("/report/new", headers={"accept-language": "en"}).text
    assert "What kind of misconduct is it?" in en and "What kind of misconduct is it?" not in zh

    services = client.app.state["services"]

    async def rename() -> None:
        async with services.db.write() as s:
            await s.execute(
                update(Category)
                .where(Category.code == "bribery")
                .values(name_en="Bribes (renamed)")
            )

    client.blocking_portal.call(rename)
    assert "Bribes (renamed)" in client.get("/report/new", headers={"accept-language": "en"}).text
