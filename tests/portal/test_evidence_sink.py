"""EvidenceSink: batches are encrypted and written while the next one arrives (one in flight).

Checked here without HTTP: the order of the stream is kept whatever the chunking, every target
case gets its own readable ciphertext, an abort with a batch in flight leaves nothing behind,
and a failing store write surfaces instead of being lost in the background.
"""

from __future__ import annotations

import hashlib
import os
import random
from pathlib import Path

import pytest

from crypto.suites import Suite
from portal.case.evidence import BATCH_SIZE, EvidenceSink, StoredFile, Target, read_plaintext
from portal.kernel.storage import LocalFileStore, StoreWriter


def _targets(n: int) -> list[Target]:
    return [Target(case_id=f"case-{i}", case_key=os.urandom(32)) for i in range(n)]


def _chunks(data: bytes, seed: int) -> list[bytes]:
    rng = random.Random(seed)
    out, i = [], 0
    while i < len(data):
        n = rng.choice([1, 17, 4096, 65536, BATCH_SIZE - 1, BATCH_SIZE + 3, 3 * BATCH_SIZE])
        out.append(data[i : i + n])
        i += n
    return out


async def _read(store: LocalFileStore, target: Target, stored: StoredFile) -> bytes:
    parts = [
        c
        async for c in read_plaintext(
            store, stored.case_id, stored.file_id, stored.storage_key, target.case_key
        )
    ]
    return b"".join(parts)


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_many_batches_round_trip_for_every_target(tmp_path: Path, seed: int) -> None:
    store = LocalFileStore(tmp_path / "files")
    data = os.urandom(5 * BATCH_SIZE + 12345)
    targets = _targets(2)
    sink = await EvidenceSink(
        store,
        targets,
        name="ledger.bin",
        content_type="application/octet-stream",
        suite=Suite.AES256GCM,
    ).open()
    for chunk in _chunks(data, seed):
        await sink.write(chunk)
    stored = await sink.close()

    assert [s.case_id for s in stored] == [t.case_id for t in targets]
    for target, info in zip(targets, stored, strict=True):
        assert info.size == len(data)
        assert info.sha256 == hashlib.sha256(data).hexdigest()
        assert await _read(store, target, info) == data
    assert list(store.incoming.glob("*.part")) == []


async def test_abort_with_a_batch_in_flight_leaves_nothing(tmp_path: Path) -> None:
    store = LocalFileStore(tmp_path / "files")
    sink = await EvidenceSink(
        store,
        _targets(2),
        name="a.bin",
        content_type="application/octet-stream",
        suite=Suite.AES256GCM,
    ).open()
    for _ in range(4):
        await sink.write(os.urandom(BATCH_SIZE))  # the last batch is still being processed
    await sink.abort()
    assert list(store.incoming.glob("*.part")) == []
    assert await store.keys() == []


class _FailingWriter:
    """Accepts the header, then fails: a full disk in the middle of an upload."""

    def __init__(self, inner: StoreWriter) -> None:
        self.inner = inner
        self.key = inner.key
        self.writes = 0

    async def write(self, data: bytes) -> None:
        self.writes += 1
        if self.writes > 2:
            raise OSError(28, "No space left on device")
        await self.inner.write(data)

    async def commit(self) -> int:
        return await self.inner.commit()

    async def abort(self) -> None:
        await self.inner.abort()


class _FailingStore(LocalFileStore):
    async def writer(self, key: str) -> StoreWriter:
        return _FailingWriter(await super().writer(key))


async def test_a_store_failure_in_flight_is_raised_not_lost(tmp_path: Path) -> None:
    store = _FailingStore(tmp_path / "files")
    sink = await EvidenceSink(
        store,
        _targets(1),
        name="a.bin",
        content_type="application/octet-stream",
        suite=Suite.AES256GCM,
    ).open()
    with pytest.raises(OSError, match="No space left"):
        for _ in range(6):
            await sink.write(os.urandom(BATCH_SIZE))
        await sink.close()
    await sink.abort()
    assert list(store.incoming.glob("*.part")) == []
    assert await store.keys() == []


class _SecondCommitFails(LocalFileStore):
    """The second stream's commit fails (its disk gave out): the first is already committed."""

    commits = 0

    async def writer(self, key: str) -> StoreWriter:
        inner = await super().writer(key)
        store = self
        real_commit = inner.commit

        async def commit() -> int:
            store.commits += 1
            if store.commits == 2:
                raise OSError(5, "Input/output error")
            return await real_commit()

        inner.commit = commit  # type: ignore[method-assign]
        return inner


async def test_a_failed_close_removes_the_copies_already_committed(tmp_path: Path) -> None:
    store = _SecondCommitFails(tmp_path / "files")
    sink = await EvidenceSink(
        store,
        _targets(2),
        name="a.bin",
        content_type="application/octet-stream",
        suite=Suite.AES256GCM,
    ).open()
    await sink.write(os.urandom(BATCH_SIZE + 10))
    with pytest.raises(OSError, match="Input/output"):
        await sink.close()
    await sink.abort()
    assert store.commits == 2
    assert await store.keys() == []  # the first case's copy is gone too
    assert list(store.incoming.glob("*.part")) == []
