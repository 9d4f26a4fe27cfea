"""Case exports (A2, W13) through the real app: the lead's archive ZIP, the liaison's transfer
package ZIP; attachments with nosniff; 404 for everyone else, the originals rule first; never
an original file nor the reporter's identity; audited; built in memory under a size cap."""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import zipfile
from typing import Any

from sqlalchemy import select

import portal.reporter.followup as reporter_followup
from investigator.domain import casework
from investigator.domain.case_export import ExportTooLarge, case_archive
from portal.case.evidence import EvidenceSink, Target
from portal.kernel import clock
from portal.kernel.db.models import AuditEntry, Case, EvidenceFile, User
from portal.kernel.services import Services
from tests.investigator.ws_helpers import REPORT_TEXT, Desk, run, submit_case

IDENTITY_NAME = "举报人甲"  # submit_case's real-name reporter
ORIGINAL_ONLY = b"Reporter Name"  # the PNG's tEXt metadata: only in the original


async def _key(services: Services, code: str, case_id: str) -> bytes:
    access = await reporter_followup.sign_in_with_receipt(services, code)
    assert access is not None
    async with services.db.read() as s:
        return (await reporter_followup.reporter_case_keys(s, access))[case_id]


def _team(desk: Desk, services: Services, client: Any) -> tuple[str, str, bytes]:
    intake = desk.add("ina", "intake_officer")
    lead = desk.add("lead", "team_lead,investigator")
    member = desk.add("mem", "investigator")
    case_id, code = run(client, lambda: submit_case(services, token="t-export"))
    key = run(client, lambda: _key(services, code, case_id))

    async def form_team() -> None:
        async with services.db.write() as s:
            case = await s.get(Case, case_id)
            assert case is not None
            await casework.accept(s, case, intake.user_id)
            for who, fn in ((lead, "lead"), (member, "member")):
                user = await s.get(User, who.user_id)
                assert user is not None
                await casework.add_member(
                    s, case, key, intake.user_id, user, fn, declared_no_conflict=True
                )

    run(client, form_team)
    return case_id, code, key


def _unzip(body: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(body)) as zf:
        return {name: zf.read(name) for name in zf.namelist()}


def test_the_lead_exports_the_archive_zip_and_nobody_else_can(
    services: Services, client: Any
) -> None:
    desk = Desk(client, services)
    case_id, _code, key = _team(desk, services, client)
    response = desk.get("lead", f"/workspace/cases/{case_id}/export")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/octet-stream")
    assert response.headers["content-disposition"].startswith("attachment;")
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "no-store" in response.headers["cache-control"]
    entries = _unzip(response.content)
    assert REPORT_TEXT in entries["report.json"].decode()
    assert "采购部负责人" in entries["subjects.json"].decode()
    manifest = json.loads(entries["manifest.json"])
    files = [e for e in manifest["entries"] if e["entry"].startswith("files/")]
    assert [f["kind"] for f in files] == ["working"]  # the PNG's stripped copy; no original
    blob = b"".join(entries.values())
    assert ORIGINAL_ONLY not in blob and b"secret ledger lines" not in blob
    assert IDENTITY_NAME.encode() not in blob and b"13800000000" not in blob
    for name in entries:
        assert ".." not in name and not name.startswith("/")

    for other in ("mem", "ina"):  # a member is not the lead; intake has no say now
        assert desk.get(other, f"/workspace/cases/{case_id}/export").status_code == 404

    async def audited() -> list[str]:
        async with services.db.read() as s:
            return list(
                (
                    await s.execute(
                        select(AuditEntry.detail).where(AuditEntry.action == "case.export")
                    )
                ).scalars()
            )

    details = run(client, audited)
    assert len(details) == 1 and details[0].startswith("kind=archive bytes=")

    # the lead is then named as accused: the export is refused at once, like a missing case
    async def name_lead() -> None:
        async with services.db.write() as s:
            case = await s.get(Case, case_id)
            assert case is not None
            await casework.add_subject(
                s,
                services,
                case,
                key,
                desk.user_id("ina"),
                name="Lead",
                department="",
                position="",
                user_id=desk.user_id("lead"),
            )

    run(client, name_lead)
    assert desk.get("lead", f"/workspace/cases/{case_id}/export").status_code == 404
    assert desk.get("lead", "/workspace/cases/" + "0" * 32 + "/export").status_code == 404


