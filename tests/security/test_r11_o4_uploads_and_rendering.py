"""R11, O4, R1 (no script from input): hostile input is stored sealed and shown inert.

One report carries, in every text field and in its file names, an XSS payload, a bidi
override, control characters and path-like names. Then:

* the reporter's follow-up page and the workspace case page (intake officer) show the text
  escaped, with no bidi override or control character, no live markup;
* the file store holds opaque names only, all inside its directory;
* every file download is an attachment, application/octet-stream, nosniff (and the export too);
* a file over the limit answers 413 and leaves nothing in the store; an interrupted body, a
  malformed body and a file part before the token are refused and leave nothing either.
"""

from __future__ import annotations

import dataclasses
import io
import re
import zipfile
from pathlib import Path

import pytest
from litestar import Litestar
from litestar.testing import TestClient

from portal.kernel.services import Services
from portal.kernel.settings import Settings
from tests.investigator.test_case_routes import form_with_team
from tests.portal.test_reporter_journeys import (
    case_page,
    count_cases,
    form_tokens,
    multipart,
    report_fields,
    stored_files,
    submit,
)
from tests.security.conftest import World, make_world

XSS = [
    "<script>alert('x1')</script>",
    '"><img src=x onerror=alert(2)>',
    "<svg/onload=alert(3)>",
    "javascript:alert(4)",
    "{{7*7}}{% raw %}",
]
BIDI = "\u202egnp.exe"
CONTROL = "bell\x07null\x00esc\x1b[31m"
HOSTILE_NAMES = [
    "../../../../etc/passwd",
    "..\\..\\windows\\win.ini",
    "<img src=x onerror=alert(5)>.txt",
    f"invoice{BIDI}",
    "CON.txt",
    "/absolute/path.txt",
    "a" * 400 + ".txt",
]
LIMIT = 64 * 1024


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return dataclasses.replace(settings, max_file_bytes=LIMIT)


def _payload(label: str, i: int) -> str:
    return f"{label} {XSS[i % len(XSS)]} {BIDI} {CONTROL} {XSS[-1]}"


def _hostile_world(client: TestClient[Litestar], services: Services) -> World:
    text = {
        name: _payload(name, i)
        for i, name in enumerate(["what", "when", "where", "how_known", "amount", "witnesses"])
    }
    fields = report_fields(
        **text,
        subject_name=[_payload("subject", 1), "", ""],
        subject_department=[_payload("dept", 2), "", ""],
        subject_position=[_payload("pos", 3), "", ""],
    )
    files = [
        ("evidence", (name, f"content {i} <script>alert(9)</script>".encode(), "text/html"))
        for i, name in enumerate(HOSTILE_NAMES)
    ]
    return make_world(client, services, fields, files)


def _assert_inert(html: str, where: str, *, shown: bool = True) -> None:
    body = html.split("<body", 1)[-1]
    assert "<script>alert" not in body, where
    assert "<img src=x" not in body and "<svg/onload" not in body, where
    assert 'href="javascript:' not in body and "onerror=alert" not in body.replace(
        "onerror=alert(2)&gt;", ""
    ).replace("onerror=alert(5)&gt;", ""), where
    assert "{{7*7}}" in body or not shown, where  # template syntax in input is not evaluated
    for ch in ("\u202e", "\x07", "\x00", "\x1b"):
        assert ch not in html, (where, repr(ch))
    if shown:
        assert "&lt;script&gt;alert(" in body, where  # the text is there, escaped


