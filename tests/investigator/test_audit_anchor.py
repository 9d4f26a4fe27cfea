"""The anchored audit chain (A5): the head is anchored outside the database (an append-only file
in the data directory, and the auditor's page showing it); `portal audit verify` (a real
process) detects a truncated tail and a full rewrite, each with one clear line and exit 1."""

from __future__ import annotations

import asyncio
import os
import shutil
import stat
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import pytest
from sqlalchemy import select, text

from portal.kernel import audit
from portal.kernel.audit_anchor import anchor_path, read_anchors
from portal.kernel.db.models import AuditEntry
from portal.kernel.services import Services
from portal.kernel.settings import Settings
from tests.investigator.conftest import Browser, Staff, in_app_loop

T = TypeVar("T")


def portal(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PORTAL_", "DATABASE_URL"))}
    env.update(
        PORTAL_DATA_DIR=str(settings.data_dir),
        PORTAL_MODE="test",
        PORTAL_ARGON2_PROFILE="test",
        DATABASE_URL=settings.database_url,
    )
    return subprocess.run(
        [sys.executable, "-m", "portal.app.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


async def _append(services: Services, n: int) -> None:
    for i in range(n):
        async with services.db.write() as s:
            await audit.record(s, actor_user_id=f"u{i}", action="case.view", detail=f"n={i}")


async def _truncate(services: Services, keep: int) -> None:
    """A database thief drops the newest entries: what is left is a consistent chain."""
    async with services.db.write() as s:
        await s.execute(text("DELETE FROM audit_log WHERE id > :k"), {"k": keep})


async def _rewrite(services: Services, extra: int = 0) -> None:
    """A database thief recomputes the whole chain from the first entry with other content
    (and ``extra`` more entries): internally consistent again."""
    async with services.db.write() as s:
        rows = list((await s.execute(select(AuditEntry).order_by(AuditEntry.id))).scalars())
        s.expunge_all()
        await s.execute(text("DELETE FROM audit_log"))
        prev = audit.GENESIS_HASH
        for i in range(len(rows) + extra):
            template = rows[min(i, len(rows) - 1)]
            entry = AuditEntry(
                id=i + 1,
                at=template.at,
                actor_user_id="somebody-else" if i == 0 else template.actor_user_id,
                action=template.action,
                case_id=template.case_id,
                detail=template.detail,
                prev_hash=prev,
            )
            entry.hash = audit.entry_hash(
                id=entry.id,
                at=entry.at,
                actor_user_id=entry.actor_user_id,
                action=entry.action,
                case_id=entry.case_id,
                detail=entry.detail,
                prev_hash=prev,
            )
            s.add(entry)
            prev = entry.hash


def _sync(services: Services, make: Callable[[], Awaitable[T]]) -> T:
    """Run one coroutine from a sync test and close its pool in the same loop (asyncpg's
    connections belong to the loop that opened them)."""

    async def go() -> T:
        try:
            return await make()
        finally:
            await services.db.dispose()

    return asyncio.run(go())


def _one_line(out: subprocess.CompletedProcess[str], needle: str) -> None:
    assert out.returncode == 1, (out.stdout, out.stderr)
    assert "Traceback" not in out.stderr
    lines = out.stdout.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], out.stdout


async def test_each_committed_append_is_anchored_and_a_rollback_is_not(
    services: Services, settings: Settings
) -> None:
    await _append(services, 3)
    path = anchor_path(settings.data_dir)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    anchors = read_anchors(path)
    async with services.db.read() as s:
        rows = {r.id: r.hash for r in (await s.execute(select(AuditEntry))).scalars()}
    assert anchors == rows  # every committed head, nothing else
    with pytest.raises(RuntimeError):
        async with services.db.write() as s:
            await audit.record(s, actor_user_id="u", action="case.view")
            raise RuntimeError("roll back")
    assert read_anchors(path) == rows
    # appended, never rewritten
    before = path.read_bytes()
    await _append(services, 1)
    assert path.read_bytes().startswith(before)


def test_intact_log_passes_and_its_head_is_anchored(services: Services, settings: Settings) -> None:
    _sync(services, lambda: _append(services, 4))
    out = portal(settings, "audit", "verify")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "intact, 4 entries" in out.stdout and "anchors: 4 checked" in out.stdout
    head_line = next(line for line in out.stdout.splitlines() if line.startswith("head"))
    head = head_line.rsplit(" ", 1)[1]
    for anchor in (head, head.split(":")[1], str(anchor_path(settings.data_dir))):
        again = portal(settings, "audit", "verify", "--anchor", anchor)
        assert again.returncode == 0, (anchor, again.stdout)
    assert portal(settings, "audit", "verify", "--expect-head", head).returncode == 0
    bad = portal(settings, "audit", "verify", "--anchor", "not-an-anchor")
    assert bad.returncode == 2 and "--anchor takes" in bad.stderr


def test_a_truncated_tail_is_detected(services: Services, settings: Settings) -> None:
    _sync(services, lambda: _append(services, 5))
    out = portal(settings, "audit", "verify")
    head = out.stdout.strip().splitlines()[-1].rsplit(" ", 1)[1]
    kept = settings.data_dir.parent / "anchor-copy"
    shutil.copyfile(anchor_path(settings.data_dir), kept)
    _sync(services, lambda: _truncate(services, keep=3))
    # the chain alone still verifies: that is the gap the anchor closes
    assert _sync(services, lambda: audit.verify(services.db)).ok
    _one_line(portal(settings, "audit", "verify"), "TRUNCATED")
    _one_line(portal(settings, "audit", "verify", "--anchor", str(kept)), "TRUNCATED")
    _one_line(portal(settings, "audit", "verify", "--anchor", head), "TRUNCATED")
    out = portal(settings, "audit", "verify", "--anchor", head)
    assert "entry 5 was anchored but the log ends at entry 3" in out.stdout


def test_a_full_rewrite_is_detected(services: Services, settings: Settings) -> None:
    _sync(services, lambda: _append(services, 5))
    out = portal(settings, "audit", "verify")
    head = out.stdout.strip().splitlines()[-1].rsplit(" ", 1)[1]
    _sync(services, lambda: _rewrite(services))
    assert _sync(services, lambda: audit.verify(services.db)).ok  # consistent on its own
    _one_line(portal(settings, "audit", "verify"), "REWRITTEN")
    _one_line(portal(settings, "audit", "verify", "--anchor", head), "REWRITTEN at entry 5")
    _one_line(portal(settings, "audit", "verify", "--anchor", head.split(":")[1]), "REWRITTEN")


def test_a_rewrite_that_grows_the_log_is_detected(services: Services, settings: Settings) -> None:
    """Rewritten with more entries than before: every anchor still has to fit."""
    _sync(services, lambda: _append(services, 3))
    _sync(services, lambda: _rewrite(services, extra=4))
    _one_line(portal(settings, "audit", "verify"), "REWRITTEN at entry 1")


def test_auditor_page_shows_the_head_and_a_truncation(
    staff_client: Browser, make_staff: Callable[..., Staff], services: Services
) -> None:
    from tests.investigator.test_admin_routes import signed_in

    signed_in(staff_client, make_staff("audrey", "auditor"))
    staff_client.client.headers["accept-language"] = "en"
    page = staff_client.client.get("/workspace/audit")
    assert page.status_code == 200 and "Head of the log" in page.text

    async def newest() -> tuple[int, str] | None:
        return await audit.head(services.db)

    head = in_app_loop(staff_client.client, newest)
    assert head is not None and f"{head[0]}:{head[1]}" in page.text  # its own view entry
    assert "anchors kept outside the database" in page.text

    async def cut() -> None:
        await _truncate(services, keep=head[0] - 2)

    in_app_loop(staff_client.client, cut)
    zh = staff_client.client.get("/workspace/audit", headers={"accept-language": "zh-CN"})
    assert "审计日志最新的记录已被删除" in zh.text and "日志当前末端" in zh.text
    # that view's own entry took a removed entry's number with another hash: still flagged
    again = staff_client.client.get("/workspace/audit")
    assert "The audit log was REWRITTEN" in again.text


def test_auditor_page_shows_a_rewrite(
    staff_client: Browser, make_staff: Callable[..., Staff], services: Services
) -> None:
    from tests.investigator.test_admin_routes import signed_in

    signed_in(staff_client, make_staff("audrey", "auditor"))
    staff_client.client.headers["accept-language"] = "en"
    assert staff_client.client.get("/workspace/audit").status_code == 200

    async def rewrite() -> None:
        await _rewrite(services)

    in_app_loop(staff_client.client, rewrite)
    page = staff_client.client.get("/workspace/audit")
    assert "The audit log was REWRITTEN" in page.text


def test_anchor_file_path_is_in_the_data_directory(settings: Settings) -> None:
    assert anchor_path(settings.data_dir) == Path(settings.data_dir) / "audit-anchor"
