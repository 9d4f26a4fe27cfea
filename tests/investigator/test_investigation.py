"""The investigation (W6): plan steps, records by method, progress messages; domain and HTTP."""

from __future__ import annotations

import datetime as dt
import html
import re
from collections.abc import AsyncIterator
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import TestClient
from sqlalchemy import select

from crypto.envelope import field_aad
from investigator.domain import casework, investigation
from investigator.domain.casefile import staff_key
from portal.case.errors import WorkflowError
from portal.case.evidence import EvidenceSink, StoredFile, Target
from portal.case.sealing import open_json
from portal.kernel import clock
from portal.kernel.db.models import AuditEntry, Case, EvidenceFile, InvestigationStep, Note
from portal.kernel.services import Services
from tests.investigator.test_casework import staff, submit_real_name
from tests.investigator.ws_helpers import Desk, run, submit_case
from tests.portal.test_reporter_journeys import case_page, sign_in

TZ = dt.timezone(dt.timedelta(hours=8))
_STEP_FORM = re.compile(r"/investigation/steps/([0-9a-f]{32})")


@pytest.fixture
async def world(services: Services) -> AsyncIterator[dict[str, Any]]:
    clock.set_clock(lambda: dt.datetime(2026, 3, 2, 10, 0, tzinfo=TZ))
    w: dict[str, Any] = {}
    for name, roles in [
        ("intake", "intake_officer"),
        ("lead", "team_lead,investigator"),
        ("inv", "investigator"),
        ("outsider", "investigator"),
    ]:
        w[name] = await staff(services, name, roles)
    w["case_id"], w["code"] = await submit_real_name(services)
    intake, ikey = w["intake"]
    async with services.db.write() as s:
        case = await s.get(Case, w["case_id"])
        key = await staff_key(s, case.id, intake.id, ikey)
        await casework.accept(s, case, intake.id)
        for name, function in (("lead", "lead"), ("inv", "member")):
            await casework.add_member(
                s, case, key, intake.id, w[name][0], function, declared_no_conflict=True
            )
    yield w
    clock.set_clock(None)


async def _signed_record(services: Services, case_id: str, key: bytes) -> list[StoredFile]:
    sink = await EvidenceSink(
        services.files,
        [Target(case_id, key)],
        name="interview-signed.pdf",
        content_type="application/pdf",
        suite=services.keyring.suite,
        uploaded_by="staff",
    ).open()
    await sink.write(b"%PDF-1.4 signed by the witness")
    return await sink.close()


async def test_steps_need_a_team_owner_and_are_sealed(
    services: Services, world: dict[str, Any]
) -> None:
    case_id = world["case_id"]
    lead, lkey = world["lead"]
    inv, _ = world["inv"]
    outsider, _ = world["outsider"]
    async with services.db.write() as s:
        case = await s.get(Case, case_id)
        key = await staff_key(s, case_id, lead.id, lkey)
        due = dt.date(2026, 3, 10)
        with pytest.raises(WorkflowError):
            await investigation.add_step(
                s, services, case, key, lead.id, title="x", owner_id=outsider.id, due_on=due
            )
        with pytest.raises(WorkflowError):
            await investigation.add_step(
                s, services, case, key, lead.id, title=" ", owner_id=inv.id, due_on=due
            )
        with pytest.raises(WorkflowError):
            await investigation.add_step(
                s,
                services,
                case,
                key,
                lead.id,
                title="x",
                owner_id=inv.id,
                due_on=dt.date(2026, 3, 1),
            )
        step = await investigation.add_step(
            s,
            services,
            case,
            key,
            lead.id,
            title="Read the supplier ledgers",
            owner_id=inv.id,
            due_on=due,
        )
        assert b"ledgers" not in step.sealed
        await s.flush()
        await investigation.set_step_status(s, case, inv.id, step.id, "done")
        with pytest.raises(WorkflowError):
            await investigation.set_step_status(s, case, inv.id, step.id, "finished")
        with pytest.raises(WorkflowError):
            await investigation.set_step_status(s, case, inv.id, "0" * 32, "done")
    clock.set_clock(lambda: dt.datetime(2026, 3, 20, 10, 0, tzinfo=TZ))
    async with services.db.write() as s:
        case = await s.get(Case, case_id)
        late = await investigation.add_step(
            s,
            services,
            case,
            key,
            lead.id,
            title="Interview the cashier",
            owner_id=lead.id,
            due_on=dt.date(2026, 3, 21),
        )
    clock.set_clock(lambda: dt.datetime(2026, 3, 25, 10, 0, tzinfo=TZ))
    async with services.db.read() as s:
        views = await investigation.steps(s, case_id, key)
        assert [(v.title, v.status, v.done_on, v.overdue) for v in views] == [
            ("Read the supplier ledgers", "done", dt.date(2026, 3, 2), False),
            ("Interview the cashier", "open", None, True),
        ]
        assert views[1].id == late.id and views[1].owner_name == "Lead"
        actions = (
            (await s.execute(select(AuditEntry.action).where(AuditEntry.case_id == case_id)))
            .scalars()
            .all()
        )
        assert actions.count("investigation.step_add") == 2
        assert "investigation.step_status" in actions


