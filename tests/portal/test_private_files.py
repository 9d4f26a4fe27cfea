"""Issue 14, point 8: what the portal writes is private whatever the umask - the SQLite
database with its -wal and -shm files 0600, file store objects 0600 and folders 0700 - and an
object renamed into the store is followed by an fsync of the folder that received it."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from portal.kernel.db.engine import Database
from portal.kernel.storage import LocalFileStore, new_storage_key


@pytest.fixture
def open_umask() -> Iterator[None]:
    """The usual 022: without the code's own care, files would be 0644 and folders 0755."""
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def _mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


async def test_sqlite_database_wal_and_shm_are_0600(tmp_path: Path, open_umask: None) -> None:
    path = tmp_path / "portal.db"
    db = Database(f"sqlite+aiosqlite:///{path.as_posix()}")
    try:
        async with db.write() as s:
            await s.execute(text("CREATE TABLE t (x INTEGER)"))
            await s.execute(text("INSERT INTO t VALUES (1)"))
        async with db.read() as s:
            await s.execute(text("SELECT x FROM t"))
        wal, shm = Path(f"{path}-wal"), Path(f"{path}-shm")
        assert wal.exists() and shm.exists()  # WAL mode, connections still open
        assert {p.name: _mode(p) for p in (path, wal, shm)} == {
            "portal.db": 0o600,
            "portal.db-wal": 0o600,
            "portal.db-shm": 0o600,
        }
    finally:
        await db.dispose()


async def test_store_objects_0600_and_folders_0700(tmp_path: Path, open_umask: None) -> None:
    store = LocalFileStore(tmp_path / "files")
    key = new_storage_key()
    writer = await store.writer(key)
    part = store.incoming / f"{key}.part"
    assert _mode(part) == 0o600  # private from the first byte, not only once committed
    await writer.write(b"ciphertext")
    await writer.commit()
    obj = store.objects / key[:2] / key
    assert _mode(obj) == 0o600
    for folder in (store.root, store.incoming, store.objects, obj.parent):
        assert _mode(folder) == 0o700, folder


async def test_rename_into_the_store_is_followed_by_a_directory_fsync(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    events: list[tuple[str, str]] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        real_fsync(fd)

    def replace(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
        events.append(("replace", str(dst)))
        real_replace(src, dst)

    store = LocalFileStore(tmp_path / "files")
    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    for _ in range(2):  # a new shard folder, then (likely) new again; each rename is synced
        key = new_storage_key()
        events.clear()
        writer = await store.writer(key)
        await writer.write(b"ciphertext")
        await writer.commit()
        shard = store.objects / key[:2]
        final = shard / key
        renamed = events.index(("replace", str(final)))
        assert events[0] == ("fsync", str(store.incoming / f"{key}.part"))  # data first
        assert ("fsync", str(shard)) in events[renamed + 1 :]  # then the rename itself
        # the new shard folder's own entry in objects/ is made durable before the rename
        assert ("fsync", str(store.objects)) in events[:renamed]
        # and an object into an existing shard: the folder is synced again
        key2 = key[:2] + new_storage_key()[2:]
        events.clear()
        writer = await store.writer(key2)
        await writer.write(b"more")
        await writer.commit()
        assert events[-1] == ("fsync", str(shard))
        assert ("fsync", str(store.objects)) not in events
