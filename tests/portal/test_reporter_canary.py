"""Canary: nothing a reporter writes or sends is stored or logged in plaintext (C1, R8, R9).

One report carries a unique marker in every text field, subject, identity field, file name and
file content (including document and image metadata); the follow-up adds a message, a file,
identity and a retaliation report with the marker. The marker (UTF-8, UTF-16) must then be
absent from the database (raw files and every column of every row), every file under the
data directory, every file created in the temp directory during the test, and the logs.
The reporter's User-Agent and forwarded-for headers, and the receipt code, must be absent too.
"""

from __future__ import annotations

import io
import logging
import os
import re
import secrets
import tempfile
import time
import zipfile
from collections.abc import Iterable
from pathlib import Path

import pytest
from litestar import Litestar
from litestar.testing import TestClient
from sqlalchemy import select

from portal.kernel.db.models import Base
from portal.kernel.settings import Settings
from tests.portal.test_reporter_journeys import (
    Part,
    case_page,
    multipart,
    receipt_of,
    report_fields,
    settings,  # noqa: F401  (the reporter-only app)
    sign_in,
    submit,
    with_categories,  # noqa: F401
)
from tests.portal.test_reporter_journeys import reporter as reporter


def _letters(n: int = 24) -> str:
    """A random marker with no digits and no hex letters, so that no log scrubber (which
    hides long digit and hex runs) can mask it and make a leak invisible to this test."""
    return "".join(secrets.choice("ghjkmnpqrstvwxyz") for _ in range(n))


def _needles(values: Iterable[str]) -> list[bytes]:
    out: list[bytes] = []
    for value in values:
        for encoding in ("utf-8", "utf-16-le", "utf-16-be"):
            out.append(value.encode(encoding))
    return out


def _hits(data: bytes, needles: list[bytes]) -> list[bytes]:
    return [n for n in needles if n in data]


def _pdf(marker: str) -> bytes:
    from pypdf import PdfWriter

    writer = PdfWriter()
    writer.add_blank_page(width=200, height=200)
    writer.add_metadata({"/Author": marker, "/Title": f"title {marker}", "/Creator": marker})
    buf = io.BytesIO()
    writer.write(buf)
    return buf.getvalue()


def _jpeg(marker: str) -> bytes:
    from PIL import Image

    image = Image.new("RGB", (16, 16), (200, 30, 30))
    exif = Image.Exif()
    exif[0x010E] = f"description {marker}"  # ImageDescription
    exif[0x013B] = marker  # Artist
    buf = io.BytesIO()
    image.save(buf, format="JPEG", exif=exif.tobytes())
    return buf.getvalue()


_XML = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
_PKG = "http://schemas.openxmlformats.org/package/2006"
_OFFICE = "http://schemas.openxmlformats.org/officeDocument/2006"
_WORD = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
_DOCX_MAIN = "application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"


def _docx(marker: str) -> bytes:
    """A minimal Word document with the marker in its body and its author fields."""
    parts = {
        "[Content_Types].xml": (
            f'{_XML}<Types xmlns="{_PKG}/content-types">'
            '<Default Extension="rels" '
            'ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
            '<Default Extension="xml" ContentType="application/xml"/>'
            f'<Override PartName="/word/document.xml" ContentType="{_DOCX_MAIN}"/>'
            '<Override PartName="/docProps/core.xml" '
            'ContentType="application/vnd.openxmlformats-package.core-properties+xml"/>'
            "</Types>"
        ),
        "_rels/.rels": (
            f'{_XML}<Relationships xmlns="{_PKG}/relationships">'
            f'<Relationship Id="rId1" Type="{_OFFICE}/relationships/officeDocument" '
            'Target="word/document.xml"/>'
            f'<Relationship Id="rId2" Type="{_PKG}/relationships/metadata/core-properties" '
            'Target="docProps/core.xml"/>'
            "</Relationships>"
        ),
        "word/document.xml": (
            f'{_XML}<w:document xmlns:w="{_WORD}">'
            f"<w:body><w:p><w:r><w:t>body {marker}</w:t></w:r></w:p></w:body></w:document>"
        ),
        "docProps/core.xml": (
            f'{_XML}<cp:coreProperties xmlns:cp="{_PKG}/metadata/core-properties" '
            'xmlns:dc="http://purl.org/dc/elements/1.1/">'
            f"<dc:creator>{marker}</dc:creator><cp:lastModifiedBy>{marker}</cp:lastModifiedBy>"
            "</cp:coreProperties>"
        ),
    }
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, text in parts.items():
            z.writestr(name, text)
    return buf.getvalue()


