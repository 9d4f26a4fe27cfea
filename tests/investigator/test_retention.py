"""Archive, retention, legal hold and destruction at the domain level (W13, C5), including THE
destruction test: after crypto-shredding no key left anywhere opens the case, and its canary
is nowhere in the database files or the file store."""

from __future__ import annotations

import contextlib
import datetime as dt
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

import portal.reporter.followup as reporter_followup
import portal.reporter.submission as reporter_submission
from crypto.envelope import field_aad, open_sealed
from crypto.errors import CryptoError
from crypto.receipts import normalize_receipt, unwrap_with_receipt
from crypto.recipients import unwrap_for_recipient
from investigator.domain import casework, retention
from investigator.domain.casefile import staff_key
from portal.case.errors import WorkflowError
from portal.case.evidence import EvidenceSink, StoredFile, read_plaintext
from portal.case.sealing import wrap_aad
from portal.kernel import clock
from portal.kernel.db.models import (
    ArchiveRecord,
    AuditEntry,
    Case,
    EvidenceFile,
    Identity,
    KeyWrap,
    Message,
    Receipt,
)
from portal.kernel.services import Services
from portal.reporter.intake import parse_report
from tests.conftest import appoint_readers
from tests.investigator.test_casework import staff
from tests.portal.test_cli import env, portal  # noqa: F401  (env: a data directory for the CLI)

TZ = dt.timezone(dt.timedelta(hours=8))


@pytest.fixture(autouse=True)
def fixed_clock() -> Iterator[None]:
    clock.set_clock(lambda: dt.datetime(2026, 3, 2, 10, 0, tzinfo=TZ))
    yield
    clock.set_clock(None)


def move_to(day: dt.date) -> None:
    clock.set_clock(lambda: dt.datetime(day.year, day.month, day.day, 10, 0, tzinfo=TZ))


async def submit(services: Services, text: str, *, file_text: bytes = b"") -> tuple[str, str]:
    parsed = parse_report(
        {
            "kind": ["report"],
            "identity_mode": ["real_name"],
            "category": ["bribery"],
            "relation": ["employee"],
            "what": [text],
            "declaration": ["yes"],
            "id_name": ["举报人甲"],
            "id_phone": ["13800000000"],
            "subject_name": ["采购部负责人"],
        },
        ["bribery"],
    )
    assert parsed.report is not None, parsed.errors
    targets = reporter_submission.new_targets(["report"])
    stored: list[StoredFile] = []
    if file_text:
        sink = await EvidenceSink(
            services.files,
            targets,
            name="ledger.txt",
            content_type="text/plain",
            suite=services.keyring.suite,
        ).open()
        await sink.write(file_text)
        stored += await sink.close()
    await appoint_readers(services)  # a report is taken only once somebody can open it (C7)
    code, _ = await reporter_submission.submit(
        services, parsed.report, targets, stored, "tok-" + secrets.token_hex(8)
    )
    return targets[0].case_id, code


@pytest.fixture
async def world(services: Services) -> dict[str, Any]:
    w: dict[str, Any] = {}
    for name, roles in [
        ("intake", "intake_officer"),
        ("lead", "team_lead,investigator"),
        ("ap1", "approver"),
        ("ap2", "approver"),
        ("ap3", "approver"),
        ("custodian", "identity_custodian"),
    ]:
        w[name] = await staff(services, name, roles)
    return w


async def conclude(
    services: Services, w: dict[str, Any], case_id: str, outcome: str = "substantiated"
) -> None:
    """Team formed by intake, then concluded (the handling workflow's result, set directly)."""
    intake, intake_key = w["intake"]
    lead, _ = w["lead"]
    async with services.db.write() as s:
        case = await s.get(Case, case_id)
        assert case is not None
        await casework.accept(s, case, intake.id)
        key = await staff_key(s, case_id, intake.id, intake_key)
        await casework.add_member(s, case, key, intake.id, lead, "lead", declared_no_conflict=True)
        case.stage, case.outcome, case.closed_on = "concluded", outcome, clock.today()


