"""Reporter journeys through the real app (R1-R8, R12, W1, O4).

Multipart bodies are built by hand so that the field order is exactly what a browser sends
for the form (csrf token, submission token, text fields, then files).
"""

from __future__ import annotations

import dataclasses
import html
import re
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from litestar import Litestar
from litestar.testing import TestClient
from sqlalchemy import func, select

from crypto.receipts import damm_is_valid
from portal.kernel.db.models import Case, Category
from portal.kernel.settings import Settings
from tests.conftest import appoint_readers_via

CSRF_RE = re.compile(r'name="_csrf_token"\s+value="([^"]+)"')
TOKEN_RE = re.compile(r'name="submission_token" value="([^"]+)"')
ATTEMPTS_RE = re.compile(r'name="attempts" value="([^"]*)"')
CASE_ID_RE = re.compile(r'name="case_id" value="([^"]+)"')
GROUP_RE = re.compile(r'<span class="receipt-group">(\d{4})</span>')
NAME_RE = re.compile(r'<(?:input|textarea|select)\b[^>]*\bname="([^"]+)"')

Part = tuple[str, "str | tuple[str, bytes, str]"]


# --- helpers (also used by test_reporter_canary.py) ---------------------------------------


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The reporter portal on its own, as it is deployed facing the public."""
    return dataclasses.replace(settings, serve="reporter")


@pytest.fixture
def reporter(client: TestClient[Litestar]) -> TestClient[Litestar]:
    """The test client, reading pages in English."""
    client.headers["accept-language"] = "en"
    return client


def multipart(parts: Sequence[Part]) -> tuple[bytes, dict[str, str]]:
    """A multipart/form-data body with the parts in the given order."""
    boundary = f"----reporter-test-{uuid.uuid4().hex}"
    out = bytearray()
    for name, value in parts:
        out += f"--{boundary}\r\n".encode()
        if isinstance(value, tuple):
            filename, data, ctype = value
            out += (
                f'Content-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
                f"Content-Type: {ctype}\r\n\r\n"
            ).encode()
            out += data
        else:
            out += f'Content-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
            out += value.encode()
        out += b"\r\n"
    out += f"--{boundary}--\r\n".encode()
    return bytes(out), {"content-type": f"multipart/form-data; boundary={boundary}"}


def form_tokens(client: TestClient[Litestar]) -> tuple[str, str]:
    """(csrf token, submission token) from a fresh report form.

    A report is taken only once somebody can open it (C7): the intake officer and identity
    custodian a report needs are appointed first, unless the test made its own (a client of a
    server run as a process has no app here: its test appoints them with `portal user add`)."""
    if hasattr(client, "app"):
        appoint_readers_via(client)
    page = client.get("/report/new")
    assert page.status_code == 200
    csrf = CSRF_RE.search(page.text)
    token = TOKEN_RE.search(page.text)
    assert csrf and token
    return csrf.group(1), token.group(1)


def report_fields(**overrides: str | list[str]) -> list[tuple[str, str]]:
    """A valid anonymous report's text fields, in form order."""
    base: dict[str, str | list[str]] = {
        "identity_mode": "anonymous",
        "id_name": "",
        "id_phone": "",
        "id_email": "",
        "id_employee_id": "",
        "kind": "report",
        "category": "bribery",
        "relation": "employee",
        "subject_name": ["Wang Wu", "", ""],
        "subject_department": ["Purchasing", "", ""],
        "subject_position": ["Buyer", "", ""],
        "what": "The buyer asked a supplier for a 5% kickback on every order.",
        "when": "March 2025",
        "where": "Head office",
        "how_known": "I saw the messages.",
        "amount": "about 80,000 RMB",
        "witnesses": "",
        "complainant_name": "",
        "complainant_phone": "",
        "complainant_address": "",
        "respondent_name": "",
        "respondent_address": "",
        "request": "",
        "rep_name": "",
        "rep_phone": "",
        "rep_id_number": "",
        "declaration": "yes",
        "privacy_ack": "yes",
    }
    base.update(overrides)
    out: list[tuple[str, str]] = []
    for name, value in base.items():
        for item in value if isinstance(value, list) else [value]:
            out.append((name, item))
    return out


