"""C7: no report is accepted that nobody can open (issue 13, point 4).

The portal refuses new reports until an enabled intake officer with a key pair exists (and, for
a report carrying a name or a complainant's details, an identity custodian with one), with a
page in each language, before anything is stored: no case row, no object in the file store, no
receipt. Once the staff exist, the same submission is taken and the officer opens it. Over many
submissions in several states of the staff, every receipt that was issued opens cases whose
key is wrapped for at least one staff member (and every identity for at least one custodian).
"""

from __future__ import annotations

import html
import secrets
from pathlib import Path
from typing import Any

import httpx
from litestar import Litestar
from litestar.testing import TestClient
from sqlalchemy import func, select, update

from portal.kernel.db.models import (
    Case,
    EvidenceFile,
    Identity,
    KeyWrap,
    Receipt,
    SubmissionNonce,
    User,
)
from portal.kernel.services import Services
from portal.kernel.settings import Settings
from tests.conftest import get_csrf_token
from tests.investigator.ws_helpers import Desk, run
from tests.portal.test_reporter_canary import _files_under, _hits, _letters, _needles
from tests.portal.test_reporter_journeys import GROUP_RE, multipart, report_fields

CLOSED = {
    "en": "The reporting channel is not open yet",
    "zh-CN": "举报渠道尚未开放",
    "zh-TW": "舉報管道尚未開放",
}
NOTHING_STORED = {
    "en": "Nothing you typed or attached was stored",
    "zh-CN": "您填写的内容和上传的文件均未保存",
    "zh-TW": "您填寫的內容和上傳的檔案均未儲存",
}
ANONYMOUS_ONLY = "At the moment only anonymous reports can be accepted"


def _post_report(
    client: TestClient[Litestar], fields: list[tuple[str, str]], files: list[Any], lang: str
) -> httpx.Response:
    """A report posted without the report form (which a closed portal does not show): the CSRF
    token comes from the landing page's language form, the submission token is fresh."""
    csrf = get_csrf_token(client, "/")
    parts: list[Any] = [
        ("_csrf_token", csrf),
        ("submission_token", secrets.token_urlsafe(32)),
        *fields,
        *files,
    ]
    body, headers = multipart(parts)
    return client.post("/report", content=body, headers={**headers, "accept-language": lang})


def _counts(client: TestClient[Litestar]) -> dict[str, int]:
    services: Services = client.app.state["services"]

    async def count() -> dict[str, int]:
        out: dict[str, int] = {}
        async with services.db.read() as s:
            for model in (Case, Receipt, KeyWrap, Identity, EvidenceFile, SubmissionNonce):
                n = await s.execute(select(func.count()).select_from(model))
                out[model.__tablename__] = int(n.scalar_one())
        out["stored objects"] = len(await services.files.keys())
        return out

    return dict(client.blocking_portal.call(count))


def _marked(marker: str, *, real_name: bool = False, kind: str = "report") -> list[tuple[str, str]]:
    extra: dict[str, Any] = {"what": f"what happened {marker}", "kind": kind}
    if real_name:
        extra |= {
            "identity_mode": "real_name",
            "id_name": f"name {marker}",
            "id_phone": "13800138000",
        }
    if kind == "both":
        extra |= {
            "complainant_name": f"complainant {marker}",
            "complainant_phone": "13900139000",
            "complainant_address": f"address {marker}",
            "respondent_name": "Purchasing",
            "respondent_address": "Head office",
            "request": "Stop it",
        }
    return report_fields(**extra)


def _no_marker_anywhere(settings: Settings, marker: str) -> None:
    needles = _needles([marker])
    for path in _files_under(Path(settings.data_dir)):
        assert not _hits(path.read_bytes(), needles), f"marker in {path}"