async def test_records_by_method_interview_needs_the_signed_record(
    services: Services, world: dict[str, Any]
) -> None:
    case_id = world["case_id"]
    inv, ikey = world["inv"]
    async with services.db.write() as s:
        case = await s.get(Case, case_id)
        key = await staff_key(s, case_id, inv.id, ikey)
        with pytest.raises(WorkflowError):
            await investigation.add_record(
                s, services, case, key, inv.id, method="interview", text="Talked to the cashier."
            )
        with pytest.raises(WorkflowError):
            await investigation.add_record(
                s, services, case, key, inv.id, method="gossip", text="x"
            )
        for method in ("document_review", "site_inspection", "data_analysis"):
            await investigation.add_record(
                s, services, case, key, inv.id, method=method, text=f"{method} findings"
            )
        stored = await _signed_record(services, case_id, key)
        note = await investigation.add_record(
            s,
            services,
            case,
            key,
            inv.id,
            method="interview",
            text="The cashier confirmed the payments.",
            stored=stored,
        )
        assert note.kind == "record:interview"
    async with services.db.read() as s:
        views = await investigation.records(s, case_id, key)
        assert [v.method for v in views] == [
            "document_review",
            "site_inspection",
            "data_analysis",
            "interview",
        ]
        assert views[-1].file_ids == [stored[0].file_id]
        row = await s.get(EvidenceFile, stored[0].file_id)
        assert row is not None and row.uploaded_by == "staff" and row.kind == "original"
        notes = (await s.execute(select(Note).where(Note.case_id == case_id))).scalars().all()
        for n in notes:
            assert b"cashier" not in n.sealed
            open_json(key, n.sealed, field_aad(case_id, f"note:{n.id}"))  # sealed, per note aad


# --- through the real app --------------------------------------------------------------------


@pytest.fixture
def desk(client: TestClient[Litestar], services: Services) -> Desk:
    d = Desk(client, services)
    d.add("intake", "intake_officer")
    d.add("lead", "team_lead,investigator")
    d.add("inv", "investigator")
    d.add("outsider", "investigator,approver")
    d.add("accused", "investigator")
    return d


def team_case(desk: Desk, token: str) -> tuple[str, str]:
    case_id, code = run(desk.client, lambda: submit_case(desk.services, token=token))
    r = desk.post("intake", f"/workspace/cases/{case_id}/accept", {"expected_stage": "received"})
    assert r.status_code == 303, r.text
    # intake forms the team with its lead; the lead adds the others
    for actor, name, function in (
        ("intake", "lead", "lead"),
        ("lead", "inv", "member"),
        ("lead", "accused", "member"),
    ):
        r = desk.post(
            actor,
            f"/workspace/cases/{case_id}/team/add",
            {"user_id": desk.user_id(name), "function": function, "declared_no_conflict": "yes"},
        )
        assert r.status_code == 303, r.text
    # the accused is then named as a subject: they lose the case at once
    r = desk.post(
        "lead",
        f"/workspace/cases/{case_id}/subjects/add",
        {
            "name": "Accused",
            "department": "采购部",
            "position": "",
            "user_id": desk.user_id("accused"),
        },
    )
    assert r.status_code == 303, r.text
    return str(case_id), str(code)


