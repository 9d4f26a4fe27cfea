"""The hash-chained audit log (A5): appends, verification and tamper detection."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import select, text

from portal.kernel import audit
from portal.kernel.db.models import AuditEntry
from portal.kernel.services import Services


async def _append(services: Services, n: int) -> None:
    for i in range(n):
        async with services.db.write() as s:
            await audit.record(
                s, actor_user_id=f"user{i}", action="case.view", case_id=f"case{i}", detail=f"n={i}"
            )


async def test_empty_log_verifies(services: Services) -> None:
    result = await audit.verify(services.db)
    assert result == audit.VerifyResult(True, 0, None, "chain intact")


async def test_entries_are_chained(services: Services) -> None:
    await _append(services, 3)
    async with services.db.read() as s:
        rows = list((await s.execute(select(AuditEntry).order_by(AuditEntry.id))).scalars())
    assert [r.id for r in rows] == [1, 2, 3]
    assert rows[0].prev_hash == "0" * 64
    assert rows[1].prev_hash == rows[0].hash
    assert rows[2].prev_hash == rows[1].hash
    assert len({r.hash for r in rows}) == 3
    result = await audit.verify(services.db)
    assert result.ok and result.checked == 3 and result.first_broken_id is None


async def test_entry_is_part_of_the_callers_transaction(services: Services) -> None:
    with pytest.raises(RuntimeError):
        async with services.db.write() as s:
            await audit.record(s, actor_user_id="u", action="case.view")
            raise RuntimeError("roll back")
    await _append(services, 1)
    async with services.db.read() as s:
        ids = list((await s.execute(select(AuditEntry.id))).scalars())
    assert ids == [1]
    assert (await audit.verify(services.db)).ok


async def test_edited_detail_is_detected(services: Services) -> None:
    await _append(services, 5)
    async with services.db.write() as s:
        await s.execute(text("UPDATE audit_log SET detail = 'n=999' WHERE id = 3"))
    result = await audit.verify(services.db)
    assert not result.ok
    assert result.first_broken_id == 3
    assert result.checked == 2
    assert "edited" in result.reason


async def test_edited_actor_with_recomputed_own_hash_is_detected(services: Services) -> None:
    """Re-hashing the edited row is not enough: the next row's prev_hash no longer fits."""
    await _append(services, 4)
    async with services.db.write() as s:
        row = (await s.execute(select(AuditEntry).where(AuditEntry.id == 2))).scalar_one()
        forged = audit.entry_hash(
            id=row.id,
            at=row.at,
            actor_user_id="someone-else",
            action=row.action,
            case_id=row.case_id,
            detail=row.detail,
            prev_hash=row.prev_hash,
        )
        await s.execute(
            text("UPDATE audit_log SET actor_user_id = 'someone-else', hash = :h WHERE id = 2"),
            {"h": forged},
        )
    result = await audit.verify(services.db)
    assert not result.ok and result.first_broken_id == 3


async def test_deleted_middle_row_is_detected(services: Services) -> None:
    await _append(services, 5)
    async with services.db.write() as s:
        await s.execute(text("DELETE FROM audit_log WHERE id = 3"))
    result = await audit.verify(services.db)
    assert not result.ok
    assert result.first_broken_id == 4
    assert "missing" in result.reason


async def test_deleted_first_row_is_detected(services: Services) -> None:
    await _append(services, 3)
    async with services.db.write() as s:
        await s.execute(text("DELETE FROM audit_log WHERE id = 1"))
    result = await audit.verify(services.db)
    assert not result.ok and result.first_broken_id == 2


async def test_deleted_row_with_renumbering_is_detected(services: Services) -> None:
    """Closing the gap by renumbering the later rows still breaks the chain."""
    await _append(services, 4)
    async with services.db.write() as s:
        await s.execute(text("DELETE FROM audit_log WHERE id = 2"))
        await s.execute(text("UPDATE audit_log SET id = id - 1 WHERE id > 2"))
    result = await audit.verify(services.db)
    assert not result.ok and result.first_broken_id == 2