def test_C7_a_fresh_installation_stores_nothing_and_says_so_in_every_language(
    client: TestClient[Litestar], settings: Settings
) -> None:
    empty = _counts(client)
    assert set(empty.values()) == {0}, empty
    for lang in ("zh-CN", "zh-TW", "en"):
        headers = {"accept-language": lang}
        # told up front: on the landing page, and instead of the report form
        landing = client.get("/", headers=headers)
        assert landing.status_code == 200 and CLOSED[lang] in landing.text, lang
        form = client.get("/report/new", headers=headers)
        assert CLOSED[lang] in form.text and 'action="/report"' not in form.text, lang
        # a submission carrying a canary in its text, its identity and its file
        marker = _letters()
        answer = _post_report(
            client,
            _marked(marker, real_name=True),
            [("files", (f"ledger {marker}.txt", f"ledger {marker}".encode(), "text/plain"))],
            lang,
        )
        assert answer.status_code == 503, answer.status_code
        assert CLOSED[lang] in answer.text and NOTHING_STORED[lang] in answer.text, lang
        assert not GROUP_RE.findall(answer.text), "a receipt code was shown"
        assert _counts(client) == empty, lang
        _no_marker_anywhere(settings, marker)


def test_C7_once_intake_and_custodian_exist_the_same_submission_is_taken_and_opened(
    client: TestClient[Litestar], services: Services, settings: Settings
) -> None:
    client.headers["accept-language"] = "en"
    desk = Desk(client, services)
    desk.add("intake", "intake_officer")
    desk.anonymous()
    marker = _letters()
    real_name = _marked(marker, real_name=True)
    # an intake officer, no custodian yet: anonymous reports only, said on the form
    assert ANONYMOUS_ONLY in client.get("/report/new").text
    refused = _post_report(client, real_name, [], "en")
    assert refused.status_code == 503 and not GROUP_RE.findall(refused.text)
    assert _counts(client)["cases"] == 0
    _no_marker_anywhere(settings, marker)

    desk.add("custodian", "identity_custodian")
    desk.anonymous()
    assert ANONYMOUS_ONLY not in client.get("/report/new").text
    taken = _post_report(client, real_name, [], "en")
    assert taken.status_code == 200 and len(GROUP_RE.findall(taken.text)) == 7, taken.text

    async def wraps() -> tuple[str, set[tuple[str, str | None]]]:
        async with services.db.read() as s:
            case_id = (await s.execute(select(Case.id))).scalar_one()
            rows = await s.execute(
                select(KeyWrap.scope, KeyWrap.user_id).where(KeyWrap.user_id.is_not(None))
            )
            return str(case_id), {(scope, user) for scope, user in rows.all()}

    case_id, staff_wraps = run(client, wraps)
    assert staff_wraps == {
        ("case", desk.user_id("intake")),
        ("identity", desk.user_id("custodian")),
    }
    page = desk.get("intake", f"/workspace/cases/{case_id}")
    assert page.status_code == 200
    assert f"what happened {marker}" in html.unescape(page.text)
    assert f"name {marker}" not in page.text  # the identity stays with the custodian (A3)


def _set(client: TestClient[Litestar], username: str, **values: Any) -> None:
    services: Services = client.app.state["services"]

    async def go() -> None:
        async with services.db.write() as s:
            await s.execute(update(User).where(User.username == username).values(**values))

    client.blocking_portal.call(go)


