"""C5: a destroyed case leaves nothing in the database's files.

A report with a unique canary goes through the reporter portal (identity, a file, a message);
its key wraps and every ciphertext of it are read from the database; the case is destroyed
through the workspace (the second approval after the retention date); then the raw SQLite file
and its ``-wal`` file are read byte for byte: no wrap and no ciphertext of the case is in
either (secure_delete zeroes freed content, the checkpoint after the destruction empties the
WAL). PostgreSQL: see docs/security.md, "Destruction on disk".
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import TestClient
from sqlalchemy import LargeBinary, select

from portal.kernel import clock
from portal.kernel.db.models import Base, Case, KeyWrap, Receipt
from portal.kernel.services import Services
from portal.kernel.settings import Settings
from tests.investigator.test_rewards import conclude_as
from tests.investigator.ws_helpers import Desk, run
from tests.portal.test_reporter_canary import _letters
from tests.security.conftest import case_page, receipt_of, report_fields, sign_in, submit

TZ = dt.timezone(dt.timedelta(hours=8))


@pytest.fixture(autouse=True)
def fixed_clock() -> Iterator[None]:
    clock.set_clock(lambda: dt.datetime(2026, 3, 2, 10, 0, tzinfo=TZ))
    yield
    clock.set_clock(None)


async def _case_blobs(services: Services, case_id: str) -> dict[str, bytes]:
    """Every wrap and ciphertext of the case: its key wraps (and their receipts), its content
    and every sealed column of every row that names it."""
    out: dict[str, bytes] = {}
    async with services.db.read() as s:
        case = await s.get(Case, case_id)
        assert case is not None
        out["cases.content"] = case.content
        wraps = list((await s.execute(select(KeyWrap).where(KeyWrap.case_id == case_id))).scalars())
        for w in wraps:
            out[f"key_wraps.{w.id}"] = w.wrapped
        receipt_ids = {w.receipt_id for w in wraps if w.receipt_id}
        for receipt in (
            await s.execute(select(Receipt).where(Receipt.id.in_(receipt_ids)))
        ).scalars():
            for col in Receipt.__table__.c:
                value = getattr(receipt, col.key)
                if isinstance(col.type, LargeBinary) and value and col.name != "lookup_token":
                    out[f"receipts.{col.name}"] = value
        for table in Base.metadata.sorted_tables:
            if "case_id" not in table.c or table.name in ("cases", "key_wraps"):
                continue
            sealed = [
                c
                for c in table.c
                if isinstance(c.type, LargeBinary)
                and (c.name.startswith("sealed") or table.name == "identities")
            ]
            if not sealed:
                continue
            for i, row in enumerate(
                (await s.execute(select(*sealed).where(table.c.case_id == case_id))).all()
            ):
                for col, value in zip(sealed, row, strict=True):
                    if value:
                        out[f"{table.name}.{col.name}.{i}"] = value
    return out


def _found_in(path: Path, blobs: dict[str, bytes]) -> list[str]:
    if not path.exists():
        return []
    raw = path.read_bytes()
    hits = []
    for name, blob in blobs.items():
        # the whole blob, or any 32-byte window of it (pages may split a long value)
        windows = {blob} | {blob[i : i + 32] for i in range(0, max(len(blob) - 32, 1), 32)}
        if any(len(w) >= 24 and w in raw for w in windows):
            hits.append(name)
    return hits


def test_C5_destruction_leaves_no_wrap_or_ciphertext_in_the_sqlite_files(
    reporter: TestClient[Litestar],
    services: Services,
    settings: Settings,
    with_categories: None,
) -> None:
    if not settings.is_sqlite:
        pytest.skip("the file-level check is SQLite's; PostgreSQL: docs/security.md")
    client = reporter
    desk = Desk(client, services)  # staff first: the report is wrapped for intake
    desk.add("intake", "intake_officer")
    desk.add("lead", "team_lead,investigator")
    desk.add("ap1", "approver")
    desk.add("ap2", "approver")
    canary = _letters()
    desk.anonymous()
    page = submit(
        client,
        report_fields(
            what=f"The buyer takes cash {canary}",
            identity_mode="real_name",
            id_name=f"Li {canary}",
            id_phone="13800000000",
        ),
        [("files", ("ledger.txt", f"ledger {canary}".encode() * 50, "text/plain"))],
    )
    assert page.status_code == 200, page.text[:500]
    code = receipt_of(page)
    assert sign_in(client, code).status_code == 303
    _page, csrf, ids = case_page(client)
    case_id = ids[0]
    sent = client.post(
        "/follow-up/message",
        data={"_csrf_token": csrf, "case_id": case_id, "text": f"also {canary}"},
        follow_redirects=False,
    )
    assert sent.status_code in (302, 303)
    run(
        client, lambda: conclude_as(services, desk.user_id("intake"), desk.user_id("lead"), case_id)
    )

    blobs: dict[str, Any] = run(client, lambda: _case_blobs(services, case_id))
    names = set(blobs)
    assert "cases.content" in names and any(n.startswith("key_wraps.") for n in names)
    assert any(n.startswith("identities.") for n in names)
    assert any(n.startswith("messages.") for n in names)
    assert len([n for n in names if n.startswith("key_wraps.")]) >= 2  # intake + receipt
    db_file = Path(settings.database_url.split("///", 1)[1])
    wal = db_file.with_name(db_file.name + "-wal")
    # before: the bytes are really there to be found (the check can fail)
    assert _found_in(db_file, blobs) or _found_in(wal, blobs)

    assert desk.post("lead", f"/workspace/cases/{case_id}/archive").status_code == 303
    destroy = f"/workspace/archive/{case_id}/approve-destruction"
    assert desk.post("ap1", destroy, {"confirm": "yes"}).status_code == 303
    clock.set_clock(lambda: dt.datetime(2036, 3, 3, 10, 0, tzinfo=TZ))
    done = desk.post("ap2", destroy, {"confirm": "yes"})
    assert done.status_code == 303 and done.headers["location"].endswith("done=destroyed")

    assert _found_in(db_file, blobs) == [], "left in the database file"
    assert _found_in(wal, blobs) == [], "left in the WAL"
    assert not wal.exists() or wal.stat().st_size < 64 * 1024  # emptied, then a few pages