async def test_swapped_rows_are_detected(services: Services) -> None:
    await _append(services, 5)
    cols = "at, actor_user_id, action, case_id, detail, prev_hash, hash"
    async with services.db.write() as s:
        two = (await s.execute(text(f"SELECT {cols} FROM audit_log WHERE id = 2"))).one()
        four = (await s.execute(text(f"SELECT {cols} FROM audit_log WHERE id = 4"))).one()
        assign = ", ".join(f"{c.strip()} = :{c.strip()}" for c in cols.split(","))
        names = [c.strip() for c in cols.split(",")]
        await s.execute(
            text(f"UPDATE audit_log SET {assign} WHERE id = 2"), dict(zip(names, four, strict=True))
        )
        await s.execute(
            text(f"UPDATE audit_log SET {assign} WHERE id = 4"), dict(zip(names, two, strict=True))
        )
    result = await audit.verify(services.db)
    assert not result.ok and result.first_broken_id == 2


async def test_truncated_tail_is_detected_with_an_anchor(services: Services) -> None:
    await _append(services, 3)
    anchor = await audit.head(services.db)
    assert anchor is not None and anchor[0] == 3
    assert (await audit.verify(services.db, expect_head=anchor)).ok
    async with services.db.write() as s:
        await s.execute(text("DELETE FROM audit_log WHERE id = 3"))
    assert (await audit.verify(services.db)).ok  # undetectable without an anchor...
    result = await audit.verify(services.db, expect_head=anchor)
    assert not result.ok and "anchored" in result.reason  # ...and detected with one


async def test_concurrent_appends_never_fork(services: Services) -> None:
    async def one(i: int) -> None:
        async with services.db.write() as s:
            await audit.record(s, actor_user_id=f"u{i}", action="case.view")

    await asyncio.gather(*(one(i) for i in range(20)))
    result = await audit.verify(services.db)
    assert result.ok and result.checked == 20


@pytest.mark.parametrize(
    ("action", "detail"),
    [("Case View", ""), ("case.view;drop", ""), ("x" * 61, ""), ("case.view", "d" * 1001)],
)
async def test_bad_entries_are_refused(services: Services, action: str, detail: str) -> None:
    async with services.db.write() as s:
        with pytest.raises(audit.AuditError):
            await audit.record(s, actor_user_id=None, action=action, detail=detail)


def test_hash_encoding_is_unambiguous() -> None:
    import datetime as dt

    at = dt.datetime(2024, 1, 2, 3, 4, 5, 6, tzinfo=dt.UTC)
    base = {
        "id": 1,
        "at": at,
        "actor_user_id": "a",
        "action": "x",
        "case_id": None,
        "detail": "b",
        "prev_hash": "0" * 64,
    }
    h = audit.entry_hash(**base)  # type: ignore[arg-type]
    assert h == audit.entry_hash(**{**base, "at": at.replace(tzinfo=None)})  # type: ignore[arg-type]
    assert h != audit.entry_hash(**{**base, "actor_user_id": "ab", "detail": ""})  # type: ignore[arg-type]
    assert h != audit.entry_hash(**{**base, "case_id": ""})  # type: ignore[arg-type]


def test_cli_audit_verify(services: Services, settings, monkeypatch, capsys) -> None:
    from portal.app.cli import main

    monkeypatch.setenv("PORTAL_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("DATABASE_URL", settings.database_url)

    async def populate() -> None:
        await _append(services, 3)
        await services.db.dispose()

    asyncio.run(populate())
    assert main(["audit", "verify"]) == 0
    assert "3 entries" in capsys.readouterr().out

    async def tamper() -> None:
        async with services.db.write() as s:
            await s.execute(text("UPDATE audit_log SET action = 'signin.success' WHERE id = 2"))
        await services.db.dispose()

    asyncio.run(tamper())
    assert main(["audit", "verify"]) == 1
    out = capsys.readouterr().out
    assert "BROKEN" in out and "2" in out