def test_investigation_page_steps_records_and_progress_message(desk: Desk) -> None:
    case_id, code = team_case(desk, "token-investigation-http-01")
    base = f"/workspace/cases/{case_id}/investigation"
    # outsiders and the accused get the same 404 as a missing case, for the page and the forms
    for name in ("outsider", "accused"):
        assert desk.get(name, base).status_code == 404
        assert desk.post(name, f"{base}/steps", {"title": "x"}).status_code == 404
        assert desk.post(name, f"{base}/message", {"text": "x"}).status_code == 404
    assert desk.get("lead", "/workspace/cases/" + "0" * 32 + "/investigation").status_code == 404

    due = (dt.date.today() + dt.timedelta(days=5)).isoformat()
    bad = desk.post(
        "lead", f"{base}/steps", {"title": "x", "owner_id": desk.user_id("inv"), "due_on": "soon"}
    )
    assert bad.status_code == 400 and "YYYY-MM-DD" in bad.text
    r = desk.post(
        "lead",
        f"{base}/steps",
        {"title": "Read the supplier ledgers", "owner_id": desk.user_id("inv"), "due_on": due},
    )
    assert r.status_code == 303 and r.headers["location"] == base + "?saved=1"
    page = desk.get("inv", base)
    assert page.status_code == 200 and "Read the supplier ledgers" in page.text
    step_id = _STEP_FORM.search(page.text).group(1)  # type: ignore[union-attr]
    assert desk.post("inv", f"{base}/steps/{step_id}", {"status": "done"}).status_code == 303

    # an interview record with the signed record attached, through the streaming upload
    client = desk.use("inv")
    up = client.post(
        f"{base}/records",
        data={
            "_csrf_token": desk.tokens["inv"],
            "method": "interview",
            "text": "Cashier confirmed.",
        },
        files={"file": ("signed.pdf", b"%PDF-1.4 signed", "application/pdf")},
        follow_redirects=False,
    )
    assert up.status_code == 303, up.text
    # without the file: refused, nothing stored
    no_file = client.post(
        f"{base}/records",
        data={"_csrf_token": desk.tokens["inv"], "method": "interview", "text": "Again."},
        files={"file": ("", b"", "application/octet-stream")},
        follow_redirects=False,
    )
    assert no_file.status_code == 400 and "signed interview record" in no_file.text
    # a forged token: refused before any file is kept
    forged = client.post(
        f"{base}/records",
        data={"_csrf_token": "forged", "method": "interview", "text": "x"},
        files={"file": ("signed.pdf", b"%PDF-1.4", "application/pdf")},
        follow_redirects=False,
    )
    assert forged.status_code == 403
    page = desk.get("lead", base)
    assert "Cashier confirmed." in page.text and "/workspace/files/" in page.text

    async def staff_files() -> list[EvidenceFile]:
        async with desk.services.db.read() as s:
            stmt = select(EvidenceFile).where(
                EvidenceFile.case_id == case_id, EvidenceFile.uploaded_by == "staff"
            )
            return list((await s.execute(stmt)).scalars())

    assert len(run(desk.client, staff_files)) == 1

    r = desk.post("inv", f"{base}/message", {"text": "We are checking the ledgers now."})
    assert r.status_code == 303
    client = desk.anonymous()
    assert sign_in(client, code).status_code == 303
    followup, _token, _ids = case_page(client)
    assert "We are checking the ledgers now." in html.unescape(followup.text)

    async def steps_in_db() -> list[InvestigationStep]:
        async with desk.services.db.read() as s:
            stmt = select(InvestigationStep).where(InvestigationStep.case_id == case_id)
            return list((await s.execute(stmt)).scalars())

    [step] = run(desk.client, steps_in_db)
    assert step.status == "done" and b"ledgers" not in step.sealed