async def archived_case(services: Services, w: dict[str, Any], outcome: str) -> str:
    case_id, _ = await submit(services, "The purchasing head takes cash every month.")
    await conclude(services, w, case_id, outcome)
    async with services.db.write() as s:
        case = await s.get(Case, case_id)
        assert case is not None
        await retention.archive(s, services.settings, case, w["lead"][0].id)
    return case_id


async def test_archive_sets_retention_by_record_class(services: Services, world: Any) -> None:
    sub = await archived_case(services, world, "substantiated")
    unsub = await archived_case(services, world, "unsubstantiated")
    async with services.db.read() as s:
        a = await s.get(ArchiveRecord, sub)
        b = await s.get(ArchiveRecord, unsub)
        ident = await s.get(Identity, sub)
        case = await s.get(Case, sub)
    assert a is not None and b is not None and ident is not None and case is not None
    assert case.stage == "archived"
    assert (a.record_class, a.retain_until) == ("substantiated", dt.date(2036, 3, 2))
    assert (b.record_class, b.retain_until) == ("unsubstantiated", dt.date(2029, 3, 2))
    assert ident.retain_until == dt.date(2029, 3, 2)


async def test_only_closed_cases_are_archived(services: Services, world: Any) -> None:
    case_id, _ = await submit(services, "Something happened in the warehouse again.")
    async with services.db.write() as s:
        case = await s.get(Case, case_id)
        assert case is not None
        with pytest.raises(WorkflowError):
            await retention.archive(s, services.settings, case, None)


async def test_destruction_needs_two_different_uninvolved_approvers(
    services: Services, world: Any
) -> None:
    case_id = await archived_case(services, world, "unsubstantiated")
    ap1, ap2, lead = world["ap1"][0], world["ap2"][0], world["lead"][0]
    async with services.db.write() as s:
        case = await s.get(Case, case_id)
        assert case is not None
        assert await retention.approve_destruction(s, case, ap1.id) == 1
        with pytest.raises(WorkflowError):  # the same person twice
            await retention.approve_destruction(s, case, ap1.id)
        with pytest.raises(WorkflowError):  # a team member
            await retention.approve_destruction(s, case, lead.id)
    # a subject is refused too
    async with services.db.write() as s:
        case = await s.get(Case, case_id)
        assert case is not None
        key = await staff_key(s, case_id, lead.id, world["lead"][1])
        await casework.add_subject(
            s, services, case, key, lead.id, name="x", department="", position="", user_id=ap2.id
        )
    async with services.db.write() as s:
        case = await s.get(Case, case_id)
        assert case is not None
        with pytest.raises(WorkflowError):
            await retention.approve_destruction(s, case, ap2.id)
    # before the retention date, and with one approval: nothing is destroyed
    move_to(dt.date(2029, 3, 3))
    with pytest.raises(WorkflowError):
        await retention.destroy_case(services, case_id)
    report = await retention.run(services)
    assert report.destroyed == [] and len(report.waiting) == 1


async def test_legal_hold_overrides_and_is_audited(services: Services, world: Any) -> None:
    case_id = await archived_case(services, world, "unsubstantiated")
    ap1, ap2 = world["ap1"][0], world["ap2"][0]
    async with services.db.write() as s:
        case = await s.get(Case, case_id)
        assert case is not None
        await retention.approve_destruction(s, case, ap1.id)
        await retention.approve_destruction(s, case, ap2.id)
        await retention.set_legal_hold(s, case_id, ap1.id, hold=True)
    move_to(dt.date(2030, 1, 1))
    dry = await retention.run(services, dry_run=True)
    assert dry.destroyed == [] and dry.identities == []
    report = await retention.run(services)
    assert report.destroyed == [] and report.identities == []
    async with services.db.read() as s:
        assert (await s.get(Identity, case_id)) is not None
    async with services.db.write() as s:
        await retention.set_legal_hold(s, case_id, ap1.id, hold=False)
    dry = await retention.run(services, dry_run=True)
    assert len(dry.destroyed) == 1
    async with services.db.read() as s:
        assert (await s.get(Case, case_id)).destroyed_on is None  # type: ignore[union-attr]
    report = await retention.run(services)
    assert len(report.destroyed) == 1
    async with services.db.read() as s:
        case = await s.get(Case, case_id)
        actions = list((await s.execute(select(AuditEntry.action))).scalars())
    assert case is not None and case.destroyed_on == dt.date(2030, 1, 1)
    assert {"retention.hold_set", "retention.hold_cleared", "case.destroy", "retention.run"} <= set(
        actions
    )


