"""Objects a crash left without a `files` row are swept at start; with PostgreSQL (other
instances may be between writing an object and recording it) only old ones."""

from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path

import portal.reporter.submission as reporter_submission
from crypto.suites import Suite
from portal.case.evidence import EvidenceSink
from portal.kernel.services import Services
from portal.kernel.storage import LocalFileStore, new_storage_key
from tests.conftest import appoint_readers
from tests.portal.test_cases import _report

DAY = 24 * 3600


async def _object(store: LocalFileStore, age_s: float) -> str:
    key = new_storage_key()
    w = await store.writer(key)
    await w.write(b"sealed bytes")
    await w.commit()
    when = time.time() - age_s
    os.utime(store.objects / key[:2] / key, (when, when))
    return key


async def _recorded_file(services: Services, age_s: float) -> str:
    """A real submission with one evidence file; its object made `age_s` old."""
    report = _report()
    targets = reporter_submission.new_targets(report.case_kinds)
    sink = await EvidenceSink(
        services.files,
        targets,
        name="invoice.bin",
        content_type="application/octet-stream",
        suite=Suite.AES256GCM,
    ).open()
    await sink.write(os.urandom(1000))
    stored = await sink.close()
    await appoint_readers(services)  # reports are taken only once somebody can open them
    await reporter_submission.submit(
        services, report, targets, stored, f"sweep-{new_storage_key()}"
    )
    assert isinstance(services.files, LocalFileStore)
    when = time.time() - age_s
    for f in stored:
        os.utime(services.files.objects / f.storage_key[:2] / f.storage_key, (when, when))
    return stored[0].storage_key


def _as_postgres(services: Services) -> Services:
    """The same stores, judged as a multi-instance (PostgreSQL) installation would be."""
    settings = dataclasses.replace(
        services.settings, database_url="postgresql+asyncpg://postgres@127.0.0.1:5432/x"
    )
    assert not settings.is_sqlite
    return dataclasses.replace(services, settings=settings)


async def test_sweep_on_postgres_takes_old_orphans_only(services: Services) -> None:
    store = services.files
    assert isinstance(store, LocalFileStore)
    recorded_old = await _recorded_file(services, age_s=3 * DAY)
    orphan_old = await _object(store, age_s=2 * DAY)
    orphan_fresh = await _object(store, age_s=60)  # another instance is about to record it
    assert await reporter_submission.sweep_orphans(_as_postgres(services)) == 1
    left = set(await store.keys())
    assert orphan_old not in left
    assert {recorded_old, orphan_fresh} <= left


async def test_sweep_on_sqlite_takes_every_orphan(services: Services) -> None:
    if not services.settings.is_sqlite:
        services = dataclasses.replace(
            services,
            settings=dataclasses.replace(
                services.settings, database_url="sqlite+aiosqlite:///unused.db"
            ),
        )
    store = services.files
    assert isinstance(store, LocalFileStore)
    recorded = await _recorded_file(services, age_s=0)
    orphans = {await _object(store, age_s=0), await _object(store, age_s=2 * DAY)}
    assert await reporter_submission.sweep_orphans(services) == 2
    left = set(await store.keys())
    assert recorded in left and not orphans & left


async def test_stale_part_files_only_when_instances_share_the_store(tmp_path: Path) -> None:
    shared = LocalFileStore(tmp_path / "files", stale_after_s=3600)
    shared.ensure()
    fresh = shared.incoming / f"{new_storage_key()}.part"
    stale = shared.incoming / f"{new_storage_key()}.part"
    fresh.write_bytes(b"x")
    stale.write_bytes(b"x")
    old = time.time() - 2 * 3600
    os.utime(stale, (old, old))
    assert await shared.cleanup_incoming() == 1
    assert fresh.exists() and not stale.exists()
    alone = LocalFileStore(tmp_path / "files")  # one process (SQLite): every .part is a leftover
    assert await alone.cleanup_incoming() == 1
    assert not fresh.exists()


async def test_settled_keys_by_age(tmp_path: Path) -> None:
    store = LocalFileStore(tmp_path / "files")
    old = await _object(store, age_s=2 * DAY)
    new = await _object(store, age_s=0)
    assert await store.settled_keys(DAY) == [old]
    assert await store.settled_keys(0) == sorted([old, new])