def _files_under(root: Path) -> list[Path]:
    out: list[Path] = []
    for dirpath, _dirs, names in os.walk(root):
        for name in names:
            path = Path(dirpath) / name
            if path.is_file() and not path.is_symlink():
                out.append(path)
    return out


def _temp_snapshot() -> dict[Path, float]:
    snap: dict[Path, float] = {}
    for path in _files_under(Path(tempfile.gettempdir())):
        try:
            snap[path] = path.stat().st_mtime
        except OSError:
            continue
    return snap


def _dump_database(client: TestClient[Litestar]) -> list[tuple[str, str, bytes]]:
    """Every value of every column of every table, as bytes (a pg_dump-like view)."""
    services = client.app.state["services"]

    async def dump() -> list[tuple[str, str, bytes]]:
        rows: list[tuple[str, str, bytes]] = []
        async with services.db.read() as s:
            for table in Base.metadata.sorted_tables:
                result = await s.execute(select(table))
                for row in result.mappings():
                    for column, value in row.items():
                        if value is None:
                            continue
                        if isinstance(value, bytes | bytearray | memoryview):
                            data = bytes(value)
                        else:
                            data = str(value).encode("utf-8")
                        rows.append((table.name, str(column), data))
        return rows

    return list(client.blocking_portal.call(dump))