def test_C7_every_receipt_issued_opens_only_cases_some_staff_member_can_open(
    client: TestClient[Litestar], services: Services
) -> None:
    """Submissions of every shape (anonymous, real name, 举报+投诉) in every state of the staff:
    none, an intake officer only, with a custodian, the only officer named as the accused,
    the officer disabled. A receipt is shown exactly when the invariant holds for its cases."""
    client.headers["accept-language"] = "en"
    desk = Desk(client, services)
    shapes = {
        "anonymous": lambda m: _marked(m),
        "real_name": lambda m: _marked(m, real_name=True),
        "both": lambda m: _marked(m, kind="both"),
        "accuses_officer": lambda m: report_fields(subject_name=["Intake", "", ""]),
    }

    def round_of(expect: dict[str, bool]) -> None:
        desk.anonymous()
        for shape, fields in shapes.items():
            answer = _post_report(client, fields(_letters()), [], "en")
            issued = len(GROUP_RE.findall(answer.text)) == 7
            assert issued == expect[shape], (shape, answer.status_code)
            assert answer.status_code == (200 if issued else 503)

    none = dict.fromkeys(shapes, False)
    round_of(none)  # no staff
    desk.add("intake", "intake_officer")
    round_of(none | {"anonymous": True})  # the officer is "Intake": accusing them leaves nobody
    desk.add("custodian", "identity_custodian")
    round_of({"anonymous": True, "real_name": True, "both": True, "accuses_officer": False})
    desk.add("second", "intake_officer")
    round_of(dict.fromkeys(shapes, True))  # another officer reads the report about "Intake"
    _set(client, "intake", disabled=True)
    _set(client, "second", disabled=True)
    round_of(none)  # every officer disabled
    _set(client, "second", disabled=False)
    _set(client, "custodian", public_key=b"")  # a custodian who cannot open wraps
    round_of({"anonymous": True, "real_name": False, "both": False, "accuses_officer": True})

    async def check() -> tuple[int, int]:
        async with services.db.read() as s:
            receipts = list((await s.execute(select(Receipt.id))).scalars())
            for rid in receipts:
                case_ids = set(
                    (
                        await s.execute(select(KeyWrap.case_id).where(KeyWrap.receipt_id == rid))
                    ).scalars()
                )
                assert case_ids, rid
                for case_id in case_ids:
                    staff = await s.execute(
                        select(func.count())
                        .select_from(KeyWrap)
                        .where(
                            KeyWrap.case_id == case_id,
                            KeyWrap.scope == "case",
                            KeyWrap.user_id.is_not(None),
                        )
                    )
                    assert staff.scalar_one() >= 1, f"case {case_id} has no staff reader"
                    if await s.get(Identity, case_id) is not None:
                        custodians = await s.execute(
                            select(func.count())
                            .select_from(KeyWrap)
                            .where(
                                KeyWrap.case_id == case_id,
                                KeyWrap.scope == "identity",
                                KeyWrap.user_id.is_not(None),  # a custodian, not the receipt
                            )
                        )
                        assert custodians.scalar_one() >= 1, f"identity of {case_id} unreadable"
            cases = (await s.execute(select(func.count()).select_from(Case))).scalar_one()
            return len(receipts), int(cases)

    receipts, case_count = run(client, check)
    # receipts: 1 + 3 + 4 + 2 = 10 shown; cases: "both" makes two each time (2 of them)
    assert receipts == 10 and case_count == 12, (receipts, case_count)


def test_C7_the_only_officer_accused_leaves_nothing_behind(
    client: TestClient[Litestar], services: Services, settings: Settings
) -> None:
    """Refused after the upload was streamed and encrypted (point 5 took every officer out):
    the encrypted file is deleted, no row stays, no receipt is shown."""
    client.headers["accept-language"] = "en"
    desk = Desk(client, services)
    desk.add("intake", "intake_officer")
    desk.anonymous()
    marker = _letters()
    fields = report_fields(subject_name=["  intake ", "", ""], what=f"what happened {marker}")
    answer = _post_report(
        client, fields, [("files", ("ledger.txt", f"ledger {marker}".encode(), "text/plain"))], "en"
    )
    assert answer.status_code == 503 and not GROUP_RE.findall(answer.text)
    counts = _counts(client)
    assert counts["cases"] == 0 and counts["stored objects"] == 0, counts
    _no_marker_anywhere(settings, marker)
    assert f"what happened {marker}" not in answer.text


def test_C7_a_staff_registration_nobody_could_open_is_refused(
    client: TestClient[Litestar], services: Services
) -> None:
    """W2: an intake officer registering a real-name report by phone with no identity custodian
    appointed gets the form back with the reason; no case, no receipt."""
    client.headers["accept-language"] = "en"
    desk = Desk(client, services)
    desk.add("intake", "intake_officer")
    form = desk.get("intake", "/workspace/register")
    token = form.text.split('name="submission_token" value="', 1)[1].split('"', 1)[0]
    fields = {
        "submission_token": token,
        "channel": "phone",
        "kind": "report",
        "identity_mode": "real_name",
        "id_name": "Caller Name",
        "id_phone": "13800138000",
        "category": "bribery",
        "relation": "supplier",
        "what": "A caller says the warehouse manager sells stock on the side.",
        "declaration": "yes",
    }
    refused = desk.post("intake", "/workspace/register", fields)
    assert refused.status_code == 400 and "nobody could open this report" in refused.text
    assert not GROUP_RE.findall(refused.text)
    counts = _counts(client)
    assert counts["cases"] == 0 and counts["receipts"] == 0, counts
