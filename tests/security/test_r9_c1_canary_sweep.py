"""R9, C1, R8: one parametrised canary sweep over every kind of reporter submission.

tests/portal/test_reporter_canary.py puts one marker into everything at once. Here each kind of
submission gets its own fresh marker, its own network identifiers (User-Agent, X-Forwarded-For,
Forwarded, X-Real-IP, Referer, a client address) and its own check, so a leak is pinned to the
path that caused it: report, complaint, both, message, evidence added later, identity added
later, retaliation, feedback, reward claim. After each: the marker and the identifiers are
absent from every column of every row, the raw SQLite file and its WAL/journal, every file under
the data directory (the file store included), temp files written during the test, and the logs;
the receipt code is absent from files and logs.
"""

from __future__ import annotations

import logging
import re
import secrets
import tempfile
from pathlib import Path
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import TestClient

from portal.kernel.services import Services
from portal.kernel.settings import Settings
from tests.investigator.ws_helpers import Desk, run
from tests.portal.test_reporter_canary import (
    _dump_database,
    _files_under,
    _hits,
    _letters,
    _needles,
)
from tests.portal.test_reporter_journeys import (
    case_page,
    multipart,
    receipt_of,
    report_fields,
    sign_in,
    submit,
)

KINDS = [
    "report",
    "complaint",
    "both",
    "message",
    "evidence",
    "identity",
    "retaliation",
    "feedback",
    "reward_claim",
]


def _complaint(m: str, phone: str) -> dict[str, Any]:
    return {
        "complainant_name": f"complainant {m}",
        "complainant_phone": phone,
        "complainant_address": f"address {m}",
        "respondent_name": f"respondent {m}",
        "respondent_address": f"respondent address {m}",
        "request": f"request {m}",
    }


def _marked_submission(kind: str, m: str, phone: str) -> list[tuple[str, str]]:
    extra: dict[str, Any] = {
        "identity_mode": "real_name",
        "id_name": f"name {m}",
        "id_phone": phone,
        "id_email": f"{m}@example.com",
        "id_employee_id": f"E {m}",
        "subject_name": [f"subject {m}", "", ""],
        "subject_department": [f"dept {m}", "", ""],
        "subject_position": [f"pos {m}", "", ""],
        "what": f"what {m}",
        "when": f"when {m}",
        "where": f"where {m}",
        "how_known": f"how {m}",
        "amount": f"amount {m}",
        "witnesses": f"witnesses {m}",
        "kind": kind,
    }
    if kind in ("complaint", "both"):
        extra |= _complaint(m, phone)
    return report_fields(**extra)


def _reward_desk(client: TestClient[Litestar], services: Services) -> Desk:
    desk = Desk(client, services)
    for name, roles in [
        ("intake", "intake_officer"),
        ("lead", "team_lead,investigator"),
        ("approver", "approver"),
        ("officer", "reward_officer"),
    ]:
        desk.add(name, roles)
    return desk


def _reward_ready(
    client: TestClient[Litestar], desk: Desk, services: Services, case_id: str
) -> None:
    """Conclude the case and have a reward approved (W11: 8,000 RMB, one approver), over
    HTTP."""
    from tests.investigator.test_rewards import conclude_as

    run(
        client, lambda: conclude_as(services, desk.user_id("intake"), desk.user_id("lead"), case_id)
    )
    base = f"/workspace/cases/{case_id}/reward"
    form = {"amount": "8000", "recovered_amount": "90000", "basis": "ledger"}
    assert desk.post("lead", base + "/propose", form).status_code == 303
    answer = desk.post("approver", base + "/decide", {"decision": "approve", "opinion": "Fair."})
    assert answer.status_code == 303
    desk.anonymous()