def test_R11_xss_bidi_and_control_characters_are_inert_everywhere(
    client: TestClient[Litestar], services: Services, settings: Settings, with_categories: None
) -> None:
    world = _hostile_world(client, services)
    page, csrf, _ids = case_page(world.as_reporter())
    _assert_inert(page.text, "reporter follow-up page", shown=False)
    # a message with the payload, as the reporter writes it, read back on both sides
    client.post(
        "/follow-up/message",
        data={"_csrf_token": csrf, "case_id": world.case_id, "text": _payload("msg", 0)},
    )
    _assert_inert(case_page(world.as_reporter())[0].text, "reporter page with message")

    staff_page = world.desk.get("intake", f"/workspace/cases/{world.case_id}")
    assert staff_page.status_code == 200
    _assert_inert(staff_page.text, "workspace case page")
    assert "etc/passwd" not in staff_page.text or "../" not in staff_page.text

    # the store: opaque names, nothing outside the files directory
    root = settings.files_dir.resolve()
    for path in stored_files(settings):
        assert path.resolve().is_relative_to(root)
        assert not re.search(r"passwd|win\.ini|onerror|invoice|CON\.txt|aaaa", path.name)

    # downloads (by the team lead, who may open originals): attachment, octet-stream, nosniff;
    # the name is sanitised
    world.desk.add("lead", "team_lead,investigator")
    form_with_team(world.desk, world.case_id, ("lead", "lead"))
    lead_page = world.desk.get("lead", f"/workspace/cases/{world.case_id}")
    _assert_inert(lead_page.text, "workspace case page (team lead)")
    links = re.findall(r'href="(/workspace/files/[0-9a-f]+)"', lead_page.text)
    assert len(links) >= len(HOSTILE_NAMES)
    for link in links:
        answer = world.desk.get("lead", link)
        assert answer.status_code == 200, link
        assert answer.headers["content-type"].startswith("application/octet-stream")
        assert answer.headers["x-content-type-options"] == "nosniff"
        disposition = answer.headers["content-disposition"]
        assert disposition.startswith("attachment"), disposition
        assert "/" not in disposition.split("filename", 1)[-1].replace("*=utf-8''", "")
        assert "\\" not in disposition and "\u202e" not in disposition

    # the team lead's archive export (ZIP): an attachment, no path-like or hidden member
    # names (zip-slip), and any HTML inside inert
    export = world.desk.get("lead", f"/workspace/cases/{world.case_id}/export")
    if export.status_code == 200:
        assert export.headers["content-disposition"].startswith("attachment")
        assert export.headers["x-content-type-options"] == "nosniff"
        with zipfile.ZipFile(io.BytesIO(export.content)) as archive:
            for member in archive.namelist():
                parts = member.split("/")
                assert not member.startswith("/") and ".." not in parts and "\\" not in member
                assert not any(ch in member for ch in ("\u202e", "\x00", "\x07")), member
                if member.endswith((".html", ".htm")):
                    _assert_inert(archive.read(member).decode(), f"export {member}", shown=False)
    else:
        assert export.status_code == 404  # not exportable at this stage: nothing leaks


def test_O4_file_over_the_limit_is_413_and_leaves_nothing(
    reporter: TestClient[Litestar], settings: Settings, with_categories: None
) -> None:
    before = stored_files(settings)
    answer = submit(
        reporter,
        report_fields(),
        [
            ("evidence", ("small.txt", b"fine", "text/plain")),
            ("evidence", ("big.bin", b"\0" * (LIMIT + 1), "application/octet-stream")),
        ],
    )
    assert answer.status_code == 413
    assert count_cases(reporter) == 0
    assert stored_files(settings) == before
    assert not list((settings.data_dir).rglob("*.part"))


def _body(reporter: TestClient[Litestar], file_first: bool = False) -> tuple[bytes, dict[str, str]]:
    csrf, token = form_tokens(reporter)
    parts: list = [("_csrf_token", csrf), ("submission_token", token), *report_fields()]
    evidence = ("evidence", ("e.txt", b"x" * 5000, "text/plain"))
    parts = [evidence, *parts] if file_first else [*parts, evidence]
    return multipart(parts)


@pytest.mark.parametrize("variant", ["interrupted", "malformed", "file-first", "no-boundary"])
def test_O4_broken_uploads_are_refused_and_leave_nothing(
    reporter: TestClient[Litestar], settings: Settings, with_categories: None, variant: str
) -> None:
    before = stored_files(settings)
    body, headers = _body(reporter, file_first=variant == "file-first")
    if variant == "interrupted":  # the connection ends in the middle of the file
        body = body[: body.index(b"x" * 5000) + 2000]
    elif variant == "malformed":
        body = b"--nonsense\r\nthis is not multipart at all\r\n" + body[:50]
    elif variant == "no-boundary":
        headers = {"content-type": "multipart/form-data"}
    answer = reporter.post("/report", content=body, headers=headers)
    assert answer.status_code in (400, 403), (variant, answer.status_code)
    assert "Traceback" not in answer.text
    assert count_cases(reporter) == 0
    assert stored_files(settings) == before
    assert not list(Path(settings.data_dir).rglob("*.part"))
