"""The case core: numbering under concurrency, receipts, one derivation, double submits."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest
from sqlalchemy import func, select

import portal.reporter.followup as reporter_followup
import portal.reporter.submission as reporter_submission
from portal.kernel.db.models import Case, KeyWrap, Receipt, SubmissionNonce
from portal.kernel.services import Services
from portal.reporter.arrival import NoReader
from portal.reporter.intake import parse_report
from tests.conftest import appoint_readers


def _report(kind: str = "report") -> Any:
    fields = {
        "kind": [kind],
        "identity_mode": ["anonymous"],
        "category": ["bribery"],
        "relation": ["supplier"],
        "what": ["A manager asked me for a kickback on an order."],
        "declaration": ["yes"],
        "complainant_name": ["甲"],
        "complainant_phone": ["12345678"],
        "complainant_address": ["上海"],
        "respondent_name": ["乙"],
        "respondent_address": ["北京"],
        "request": ["处理"],
    }
    parsed = parse_report(fields, ["bribery"])
    assert parsed.report is not None, parsed.errors
    return parsed.report


async def _submit(services: Services, token: str, kind: str = "report") -> tuple[str, list[str]]:
    report = _report(kind)
    await appoint_readers(services)  # a report is taken only once somebody can open it (C7)
    return await reporter_submission.submit(
        services, report, reporter_submission.new_targets(report.case_kinds), [], token
    )


async def test_concurrent_allocation_gives_distinct_numbers(services: Services) -> None:
    await appoint_readers(services)  # once, before the concurrent submissions

    async def one(i: int) -> list[str]:
        return (await _submit(services, f"token-{i:04d}-abcdefghijkl"))[1]

    results = await asyncio.gather(*(one(i) for i in range(12)))
    numbers = [n for r in results for n in r]
    assert len(set(numbers)) == 12
    assert all(re.fullmatch(r"\d{8}", n) for n in numbers)
    seqs = sorted(int(n[4:]) for n in numbers)
    assert seqs == list(range(1, 13))


async def test_both_makes_two_linked_cases(services: Services) -> None:
    _code, numbers = await _submit(services, "token-both-abcdefghijkl", "both")
    assert len(numbers) == 2
    async with services.db.read() as s:
        rows = (await s.execute(select(Case).order_by(Case.number))).scalars().all()
    assert [c.kind for c in rows] == ["report", "complaint"]
    assert rows[1].linked_case_id == rows[0].id


async def test_right_wrong_and_malformed_codes(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    code, _ = await _submit(services, "token-receipt-abcdefghijkl")
    calls: list[str] = []
    real = reporter_submission.derive_receipt_secrets

    def counting(*args: Any, **kw: Any) -> Any:
        calls.append("x")
        return real(*args, **kw)

    monkeypatch.setattr(reporter_submission, "derive_receipt_secrets", counting)
    access = await reporter_followup.sign_in_with_receipt(services, code.replace(" ", "-"))
    assert access is not None and len(calls) == 1
    full_width = "".join(chr(ord(c) + 0xFEE0) if c.isdigit() else c for c in code)
    assert await reporter_followup.sign_in_with_receipt(services, full_width) is not None
    digits = code.replace(" ", "")
    wrong = digits[:-2] + str((int(digits[-2]) + 1) % 10) + digits[-1]
    calls.clear()
    assert await reporter_followup.sign_in_with_receipt(services, wrong) is None
    assert await reporter_followup.sign_in_with_receipt(services, "1234") is None
    assert len(calls) == 2, "malformed and wrong codes cost the same one derivation"
    calls.clear()
    assert await reporter_followup.sign_in_with_receipt(services, "1" * 500) is None
    assert calls == [], "over-long input is refused before any derivation"
    async with services.db.read() as s:
        keys = await reporter_followup.reporter_case_keys(s, access)
    assert len(keys) == 1


async def test_double_submit_creates_one_case_and_replays_the_receipt(services: Services) -> None:
    code, _ = await _submit(services, "token-double-abcdefghijkl")
    with pytest.raises(reporter_submission.DuplicateSubmission) as dup:
        await _submit(services, "token-double-abcdefghijkl")
    assert dup.value.receipt == code
    async with services.db.read() as s:
        assert (await s.execute(select(func.count()).select_from(Case))).scalar_one() == 1
        assert (await s.execute(select(func.count()).select_from(Receipt))).scalar_one() == 1


async def test_receipt_lookup_is_an_index(services: Services) -> None:
    """The receipt table is searched by a unique index on the token, never scanned."""
    from sqlalchemy import inspect as sa_inspect

    async with services.db.read() as s:
        conn = await s.connection()
        uniques = await conn.run_sync(lambda c: sa_inspect(c).get_unique_constraints("receipts"))
        indexes = await conn.run_sync(lambda c: sa_inspect(c).get_indexes("receipts"))
    cols = [tuple(u["column_names"]) for u in uniques] + [
        tuple(i["column_names"]) for i in indexes if i.get("unique")
    ]
    assert ("lookup_token",) in cols


async def test_no_staff_no_case_and_no_receipt(services: Services) -> None:
    """C7 at the case layer: with no staff account that could open it, the commit is refused
    and rolled back whole (no case, receipt, wrap or nonce); once an intake officer exists,
    the case key is wrapped for the receipt and for that officer."""
    report = _report("report")
    with pytest.raises(NoReader):
        await reporter_submission.submit(
            services,
            report,
            reporter_submission.new_targets(report.case_kinds),
            [],
            "token-none-abcdefghijkl",
        )
    async with services.db.read() as s:
        for table in (Case, Receipt, KeyWrap, SubmissionNonce):
            count = (await s.execute(select(func.count()).select_from(table))).scalar_one()
            assert count == 0, table.__tablename__
    await _submit(services, "token-wraps-abcdefghijkl")
    async with services.db.read() as s:
        wraps = (await s.execute(select(KeyWrap))).scalars().all()
    assert sorted(w.receipt_id is not None for w in wraps) == [False, True]


async def test_a_nonce_keeps_no_time_after_its_window(services: Services) -> None:
    """R9: the replay window is written to the minute, and once it has passed (at the next
    sweep: the app's timer, or start) the nonce keeps neither the receipt copy nor any time;
    a repeated POST of that old form still makes no second case."""
    import datetime as dt

    from portal.kernel import clock
    from portal.kernel.db.models import SubmissionNonce

    start = dt.datetime(2026, 3, 2, 9, 41, 27, 123456, tzinfo=dt.UTC)
    clock.set_clock(lambda: start)
    try:
        code, _ = await _submit(services, "token-window-abcdefghijkl")
        async with services.db.read() as s:
            [nonce] = (await s.execute(select(SubmissionNonce))).scalars()
        assert nonce.expires_at.second == 0 and nonce.expires_at.microsecond == 0
        # within the window a repeated POST shows the same receipt
        clock.set_clock(lambda: start + dt.timedelta(minutes=14))
        assert (
            await reporter_submission.replay_receipt(services, "token-window-abcdefghijkl") == code
        )
        # after it, nothing is replayed, and the next sweep (the app's timer) forgets it
        clock.set_clock(lambda: start + dt.timedelta(minutes=17))
        assert (
            await reporter_submission.replay_receipt(services, "token-window-abcdefghijkl") is None
        )
        await _submit(services, "token-other-abcdefghijklmn")
        assert await reporter_submission.purge_expired_nonces(services) == 1
        async with services.db.read() as s:
            rows = list((await s.execute(select(SubmissionNonce))).scalars())
        forgotten = [r for r in rows if r.sealed_receipt is None]
        assert len(rows) == 2 and len(forgotten) == 1
        assert forgotten[0].expires_at.year == 1970
        with pytest.raises(reporter_submission.DuplicateSubmission) as dup:
            await _submit(services, "token-window-abcdefghijkl")
        assert dup.value.receipt is None
        async with services.db.read() as s:
            assert (await s.execute(select(func.count()).select_from(Case))).scalar_one() == 2
    finally:
        clock.set_clock(None)