def submit(
    client: TestClient[Litestar],
    fields: Sequence[tuple[str, str]],
    files: Sequence[Part] = (),
    *,
    tokens: tuple[str, str] | None = None,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    csrf, token = tokens or form_tokens(client)
    parts: list[Part] = [("_csrf_token", csrf), ("submission_token", token), *fields, *files]
    body, hdrs = multipart(parts)
    return client.post("/report", content=body, headers={**hdrs, **(headers or {})})


def receipt_of(page: httpx.Response) -> str:
    """The receipt code on a receipt page, as displayed (7 groups of 4 digits)."""
    groups = GROUP_RE.findall(page.text)
    assert len(groups) == 7, page.text
    return " ".join(groups)


def sign_in(client: TestClient[Litestar], code: str) -> httpx.Response:
    page = client.get("/follow-up", follow_redirects=False)
    if page.status_code == 303:  # already signed in: sign out first
        csrf_page = client.get("/follow-up/case")
        client.post(
            "/follow-up/sign-out",
            data={"_csrf_token": CSRF_RE.search(csrf_page.text).group(1)},  # type: ignore[union-attr]
            follow_redirects=False,
        )
        page = client.get("/follow-up")
    csrf = CSRF_RE.search(page.text)
    attempts = ATTEMPTS_RE.search(page.text)
    assert csrf and attempts
    return client.post(
        "/follow-up",
        data={"_csrf_token": csrf.group(1), "attempts": attempts.group(1), "code": code},
        follow_redirects=False,
    )


def case_page(
    client: TestClient[Litestar], path: str = "/follow-up/case"
) -> tuple[httpx.Response, str, list[str]]:
    """The follow-up page, its csrf token and the case ids on it."""
    page = client.get(path, follow_redirects=False)
    assert page.status_code == 200, page.status_code
    csrf = CSRF_RE.search(page.text)
    assert csrf
    ids = list(dict.fromkeys(CASE_ID_RE.findall(page.text)))
    return page, csrf.group(1), ids


def run_db(client: TestClient[Litestar], fn: Callable[[Any], Any]) -> Any:
    """Run `await fn(session)` on the app's own event loop and database."""
    services = client.app.state["services"]

    async def go() -> Any:
        async with services.db.read() as session:
            return await fn(session)

    return client.blocking_portal.call(go)


def count_cases(client: TestClient[Litestar]) -> int:
    async def q(s: Any) -> int:
        return int((await s.execute(select(func.count()).select_from(Case))).scalar_one())

    return int(run_db(client, q))


def stored_files(settings: Settings) -> list[Path]:
    return sorted(p for p in settings.files_dir.rglob("*") if p.is_file())


def text_of(page: httpx.Response) -> str:
    return html.unescape(page.text)


@pytest.fixture
def with_categories(reporter: TestClient[Litestar]) -> None:
    """The migration seeds default categories; add the few these tests use if it did not."""

    async def ensure(_s: Any) -> None:
        services = reporter.app.state["services"]
        async with services.db.write() as s:
            have = set((await s.execute(select(Category.code))).scalars())
            for i, code in enumerate(("bribery", "fraud", "other", "retaliation")):
                if code not in have:
                    s.add(
                        Category(
                            code=code,
                            name_zh_cn=code,
                            name_zh_tw=code,
                            name_en=code,
                            in_scope=True,
                            active=True,
                            position=100 + i,
                        )
                    )

    run_db(reporter, ensure)


@pytest.fixture
def recorder(reporter: TestClient[Litestar]) -> Iterator[list[httpx.Response]]:
    """Every response the client receives, in order."""
    seen: list[httpx.Response] = []
    reporter.event_hooks = {"request": [], "response": [seen.append]}
    yield seen
    reporter.event_hooks = {"request": [], "response": []}


# --- public pages ---------------------------------------------------------------------------


def test_landing_shows_both_doors_and_the_limits_of_anonymity(
    reporter: TestClient[Litestar],
) -> None:
    page = reporter.get("/")
    assert page.status_code == 200
    assert 'href="/report/new"' in page.text
    assert 'href="/follow-up"' in page.text
    assert 'href="/help"' in page.text
    text = text_of(page)
    assert "What this portal cannot protect you from" in text
    assert "2,000 to 50,000 RMB" in text
    assert "Tor Browser" in text
    assert ".onion" not in text  # no onion address configured


def test_landing_explains_the_onion_address_when_configured(
    settings: Settings, services: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from portal.app import create_app

    onion = "a" * 56 + ".onion"
    with_onion = dataclasses.replace(settings, onion_address=onion)
    monkeypatch.setattr(services, "settings", with_onion)
    app = create_app(with_onion, services)
    with TestClient(app, base_url="https://testserver.local") as client:
        page = client.get("/", headers={"accept-language": "en"})
    assert onion in page.text
    assert "only be opened in Tor Browser" in page.text


def test_landing_is_chinese_by_default(client: TestClient[Litestar]) -> None:
    page = client.get("/")
    assert page.status_code == 200
    assert 'lang="zh-Hans-CN"' in page.text
    assert "举报" in page.text


def test_help_page_names_the_other_channels(reporter: TestClient[Litestar]) -> None:
    page = reporter.get("/help")
    assert page.status_code == 200
    for channel in ("12315", "信访", "纪委", "Human Resources"):
        assert channel in page.text
    assert 'href="/report/new"' in page.text


def test_form_has_csrf_first_then_token_then_text_and_files_last(
    reporter: TestClient[Litestar], with_categories: None, readers: list[str]
) -> None:
    page = reporter.get("/report/new")
    assert page.status_code == 200
    form = page.text[page.text.index('<form method="post" action="/report"') :]
    form = form[: form.index("</form>")]
    assert 'enctype="multipart/form-data"' in form
    names = NAME_RE.findall(form)
    assert names[0] == "_csrf_token"
    assert names[1] == "submission_token"
    file_names = re.findall(r'<input type="file"[^>]*name="([^"]+)"', form)
    assert set(file_names) == {"evidence", "authorisation"}
    first_file = min(names.index(n) for n in file_names)
    assert all(n in file_names for n in names[first_file:]), names
    for required_field in (
        "what",
        "category",
        "relation",
        "kind",
        "identity_mode",
        "declaration",
        "id_name",
        "complainant_name",
        "rep_name",
        "subject_name",
        "request",
    ):
        assert required_field in names[2:first_file]
    assert re.search(r'<input type="file"[^>]*name="evidence"[^>]*multiple', form)
    # every visible control has a label
    for control_id in re.findall(
        r'<(?:input|textarea|select)\b(?![^>]*type="hidden")[^>]*\bid="([^"]+)"', form
    ):
        assert f'for="{control_id}"' in form, control_id


# --- the whole journey ----------------------------------------------------------------------


def test_anonymous_report_receipt_follow_up_and_sign_out(
    reporter: TestClient[Litestar],
    settings: Settings,
    with_categories: None,
    recorder: list[httpx.Response],
) -> None:
    files: list[Part] = [
        ("evidence", ("kickback-ledger.txt", b"order 1: 5%\norder 2: 5%\n", "text/plain")),
        ("evidence", ("chat.bin", bytes(range(256)) * 20, "application/octet-stream")),
    ]
    response = submit(reporter, report_fields(), files)
    assert response.status_code == 200, response.text
    code = receipt_of(response)
    assert re.fullmatch(r"(\d{4} ){6}\d{4}", code)
    digits = code.replace(" ", "")
    assert count_cases(reporter) == 1
    receipt_page = response.text
    assert "kickback" not in receipt_page and "Bribery" not in receipt_page
    assert not re.search(r"\b\d{8}\b", receipt_page.replace(code, ""))  # no case number

    # download the code as a text file
    csrf = CSRF_RE.search(receipt_page).group(1)  # type: ignore[union-attr]
    download = reporter.post("/receipt/download", data={"_csrf_token": csrf, "code": code})
    assert download.status_code == 200
    assert download.headers["content-type"].startswith("text/plain")
    assert download.headers["content-disposition"].startswith("attachment")
    assert code in download.text

    # sign in, in the ways people type a code
    fullwidth = "".join(chr(ord(d) + 0xFEE0) for d in digits)
    for typed in ("-".join(code.split()), fullwidth, f"  {code}  ", digits, code):
        signed = sign_in(reporter, typed)
        assert signed.status_code == 303, typed
        assert signed.headers["location"] == "/follow-up/case"

    page, csrf, case_ids = case_page(reporter)
    assert "Received" in page.text
    assert len(case_ids) == 1
    case_id = case_ids[0]

    # reply
    sent = reporter.post(
        "/follow-up/message",
        data={"_csrf_token": csrf, "case_id": case_id, "text": "Line one\nLine <two> & more"},
        follow_redirects=False,
    )
    assert sent.status_code == 303
    page, csrf, _ = case_page(reporter, sent.headers["location"])
    assert "Your message was sent." in page.text
    assert "Line one\nLine &lt;two&gt; &amp; more" in page.text  # escaped, newlines kept

    # add a file
    before = len(stored_files(settings))
    body, hdrs = multipart(
        [
            ("_csrf_token", csrf),
            ("case_id", case_id),
            ("evidence", ("more.txt", b"another page of notes", "text/plain")),
        ]
    )
    added = reporter.post("/follow-up/evidence", content=body, headers=hdrs, follow_redirects=False)
    assert added.status_code == 303, added.text
    assert len(stored_files(settings)) > before
    page, csrf, _ = case_page(reporter, added.headers["location"])
    assert "Your files were added." in page.text
    assert "You added evidence" in page.text

    # add identity (becoming real-name)
    assert "Add your name" in page.text
    bad = reporter.post(
        "/follow-up/identity",
        data={"_csrf_token": csrf, "id_name": "Li Si", "id_phone": "not a phone", "id_email": ""},
    )
    assert bad.status_code == 400
    assert "Enter a phone number with digits only." in bad.text
    assert 'value="Li Si"' in bad.text
    added_identity = reporter.post(
        "/follow-up/identity",
        data={
            "_csrf_token": csrf,
            "id_name": "Li Si",
            "id_phone": "138 0000 0000",
            "id_email": "",
            "id_employee_id": "E1001",
            "id_contact": "phone",
        },
        follow_redirects=False,
    )
    assert added_identity.status_code == 303
    page, csrf, _ = case_page(reporter, added_identity.headers["location"])
    assert "Your name and contact details were added." in page.text
    assert 'action="/follow-up/identity"' not in page.text  # no longer anonymous
    assert "Li Si" not in page.text  # the identity is not shown back

    # sign out
    out = reporter.post("/follow-up/sign-out", data={"_csrf_token": csrf}, follow_redirects=False)
    assert out.status_code == 303
    assert "portal_session" not in reporter.cookies
    again = reporter.get("/follow-up/case", follow_redirects=False)
    assert again.status_code == 303
    assert again.headers["location"] == "/follow-up"

    # the code was only ever in the receipt page and the download
    grouped = re.compile(r"\D?".join(digits))
    for r in recorder:
        for name, value in r.headers.multi_items():
            assert not grouped.search(value), (r.url, name)
        assert not grouped.search(str(r.url))
    allowed = {id(response), id(download)}
    for r in recorder:
        if id(r) not in allowed:
            assert not grouped.search(r.text), r.url


def test_wrong_code_gets_one_neutral_answer(
    reporter: TestClient[Litestar], with_categories: None
) -> None:
    code = receipt_of(submit(reporter, report_fields()))
    digits = code.replace(" ", "")
    wrong_check = digits[:-1] + str((int(digits[-1]) + 1) % 10)
    unknown = "0" * 27 + "0"  # well-formed (the check digit holds), matches no report
    near_miss = digits[:-2] + "".join(
        next(
            d + c
            for d in "0123456789"
            for c in "0123456789"
            if d != digits[-2] and damm_is_valid(digits[:-2] + d + c)
        )
    )
    # Every well-formed code that opens nothing gets one neutral answer (R8) ...
    answers = []
    for typed in (unknown, near_miss):
        r = sign_in(reporter, typed)
        assert r.status_code == 400, typed
        assert "No report was found for this code. Check it and try again." in r.text
        assert "portal_session" not in r.headers.get("set-cookie", "")
        answers.append(re.sub(r'value="[^"]*"', "", r.text))
    assert len(set(answers)) == 1  # same page whatever the code
    # ... and input that cannot be a code (the format is public) is told so, also neutrally
    malformed = []
    for typed in (wrong_check, "hello", "1" * 10, "9" * 60):
        r = sign_in(reporter, typed)
        assert r.status_code == 400, typed
        assert "This is not a receipt code" in r.text
        assert "No report was found" not in r.text
        assert "portal_session" not in r.headers.get("set-cookie", "")
        malformed.append(re.sub(r'value="[^"]*"', "", r.text))
    assert len(set(malformed)) == 1  # the input is never echoed
    too_long = sign_in(reporter, "1" * 200)
    assert too_long.status_code == 400


def test_validation_error_keeps_typed_values_and_lists_lost_files(
    reporter: TestClient[Litestar], settings: Settings, with_categories: None
) -> None:
    before = stored_files(settings)
    cases_before = count_cases(reporter)
    fields = report_fields(
        what="short",
        when="Last spring, around the audit",
        subject_name=["Zhao Liu", "Qian Qi", ""],
        category="fraud",
        relation="supplier",
        declaration="",
    )
    files: list[Part] = [
        ("evidence", ("invoice-scan.pdf", b"%PDF-1.4 not really", "application/pdf")),
        ("evidence", ("photo.jpg", b"\xff\xd8\xff\xe0 not really", "image/jpeg")),
    ]
    page = submit(reporter, fields, files)
    assert page.status_code == 400
    text = page.text
    assert "Describe what happened (at least a sentence)." in text
    assert "Please confirm the declaration." in text
    assert 'href="#f-what"' in text and 'href="#f-declaration"' in text
    assert 'aria-describedby="e-what"' in text or 'e-what"' in text
    assert 'value="Last spring, around the audit"' in text
    assert 'value="Zhao Liu"' in text and 'value="Qian Qi"' in text
    assert ">short</textarea>" in text
    assert '<option value="fraud" selected>' in text
    assert '<option value="supplier" selected>' in text
    assert 'value="anonymous" checked' in text
    assert "invoice-scan.pdf" in text and "photo.jpg" in text
    assert "choose your files again" in text
    # the same submission token is kept, so a corrected form still counts once
    assert TOKEN_RE.search(text)
    assert stored_files(settings) == before
    assert count_cases(reporter) == cases_before


def test_double_submit_creates_one_case_and_shows_the_same_receipt(
    reporter: TestClient[Litestar], settings: Settings, with_categories: None
) -> None:
    tokens = form_tokens(reporter)
    files: list[Part] = [("evidence", ("a.txt", b"evidence bytes", "text/plain"))]
    first = submit(reporter, report_fields(), files, tokens=tokens)
    assert first.status_code == 200
    after_first = stored_files(settings)
    second = submit(reporter, report_fields(), files, tokens=tokens)
    assert second.status_code == 200
    assert receipt_of(second) == receipt_of(first)
    assert count_cases(reporter) == 1
    assert stored_files(settings) == after_first  # the second copy of the file was dropped


def test_complaint_without_complaint_fields_is_refused(
    reporter: TestClient[Litestar], with_categories: None
) -> None:
    page = submit(reporter, report_fields(kind="complaint"))
    assert page.status_code == 400
    for msg in (
        "A complaint needs your name.",
        "A complaint needs your phone number.",
        "A complaint needs your address.",
        "A complaint needs the name of the person or unit complained about.",
        "A complaint needs their address.",
        "Say what you are asking for.",
    ):
        assert msg in html.unescape(page.text)
    assert 'value="complaint" checked' in page.text
    assert count_cases(reporter) == 0


def test_representative_needs_the_authorisation_letter(
    reporter: TestClient[Litestar], with_categories: None
) -> None:
    fields = report_fields(is_representative="yes", rep_name="Zhou Ba", rep_phone="13900000000")
    page = submit(reporter, fields)
    assert page.status_code == 400
    assert "A representative must attach the authorisation letter." in page.text
    ok = submit(
        reporter,
        fields,
        [("authorisation", ("letter.txt", b"I authorise Zhou Ba", "text/plain"))],
    )
    assert ok.status_code == 200, ok.text


def test_both_kinds_make_two_linked_cases(
    reporter: TestClient[Litestar], with_categories: None
) -> None:
    fields = report_fields(
        kind="both",
        complainant_name="Sun Jiu",
        complainant_phone="13800001111",
        complainant_address="1 Example Road",
        respondent_name="Purchasing department",
        respondent_address="Head office",
        request="Stop the kickbacks and refund the overcharge.",
    )
    response = submit(reporter, fields)
    assert response.status_code == 200, response.text

    async def rows(s: Any) -> list[tuple[str, str, str | None, str]]:
        result = await s.execute(select(Case.id, Case.number, Case.linked_case_id, Case.kind))
        return [tuple(r) for r in result]

    found = run_db(reporter, rows)
    assert len(found) == 2
    by_kind = {kind: (cid, number, linked) for cid, number, linked, kind in found}
    assert set(by_kind) == {"report", "complaint"}
    assert by_kind["report"][1] != by_kind["complaint"][1]
    ids = {by_kind["report"][0], by_kind["complaint"][0]}
    links = {by_kind["report"][2], by_kind["complaint"][2]}
    assert links - {None} and links - {None} <= ids

    assert sign_in(reporter, receipt_of(response)).status_code == 303
    page, _csrf, case_ids = case_page(reporter)
    assert len(case_ids) == 2
    assert "Report (举报)" in page.text and "Complaint (投诉)" in page.text


def test_concurrent_submissions_get_distinct_case_numbers(
    reporter: TestClient[Litestar], with_categories: None
) -> None:
    csrf, _ = form_tokens(reporter)
    n = 8

    def one(i: int) -> httpx.Response:
        token = f"concurrent-{i}-{uuid.uuid4().hex}"
        return submit(
            reporter,
            report_fields(what=f"Report number {i} about kickbacks."),
            tokens=(csrf, token),
        )

    with ThreadPoolExecutor(max_workers=n) as pool:
        responses = list(pool.map(one, range(n)))
    assert [r.status_code for r in responses] == [200] * n
    codes = {receipt_of(r) for r in responses}
    assert len(codes) == n

    async def numbers(s: Any) -> list[str]:
        return list((await s.execute(select(Case.number))).scalars())

    found = run_db(reporter, numbers)
    assert len(found) == n
    assert len(set(found)) == n
    assert all(re.fullmatch(r"\d{2}(0[1-9]|1[0-2])\d{4}", x) for x in found), found


def test_follow_up_pages_need_a_session(reporter: TestClient[Litestar]) -> None:
    for path in ("/follow-up/case",):
        r = reporter.get(path, follow_redirects=False)
        assert r.status_code == 303
        assert r.headers["location"] == "/follow-up"
    page = reporter.get("/follow-up")
    assert 'maxlength="64"' in page.text
    assert 'autocomplete="off"' in page.text and 'inputmode="numeric"' in page.text
    assert "portal_session" not in reporter.cookies