def test_no_plaintext_anywhere(
    reporter: TestClient[Litestar],
    settings: Settings,  # noqa: F811
    with_categories: None,  # noqa: F811
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    marker = f"CANARY-{_letters()}"
    user_agent = f"Mozilla/5.0 (UA-{_letters()})"
    address = f"198.51.{secrets.randbelow(200) + 20}.{secrets.randbelow(200) + 20}"
    phone = "139" + "".join(str(secrets.randbelow(10)) for _ in range(8))
    phone2 = "137" + "".join(str(secrets.randbelow(10)) for _ in range(8))
    reporter.headers.update(
        {
            "user-agent": user_agent,
            "x-forwarded-for": f"{address}, 10.0.0.1",
            "x-real-ip": address,
            "forwarded": f"for={address};proto=https",
        }
    )

    def m(label: str) -> str:
        return f"{label} {marker}"

    fields = report_fields(
        identity_mode="real_name",
        id_name=m("name"),
        id_phone=phone,
        id_email=f"{marker}@example.com",
        id_employee_id=m("E"),
        id_contact="email",
        kind="both",
        category="fraud",
        relation="supplier",
        subject_name=[m("subject one"), m("subject two"), ""],
        subject_department=[m("dept one"), m("dept two"), ""],
        subject_position=[m("position one"), m("position two"), ""],
        what=m("what happened, in detail:"),
        when=m("when"),
        where=m("where"),
        how_known=m("how known"),
        amount=m("amount"),
        witnesses=m("witnesses"),
        complainant_name=m("complainant"),
        complainant_phone=phone2,
        complainant_address=m("complainant address"),
        respondent_name=m("respondent"),
        respondent_address=m("respondent address"),
        request=m("request"),
        is_representative="yes",
        rep_name=m("rep"),
        rep_phone=phone2,
        rep_id_number=m("ID")[:40],
    )
    files: list[Part] = [
        ("evidence", (f"{marker}-notes.txt", f"notes {marker}\n".encode() * 50, "text/plain")),
        ("evidence", (f"{marker}.pdf", _pdf(marker), "application/pdf")),
        ("evidence", (f"{marker}.jpg", _jpeg(marker), "image/jpeg")),
        (
            "evidence",
            (
                f"{marker}.docx",
                _docx(marker),
                "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            ),
        ),
        ("authorisation", (f"{marker}-letter.txt", m("I authorise").encode(), "text/plain")),
    ]
    # the test's own file building (PIL logs EXIF at debug level) happens before capture
    caplog.set_level(logging.DEBUG)
    caplog.clear()
    capfd.readouterr()
    temp_before = _temp_snapshot()
    started = time.time() - 1
    response = submit(reporter, fields, files)
    assert response.status_code == 200, response.text
    code = receipt_of(response)

    assert sign_in(reporter, code).status_code == 303
    _page, csrf, case_ids = case_page(reporter)
    assert len(case_ids) == 2
    case_id = case_ids[0]
    sent = reporter.post(
        "/follow-up/message",
        data={"_csrf_token": csrf, "case_id": case_id, "text": m("a message")},
        follow_redirects=False,
    )
    assert sent.status_code == 303
    body, hdrs = multipart(
        [
            ("_csrf_token", csrf),
            ("case_id", case_id),
            ("evidence", (f"later-{marker}.txt", m("later file").encode(), "text/plain")),
        ]
    )
    added = reporter.post("/follow-up/evidence", content=body, headers=hdrs, follow_redirects=False)
    assert added.status_code == 303
    identity = reporter.post(
        "/follow-up/identity",
        data={
            "_csrf_token": csrf,
            "id_name": m("new name"),
            "id_phone": "",
            "id_email": f"new-{marker}@example.com",
            "id_employee_id": m("new E"),
            "id_contact": "email",
        },
        follow_redirects=False,
    )
    assert identity.status_code == 303
    retaliation = reporter.post(
        "/follow-up/retaliation",
        data={"_csrf_token": csrf, "case_id": case_id, "text": m("they moved me")},
        follow_redirects=False,
    )
    assert retaliation.status_code == 303
    page, csrf, _ = case_page(reporter)
    assert marker in page.text  # the reporter sees their own message
    reporter.post("/follow-up/sign-out", data={"_csrf_token": csrf}, follow_redirects=False)

    # the test can see what it is looking in
    dump = _dump_database(reporter)
    assert {t for t, _c, _d in dump} >= {"cases", "subjects", "identities", "messages", "files"}
    assert any(t == "cases" and c == "category" and d == b"fraud" for t, c, d in dump)
    assert len([p for p in settings.files_dir.rglob("*") if p.is_file()]) >= 6
    # working copies (metadata stripped) were made for the image, the PDF and the document
    working = [d for t, c, d in dump if t == "files" and c == "kind" and d == b"working"]
    assert len(working) >= 6, len(working)  # x2: kind=both puts every file on both cases
    control = f"CONTROL-{_letters()}"
    logging.getLogger("portal.canary").warning("control %s", control)

    digits = code.replace(" ", "")
    secrets_to_find = [marker, marker.lower(), user_agent, address, phone, phone2]
    needles = _needles(secrets_to_find)
    code_pattern = re.compile(r"\D?".join(digits))
    problems: list[str] = []

    # the database: every column of every row ...
    for table, column, data in dump:
        if _hits(data, needles):
            problems.append(f"database {table}.{column}")
    # ... and, with everything else, the raw files under the data directory
    for path in _files_under(settings.data_dir):
        data = path.read_bytes()
        if _hits(data, needles):
            problems.append(f"file {path}")
        if code_pattern.search(data.decode("latin-1")):
            problems.append(f"receipt code in {path}")
    if settings.is_sqlite:
        db_file = Path(settings.database_url.split("///", 1)[1])
        assert db_file.exists()
        for suffix in ("", "-wal", "-shm", "-journal"):
            path = Path(f"{db_file}{suffix}")
            if path.exists() and _hits(path.read_bytes(), needles):
                problems.append(f"sqlite {path}")

    # files created or changed in the temp directory during the test
    for path in _files_under(Path(tempfile.gettempdir())):
        try:
            mtime = path.stat().st_mtime
        except OSError:
            continue
        if path in temp_before and temp_before[path] == mtime:
            continue
        if mtime < started:
            continue
        try:
            data = path.read_bytes()
        except OSError:
            continue
        if _hits(data, needles):
            problems.append(f"temp file {path}")

    # the logs
    captured = capfd.readouterr()
    log_text = "\n".join(
        [caplog.text, captured.out, captured.err]
        + [repr(r.args) + repr(r.__dict__) for r in caplog.records]
    )
    assert control in log_text  # the logs were captured
    for value in secrets_to_find:
        if value in log_text:
            at = log_text.index(value)
            problems.append(f"logs contain {value!r}: ...{log_text[max(0, at - 300) : at + 50]}")
    if code_pattern.search(log_text):
        problems.append("logs contain the receipt code")

    assert problems == []
