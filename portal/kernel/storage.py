"""The file store: holds ciphertext streams only, under random keys (never a file name).

`LocalFileStore` is the embedded default. A write goes to `incoming/KEY.part` and becomes
visible under `objects/` only on `commit()` (fsync + atomic rename + fsync of the folder that
received it, so the rename itself survives a power cut), so an interrupted upload leaves at
most a `.part` file, which `cleanup_incoming()` removes at start-up. Objects are created 0600
and folders 0700, whatever the process umask.
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Protocol

import anyio
import anyio.to_thread

from portal.kernel.direct_io import SequentialFile

READ_SIZE = 1024 * 1024


class StoreError(Exception):
    pass


def new_storage_key() -> str:
    return secrets.token_hex(20)


def fsync_dir(directory: Path) -> None:
    """Make a rename into (or an entry created in) ``directory`` durable."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _private_dir(directory: Path) -> bool:
    """Create ``directory`` 0700 if missing; True when it was created."""
    try:
        directory.mkdir(mode=0o700)
    except FileExistsError:
        return False
    os.chmod(directory, 0o700)  # mkdir's mode is masked by the umask
    return True


def _check_key(key: str) -> str:
    if not (len(key) == 40 and all(c in "0123456789abcdef" for c in key)):
        raise StoreError("invalid storage key")
    return key


class StoreWriter(Protocol):
    key: str

    async def write(self, data: bytes) -> None: ...
    async def commit(self) -> int: ...
    async def abort(self) -> None: ...


class FileStore(Protocol):
    async def writer(self, key: str) -> StoreWriter: ...
    def read(self, key: str) -> AsyncIterator[bytes]: ...
    async def delete(self, key: str) -> None: ...
    async def exists(self, key: str) -> bool: ...
    async def keys(self) -> list[str]: ...
    async def settled_keys(self, min_age_s: float) -> list[str]: ...
    async def cleanup_incoming(self) -> int: ...


# pieces this small (a record's 5-byte head) are staged without a worker-thread hop
_STAGED_INLINE = 64 * 1024


class _LocalWriter:
    """Writes ``incoming/KEY.part`` through a `SequentialFile` (past the page cache where the
    file system allows: see `portal.kernel.direct_io`); ``commit`` makes it ``objects/..``."""

    def __init__(self, key: str, part: Path, final: Path) -> None:
        self.key = key
        self._part = part
        self._final = final
        self._file = SequentialFile(part)
        self._size = 0

    async def write(self, data: bytes) -> None:
        if not data:
            return
        if len(data) <= _STAGED_INLINE and len(data) < self._file.room:
            self._file.write(data)  # a copy into the staging buffer only: no thread hop
        else:
            await anyio.to_thread.run_sync(self._file.write, data)
        self._size += len(data)

    def write_blocking(self, data: bytes | memoryview) -> None:
        """``write`` for a caller already in a worker thread (no second hop)."""
        self._file.write(data)
        self._size += len(data)

    def reserve(self, n: int) -> memoryview:
        """From a worker thread: the next ``n`` bytes to fill in place, then ``advance(n)``
        (see `SequentialFile.reserve`)."""
        return self._file.reserve(n)

    def advance(self, n: int) -> None:
        self._file.advance(n)
        self._size += n

    async def commit(self) -> int:
        def finish() -> None:
            try:
                self._file.finish()
            finally:
                self._file.close()
            shard = self._final.parent
            if _private_dir(shard):
                fsync_dir(shard.parent)
            os.replace(self._part, self._final)
            fsync_dir(shard)

        await anyio.to_thread.run_sync(finish)
        return self._size

    async def abort(self) -> None:
        def drop() -> None:
            try:
                self._file.close()
            finally:
                self._part.unlink(missing_ok=True)

        await anyio.to_thread.run_sync(drop)


class LocalFileStore:
    """``stale_after_s``: how long a ``.part`` file must have gone unwritten before
    ``cleanup_incoming`` removes it (0: all of them, for one serving process; more when other
    instances share the directory and may be uploading right now)."""

    def __init__(self, root: Path, *, stale_after_s: float = 0.0) -> None:
        self.root = root
        self.incoming = root / "incoming"
        self.objects = root / "objects"
        self.stale_after_s = stale_after_s

    def ensure(self) -> None:
        for d in (self.root, self.incoming, self.objects):
            d.mkdir(mode=0o700, parents=True, exist_ok=True)
            os.chmod(d, 0o700)

    def _path(self, key: str) -> Path:
        key = _check_key(key)
        return self.objects / key[:2] / key

    async def writer(self, key: str) -> StoreWriter:
        key = _check_key(key)
        self.ensure()
        return _LocalWriter(key, self.incoming / f"{key}.part", self._path(key))

    async def read(self, key: str) -> AsyncIterator[bytes]:
        path = self._path(key)
        try:
            fh = await anyio.open_file(path, "rb")
        except FileNotFoundError:
            raise StoreError("no such object") from None
        async with fh:
            while True:
                chunk = await fh.read(READ_SIZE)
                if not chunk:
                    return
                yield chunk

    async def delete(self, key: str) -> None:
        path = self._path(key)
        await anyio.to_thread.run_sync(lambda: path.unlink(missing_ok=True))

    async def exists(self, key: str) -> bool:
        return self._path(key).exists()

    async def keys(self) -> list[str]:
        if not self.objects.exists():
            return []
        return sorted(p.name for p in self.objects.glob("*/*") if p.is_file())

    async def settled_keys(self, min_age_s: float) -> list[str]:
        """Keys of the objects committed at least ``min_age_s`` seconds ago."""
        if not self.objects.exists():
            return []
        cutoff = time.time() - min_age_s
        out = []
        for p in self.objects.glob("*/*"):
            try:
                info = p.stat()
            except FileNotFoundError:
                continue  # deleted meanwhile
            if p.is_file() and info.st_mtime <= cutoff:
                out.append(p.name)
        return sorted(out)

    async def cleanup_incoming(self) -> int:
        """Remove partial uploads left by a crash; returns how many were removed."""
        if not self.incoming.exists():
            return 0
        cutoff = time.time() - self.stale_after_s
        removed = 0
        for part in self.incoming.glob("*.part"):
            try:
                if self.stale_after_s and part.stat().st_mtime > cutoff:
                    continue  # still being written, perhaps by another instance
            except FileNotFoundError:
                continue
            part.unlink(missing_ok=True)
            removed += 1
        return removed