async def test_identity_expires_on_its_own_date(services: Services, world: Any) -> None:
    case_id = await archived_case(services, world, "substantiated")
    move_to(dt.date(2029, 3, 2))
    report = await retention.run(services)
    assert len(report.identities) == 1 and report.destroyed == []
    async with services.db.read() as s:
        assert (await s.get(Identity, case_id)) is None
        wraps = list(
            (
                await s.execute(
                    select(KeyWrap).where(KeyWrap.case_id == case_id, KeyWrap.scope == "identity")
                )
            ).scalars()
        )
        case = await s.get(Case, case_id)
    assert wraps == [] and case is not None and case.destroyed_on is None


def _files_under(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


async def test_destruction_shreds_the_case(services: Services, world: Any) -> None:
    """THE destruction test (C5)."""
    canary = "canary-" + secrets.token_hex(12)
    case_id, code = await submit(
        services,
        f"The purchasing head takes cash: {canary}",
        file_text=f"ledger {canary}".encode(),
    )
    other_id, _ = await submit(services, "A different matter that stays.")
    access = await reporter_followup.sign_in_with_receipt(services, code)
    assert access is not None
    await reporter_followup.reporter_reply(services, access, case_id, f"more {canary}")
    await conclude(services, world, case_id, "unsubstantiated")
    lead = world["lead"][0]
    # what an attacker keeps: every ciphertext of the case, taken before destruction
    async with services.db.read() as s:
        case = await s.get(Case, case_id)
        assert case is not None
        kept: list[tuple[bytes, bytes]] = [(case.content, field_aad(case_id, "content"))]
        for m in (await s.execute(select(Message).where(Message.case_id == case_id))).scalars():
            kept.append((m.sealed, field_aad(case_id, f"message:{m.id}")))
        files = list(
            (await s.execute(select(EvidenceFile).where(EvidenceFile.case_id == case_id))).scalars()
        )
        key = await staff_key(s, case_id, lead.id, world["lead"][1])
    assert files
    blobs = {}
    for f in files:
        data = b""
        async for chunk in services.files.read(f.storage_key):
            data += chunk
        blobs[f.storage_key] = data
        plain = b"".join(
            [c async for c in read_plaintext(services.files, case_id, f.id, f.storage_key, key)]
        )
        assert canary.encode() in plain  # the file really carried the canary
    async with services.db.write() as s:
        case = await s.get(Case, case_id)
        assert case is not None
        await retention.archive(s, services.settings, case, lead.id)
        await retention.approve_destruction(s, case, world["ap1"][0].id)
        await retention.approve_destruction(s, case, world["ap2"][0].id)
    move_to(dt.date(2029, 3, 3))
    await retention.destroy_case(services, case_id, world["ap2"][0].id)

    async with services.db.read() as s:
        case = await s.get(Case, case_id)
        assert case is not None
        assert case.destroyed_on == dt.date(2029, 3, 3) and case.content == b""
        assert (case.number, case.category, case.outcome, case.received_on) == (
            case.number,
            "bribery",
            "unsubstantiated",
            dt.date(2026, 3, 2),
        )
        assert (
            list((await s.execute(select(KeyWrap).where(KeyWrap.case_id == case_id))).scalars())
            == []
        )
        assert (await s.get(Identity, case_id)) is None
        remaining = list((await s.execute(select(KeyWrap))).scalars())
        receipts = list((await s.execute(select(Receipt))).scalars())
        other = await s.get(Case, other_id)
    assert other is not None and other.destroyed_on is None
    for storage_key in blobs:
        assert not await services.files.exists(storage_key)
    # every key any remaining wrap yields, for any staff member or the receipt
    private_keys = [pk for _, pk in world.values()]
    secrets_ = await reporter_submission.derive(services, normalize_receipt(code))
    found: list[bytes] = []
    for w in remaining:
        reader = w.user_id or w.receipt_id or ""
        for pk in private_keys:
            with contextlib.suppress(CryptoError):
                found.append(
                    unwrap_for_recipient(pk, w.wrapped, wrap_aad(w.case_id, w.scope, reader))
                )
            with contextlib.suppress(CryptoError):  # and the destroyed case's own binding
                found.append(
                    unwrap_for_recipient(pk, w.wrapped, wrap_aad(case_id, w.scope, reader))
                )
        for r in receipts:
            for aad in (wrap_aad(w.case_id, w.scope, r.id), wrap_aad(case_id, w.scope, r.id)):
                with contextlib.suppress(CryptoError):
                    found.append(unwrap_with_receipt(secrets_, w.wrapped, aad))
    assert found  # the other case is still readable
    for k in found:
        for blob, aad in kept:
            with pytest.raises(CryptoError):
                open_sealed(k, blob, aad)
    # the canary is nowhere: database file (+WAL, journal) and the file store
    data_dir = services.settings.data_dir
    needles = [canary.encode(), canary.encode("utf-16-le")]
    for path in _files_under(data_dir):
        content = path.read_bytes()
        assert not any(n in content for n in needles), path
        for blob in blobs.values():  # no ciphertext of a destroyed file survives either
            assert blob[64:128] not in content, path


def test_cli_retention_run(env: dict[str, str]) -> None:  # noqa: F811
    """`portal retention run [--dry-run]` for a daily scheduler; each run is audited."""

    assert portal(env, "init").returncode == 0
    assert portal(env, "retention", "run", "--help").returncode == 0
    dry = portal(env, "retention", "run", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "would destroy 0 case(s)" in dry.stdout
    real = portal(env, "retention", "run")
    assert real.returncode == 0, real.stderr
    assert "destroyed 0 case(s)" in real.stdout
    audit = portal(env, "audit", "verify")
    assert audit.returncode == 0 and "intact" in audit.stdout


# --- through the real app ---------------------------------------------------------------------


def test_archive_and_destruction_through_the_app(client: Any, services: Services) -> None:
    from tests.investigator.test_rewards import conclude_as
    from tests.investigator.ws_helpers import Desk, run, submit_case

    desk = Desk(client, services)
    desk.add("intake", "intake_officer")
    desk.add("lead", "team_lead,investigator,approver")
    for name in ("ap1", "ap2", "ap3"):
        desk.add(name, "approver")
    desk.add("stranger", "investigator")
    case_id, _code = run(
        client, lambda: submit_case(services, with_files=True, token="ar-" + "c" * 20)
    )
    # not closed yet: archiving is refused
    run(
        client, lambda: conclude_as(services, desk.user_id("intake"), desk.user_id("lead"), case_id)
    )
    assert desk.post("stranger", f"/workspace/cases/{case_id}/archive").status_code == 404
    assert desk.post("lead", f"/workspace/cases/{case_id}/archive").status_code == 303
    listing = desk.get("ap1", "/workspace/archive")
    assert listing.status_code == 200 and f"a-{case_id}" in listing.text
    assert desk.get("stranger", "/workspace/archive").status_code == 404

    async def name_ap3() -> None:
        from crypto.recipients import unlock_with_password
        from portal.kernel.db.models import User
        from tests.investigator.conftest import STRONG_PASSWORD

        async with services.db.write() as s:
            case = await s.get(Case, case_id)
            lead = await s.get(User, desk.user_id("lead"))
            assert case is not None and lead is not None
            private = unlock_with_password(
                lead.sealed_private_by_password, STRONG_PASSWORD, services.keyring.password_pepper
            )
            key = await staff_key(s, case_id, lead.id, private)
            await casework.add_subject(
                s,
                services,
                case,
                key,
                lead.id,
                name="n",
                department="",
                position="",
                user_id=desk.user_id("ap3"),
            )

    run(client, name_ap3)
    assert f"a-{case_id}" not in desk.get("ap3", "/workspace/archive").text
    destroy = f"/workspace/archive/{case_id}/approve-destruction"
    assert desk.post("ap3", destroy, {"confirm": "yes"}).status_code == 404  # a subject
    assert desk.post("lead", destroy, {"confirm": "yes"}).status_code == 404  # on the team
    assert desk.post("ap1", destroy, {}).status_code == 400  # not confirmed
    assert desk.post("ap1", destroy, {"confirm": "yes"}).status_code == 303
    assert desk.post("ap1", destroy, {"confirm": "yes"}).status_code == 400  # the same twice
    # a legal hold, set and cleared, audited
    assert desk.post("ap2", f"/workspace/archive/{case_id}/hold", {"hold": "on"}).status_code == 303
    assert "On hold since" in desk.get("ap1", "/workspace/archive").text
    assert (
        desk.post("ap2", f"/workspace/archive/{case_id}/hold", {"hold": "off"}).status_code == 303
    )
    # second approval before the retention date: recorded, nothing destroyed yet
    assert desk.post("ap2", destroy, {"confirm": "yes"}).status_code == 303
    assert desk.get("lead", f"/workspace/cases/{case_id}").status_code == 200
    move_to(dt.date(2036, 3, 3))  # substantiated: kept ten years
    report = run(client, lambda: retention.run(services))
    assert len(report.destroyed) == 1
    assert desk.get("lead", f"/workspace/cases/{case_id}").status_code == 404
    assert f"a-{case_id}" not in desk.get("ap1", "/workspace/archive").text


def test_second_approval_after_the_retention_date_destroys_at_once(
    client: Any, services: Services
) -> None:
    from tests.investigator.test_rewards import conclude_as
    from tests.investigator.ws_helpers import Desk, run, submit_case

    desk = Desk(client, services)
    desk.add("intake", "intake_officer")
    desk.add("lead", "team_lead,investigator")
    desk.add("ap1", "approver")
    desk.add("ap2", "approver")
    case_id, _code = run(
        client, lambda: submit_case(services, with_files=True, token="ad-" + "d" * 20)
    )
    run(
        client, lambda: conclude_as(services, desk.user_id("intake"), desk.user_id("lead"), case_id)
    )

    async def storage_keys() -> list[str]:
        async with services.db.read() as s:
            rows = await s.execute(
                select(EvidenceFile.storage_key).where(EvidenceFile.case_id == case_id)
            )
            return list(rows.scalars())

    keys = run(client, storage_keys)
    assert keys
    assert desk.post("lead", f"/workspace/cases/{case_id}/archive").status_code == 303
    destroy = f"/workspace/archive/{case_id}/approve-destruction"
    assert desk.post("ap1", destroy, {"confirm": "yes"}).status_code == 303
    move_to(dt.date(2036, 3, 3))
    done = desk.post("ap2", destroy, {"confirm": "yes"})
    assert done.status_code == 303 and done.headers["location"].endswith("done=destroyed")
    assert (
        "The case has been destroyed." in desk.get("ap2", "/workspace/archive?done=destroyed").text
    )

    async def any_left() -> bool:
        return any([await services.files.exists(k) for k in keys])

    assert not run(client, any_left)
    assert desk.get("lead", f"/workspace/cases/{case_id}").status_code == 404
