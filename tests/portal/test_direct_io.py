"""The file store's writer past the page cache (portal.kernel.direct_io, issue 17 item 3).

Whatever the sizes of the writes and of the in-place reservations, the file holds exactly the
bytes given, in order; where the file system refuses O_DIRECT (at open or at the first write)
the same bytes go through the page cache; the file is created 0600, never over an existing one;
and an evidence upload through the local store reads back, with its SHA-256, after a store
failure in the middle leaves nothing behind.
"""

from __future__ import annotations

import errno
import hashlib
import os
import random
import stat
from pathlib import Path

import pytest

from crypto.suites import Suite
from portal.case.evidence import BATCH_SIZE, EvidenceSink, Target, read_plaintext
from portal.kernel import direct_io
from portal.kernel.direct_io import ALIGN, STAGE_SIZE, SequentialFile
from portal.kernel.storage import LocalFileStore


def _write_mixed(f: SequentialFile, data: bytes, seed: int) -> None:
    """Writes and in-place reservations of assorted sizes, across block and stage edges."""
    rng = random.Random(seed)
    pos = 0
    while pos < len(data):
        n = min(
            rng.choice([1, 5, ALIGN - 1, ALIGN, ALIGN + 1, 65536, STAGE_SIZE - 3, STAGE_SIZE + 7]),
            len(data) - pos,
        )
        if rng.random() < 0.5 and n <= STAGE_SIZE - ALIGN:
            view = f.reserve(n)
            view[:] = data[pos : pos + n]
            f.advance(n)
        else:
            f.write(memoryview(data)[pos : pos + n])
        pos += n


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_file_holds_exactly_the_bytes_given(tmp_path: Path, seed: int) -> None:
    data = os.urandom(3 * STAGE_SIZE + 12345)
    path = tmp_path / "a.part"
    f = SequentialFile(path)
    assert f.direct == bool(getattr(os, "O_DIRECT", 0))  # this file system takes O_DIRECT
    _write_mixed(f, data, seed)
    f.finish()
    f.close()
    assert f.size == len(data)
    assert path.read_bytes() == data
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


@pytest.mark.parametrize("size", [0, 1, ALIGN, ALIGN + 1, STAGE_SIZE, STAGE_SIZE + 1])
def test_edge_sizes(tmp_path: Path, size: int) -> None:
    data = os.urandom(size)
    f = SequentialFile(tmp_path / "a.part")
    f.write(data)
    f.finish()
    f.close()
    assert (tmp_path / "a.part").read_bytes() == data


def test_never_over_an_existing_file_nor_through_a_symlink(tmp_path: Path) -> None:
    (tmp_path / "taken").write_bytes(b"keep")
    with pytest.raises(FileExistsError):
        SequentialFile(tmp_path / "taken")
    (tmp_path / "link").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(OSError):
        SequentialFile(tmp_path / "link")
    assert not (tmp_path / "elsewhere").exists()
    assert (tmp_path / "taken").read_bytes() == b"keep"


def test_a_file_system_without_o_direct_gets_the_same_bytes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_open = os.open

    def refusing_open(path: str, flags: int, mode: int = 0o777) -> int:
        if flags & direct_io._O_DIRECT:
            raise OSError(errno.EINVAL, "Invalid argument")
        return real_open(path, flags, mode)

    monkeypatch.setattr(direct_io.os, "open", refusing_open)
    data = os.urandom(STAGE_SIZE + 777)
    f = SequentialFile(tmp_path / "a.part")
    assert not f.direct
    _write_mixed(f, data, 7)
    f.finish()
    f.close()
    assert (tmp_path / "a.part").read_bytes() == data


def test_o_direct_refused_at_the_first_write_goes_buffered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import fcntl

    real_write = os.write
    refused = []

    def picky_write(fd: int, data: bytes | memoryview) -> int:
        if fcntl.fcntl(fd, fcntl.F_GETFL) & direct_io._O_DIRECT:
            refused.append(len(data))
            raise OSError(errno.EINVAL, "Invalid argument")
        return real_write(fd, data)

    monkeypatch.setattr(direct_io.os, "write", picky_write)
    data = os.urandom(2 * STAGE_SIZE + 99)
    f = SequentialFile(tmp_path / "a.part")
    _write_mixed(f, data, 3)
    f.finish()
    f.close()
    assert refused and not f.direct
    assert (tmp_path / "a.part").read_bytes() == data


def test_other_write_errors_are_raised(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def full(fd: int, data: bytes | memoryview) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(direct_io.os, "write", full)
    f = SequentialFile(tmp_path / "a.part")
    with pytest.raises(OSError, match="No space left"):
        f.write(os.urandom(STAGE_SIZE))
    f.close()


async def test_an_upload_through_the_local_store_reads_back(tmp_path: Path) -> None:
    store = LocalFileStore(tmp_path / "files")
    data = os.urandom(3 * BATCH_SIZE + 54321)
    target = Target("case-1", os.urandom(32))
    sink = await EvidenceSink(
        store, [target], name="a.bin", content_type="application/pdf", suite=Suite.AES256GCM
    ).open()
    assert sink._in_place  # the local store is filled in place from the seal thread
    view = memoryview(data)
    for i in range(0, len(data), 100_000):
        await sink.write(view[i : i + 100_000])
    [stored, *_rest] = await sink.close()
    assert stored.sha256 == hashlib.sha256(data).hexdigest()
    plain = b"".join(
        [
            c
            async for c in read_plaintext(
                store, stored.case_id, stored.file_id, stored.storage_key, target.case_key
            )
        ]
    )
    assert plain == data
    raw = b"".join([c async for c in store.read(stored.storage_key)])
    assert data[:4096] not in raw


async def test_a_disk_failure_in_the_seal_thread_is_raised_and_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = LocalFileStore(tmp_path / "files")
    sink = await EvidenceSink(
        store,
        [Target("case-1", os.urandom(32))],
        name="a.bin",
        content_type="application/octet-stream",
        suite=Suite.AES256GCM,
    ).open()

    def full(fd: int, data: bytes | memoryview) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(direct_io.os, "write", full)
    with pytest.raises(OSError, match="No space left"):
        for _ in range(6):
            await sink.write(os.urandom(BATCH_SIZE))
        await sink.close()
    await sink.abort()
    assert list(store.incoming.glob("*.part")) == []
    assert await store.keys() == []