@pytest.mark.parametrize("kind", KINDS)
def test_R9_C1_nothing_identifying_or_written_is_kept_in_plaintext(
    kind: str,
    client: TestClient[Litestar],
    services: Services,
    settings: Settings,
    with_categories: None,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Everything the process writes through `tempfile` (multipart spooling included) lands in a
    # directory of this test's own, which is then read in full (the shared /tmp is too big).
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    marker = f"CANARY-{_letters()}"
    m = marker
    agent = f"Mozilla/5.0 (UA-{_letters()})"
    address = f"203.0.{secrets.randbelow(200) + 20}.{secrets.randbelow(200) + 20}"
    phone = "139" + "".join(str(secrets.randbelow(10)) for _ in range(8))
    referer = f"https://{_letters(12)}.example/leak"
    client.headers["accept-language"] = "en"

    baseline_kind = kind not in ("report", "complaint", "both")
    code = ""
    case_id = ""
    if baseline_kind:  # an unmarked report to follow up on
        desk = _reward_desk(client, services) if kind == "reward_claim" else None
        answer = submit(client, report_fields())
        assert answer.status_code == 200
        code = receipt_of(answer)
        if kind == "reward_claim":
            client.cookies.clear()
            assert sign_in(client, code).status_code == 303
            case_id = case_page(client)[2][0]
            jar = dict(client.cookies)
            assert desk is not None
            _reward_ready(client, desk, services, case_id)
            client.cookies.clear()
            for name, value in jar.items():
                client.cookies.set(name, value)

    caplog.set_level(logging.DEBUG)
    caplog.clear()
    capfd.readouterr()
    client.headers.update(
        {
            "user-agent": agent,
            "x-forwarded-for": f"{address}, 10.0.0.1",
            "x-real-ip": address,
            "forwarded": f"for={address};proto=https",
            "referer": referer,
        }
    )

    if not baseline_kind:
        files = [("evidence", (f"{m}.txt", f"content {m}\n".encode() * 20, "text/plain"))]
        answer = submit(client, _marked_submission(kind, m, phone), files)
        assert answer.status_code == 200, answer.text
        code = receipt_of(answer)
    else:
        if kind != "reward_claim":
            assert sign_in(client, code).status_code == 303
        _page, csrf, ids = case_page(client)
        case_id = ids[0]
        if kind == "evidence":
            body, hdrs = multipart(
                [
                    ("_csrf_token", csrf),
                    ("case_id", case_id),
                    ("evidence", (f"later-{m}.txt", f"later {m}".encode(), "text/plain")),
                ]
            )
            answer = client.post(
                "/follow-up/evidence", content=body, headers=hdrs, follow_redirects=False
            )
        else:
            path, data = {
                "message": ("/follow-up/message", {"case_id": case_id, "text": f"msg {m}"}),
                "retaliation": ("/follow-up/retaliation", {"case_id": case_id, "text": f"r {m}"}),
                "feedback": (
                    "/follow-up/feedback",
                    {"case_id": case_id, "kind": "dissatisfied", "text": f"fb {m}"},
                ),
                "identity": (
                    "/follow-up/identity",
                    {
                        "id_name": f"name {m}",
                        "id_phone": phone,
                        "id_email": f"{m}@example.com",
                        "id_employee_id": f"E {m}",
                        "id_contact": "email",
                    },
                ),
                "reward_claim": (
                    "/follow-up/reward-claim",
                    {"case_id": case_id, "name": f"claim {m}", "payment": f"bank {m}"},
                ),
            }[kind]
            answer = client.post(path, data={"_csrf_token": csrf, **data}, follow_redirects=False)
        assert answer.status_code == 303, (kind, answer.status_code, answer.text[:500])
        page, _csrf, _ids = case_page(client)
        if kind == "message":
            assert marker in page.text  # it was stored (sealed) and reads back
    logging.getLogger("portal.canary").warning("control %s", "CONTROL-" + marker[::-1])

    values = [marker, marker.lower(), agent, address, phone, referer]
    needles = _needles(values)
    code_re = re.compile(r"\D?".join(code.replace(" ", "")))
    problems: list[str] = []
    dump = _dump_database(client)
    assert any(t == "cases" for t, _c, _d in dump)
    for table, column, data in dump:
        if _hits(data, needles):
            problems.append(f"database {table}.{column}")
    for path in _files_under(settings.data_dir):
        data = path.read_bytes()
        if _hits(data, needles):
            problems.append(f"file {path}")
        if code_re.search(data.decode("latin-1")):
            problems.append(f"receipt code in {path}")
    if settings.is_sqlite:
        db = Path(settings.database_url.split("///", 1)[1])
        for suffix in ("", "-wal", "-shm", "-journal"):
            extra = Path(f"{db}{suffix}")
            if extra.exists() and _hits(extra.read_bytes(), needles):
                problems.append(f"sqlite {extra}")
    assert tempfile.gettempdir() == str(scratch)
    for path in _files_under(scratch):
        try:
            data = path.read_bytes()
        except OSError:
            continue
        if _hits(data, needles):
            problems.append(f"temp file {path}")
    out = capfd.readouterr()
    logs = "\n".join(
        [caplog.text, out.out, out.err] + [repr(r.args) + repr(r.__dict__) for r in caplog.records]
    )
    assert "CONTROL-" + marker[::-1] in logs  # the logs were captured
    problems += [f"logs contain {v!r}" for v in values if v in logs]
    if code_re.search(logs):
        problems.append("logs contain the receipt code")
    assert problems == []