def test_size_cap_stops_the_export(services: Services, client: Any) -> None:
    desk = Desk(client, services)
    case_id, _code, key = _team(desk, services, client)
    capped = Services(
        settings=services.settings.with_overrides(export_max_mb=1),
        db=services.db,
        keyring=services.keyring,
        files=services.files,
        argon2=services.argon2,
        receipt_argon2=services.receipt_argon2,
    )

    async def big() -> None:
        sink = await EvidenceSink(
            services.files,
            [Target(case_id, key)],
            name="big.png",
            content_type="image/png",
            suite=services.keyring.suite,
        ).open()
        # an incompressible 2 MiB "working copy" (stored as such: the cap is what matters)
        await sink.write(os.urandom(2 * 1024 * 1024))
        stored = await sink.close()
        async with services.db.write() as s:
            for f in stored:
                s.add(
                    EvidenceFile(
                        id=f.file_id,
                        case_id=case_id,
                        kind="working",
                        storage_key=f.storage_key,
                        uploaded_by="staff",
                        created_on=clock.today(),
                    )
                )
        async with services.db.read() as s:
            case = await s.get(Case, case_id)
            assert case is not None
            try:
                await case_archive(capped, s, case, key)
            except ExportTooLarge:
                return
            raise AssertionError("the cap did not stop the export")

    run(client, big)


def test_the_liaison_exports_the_transfer_package_only(services: Services, client: Any) -> None:
    desk = Desk(client, services)
    intake = desk.add("ina", "intake_officer")
    liaison = desk.add("liz", "department_liaison", department="Purchasing")
    desk.add("other", "department_liaison", department="Sales")
    case_id, _code = run(client, lambda: submit_case(services, token="t-transfer"))

    async def transfer() -> str:
        async with services.db.write() as s:
            case = await s.get(Case, case_id)
            user = await s.get(User, liaison.user_id)
            assert case is not None and user is not None and user.department_id
            package, pkey = await casework.transfer(
                s,
                services,
                case,
                intake.user_id,
                department_id=user.department_id,
                summary="Supplier dispute about delivery terms; please review the contract.",
                due_on=clock.today() + dt.timedelta(days=7),
            )
            sink = await EvidenceSink(
                services.files,
                [Target(case_id, pkey)],
                name="contract-redacted.txt",
                content_type="text/plain",
                suite=services.keyring.suite,
                uploaded_by="staff",
            ).open()
            await sink.write(b"redacted contract text")
            for f in await sink.close():
                s.add(
                    EvidenceFile(
                        id=f.file_id,
                        case_id=case_id,
                        kind="redacted",
                        package_id=package.id,
                        storage_key=f.storage_key,
                        uploaded_by="staff",
                        created_on=clock.today(),
                    )
                )
            return package.id

    package_id = run(client, transfer)
    response = desk.get("liz", f"/workspace/transfers/{package_id}/export")
    assert response.status_code == 200, response.text
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["content-disposition"].startswith("attachment;")
    entries = _unzip(response.content)
    assert "Supplier dispute" in entries["package.json"].decode()
    assert b"redacted contract text" in b"".join(entries.values())
    blob = b"".join(entries.values())
    assert REPORT_TEXT.encode() not in blob and IDENTITY_NAME.encode() not in blob
    assert ORIGINAL_ONLY not in blob and "采购部负责人".encode() not in blob
    # another department's liaison, the intake officer, and the case export: all 404
    assert desk.get("other", f"/workspace/transfers/{package_id}/export").status_code == 404
    assert desk.get("ina", f"/workspace/transfers/{package_id}/export").status_code == 404
    assert desk.get("liz", f"/workspace/cases/{case_id}/export").status_code == 404
