"""Evidence files: encrypted as they arrive, one ciphertext stream per target case.

A file uploaded for a 举报+投诉 submission is written once per linked case (each case has its
own key). JPEG and PNG get a metadata-stripped working copy on the fly; PDF and Office files
get theirs after the upload, in memory (`make_document_working_copies`). Originals are kept
sealed; the SHA-256 of the original is recorded inside the encrypted trailer, and the working
copy's header names the original's hash.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Literal

import anyio.to_thread

from crypto.envelope import field_aad
from crypto.stream import FileHeader, StreamDecryptor, StreamEncryptor
from crypto.suites import Suite
from portal.case import metadata
from portal.kernel.db.models import new_id
from portal.kernel.storage import FileStore, StoreWriter, new_storage_key


@dataclass(frozen=True)
class Target:
    case_id: str
    case_key: bytes


@dataclass(frozen=True)
class StoredFile:
    case_id: str
    file_id: str
    storage_key: str
    kind: str  # original | working | redacted
    original_id: str | None
    size: int
    sha256: str


# plaintext bytes gathered before one worker-thread hop encrypts them (constant memory)
BATCH_SIZE = 1024 * 1024


def file_aad(case_id: str, file_id: str) -> bytes:
    return field_aad(case_id, f"file:{file_id}")


class _Stream:
    def __init__(
        self,
        store: FileStore,
        target: Target,
        header: FileHeader,
        suite: Suite,
        kind: str,
        original_id: str | None,
    ) -> None:
        self.store = store
        self.target = target
        self.file_id = new_id()
        self.storage_key = new_storage_key()
        self.kind = kind
        self.original_id = original_id
        self.enc = StreamEncryptor(
            target.case_key, file_aad(target.case_id, self.file_id), header, suite=suite
        )
        self.writer: StoreWriter | None = None

    async def open(self) -> None:
        self.writer = await self.store.writer(self.storage_key)
        await self.writer.write(self.enc.start())

    async def write(self, data: bytes) -> None:
        assert self.writer is not None
        out = self.enc.update(data)
        if out:
            await self.writer.write(out)

    async def close(self) -> StoredFile:
        assert self.writer is not None
        last, trailer = self.enc.finalize()
        await self.writer.write(last)
        await self.writer.commit()
        return StoredFile(
            case_id=self.target.case_id,
            file_id=self.file_id,
            storage_key=self.storage_key,
            kind=self.kind,
            original_id=self.original_id,
            size=trailer.size,
            sha256=trailer.sha256,
        )

    async def abort(self) -> None:
        if self.writer is not None:
            await self.writer.abort()


class EvidenceSink:
    """Receives one uploaded file's plaintext chunks; writes only ciphertext."""

    def __init__(
        self,
        store: FileStore,
        targets: list[Target],
        *,
        name: str,
        content_type: str,
        suite: Suite,
        uploaded_by: str = "reporter",
    ) -> None:
        self.store = store
        self.uploaded_by = uploaded_by
        header = FileHeader(name=name, content_type=content_type, extra={})
        self.originals = [_Stream(store, t, header, suite, "original", None) for t in targets]
        kind = metadata.working_copy_kind(content_type, name)
        self.stripper: metadata.StreamingStripper | None = None
        self.working: list[_Stream] = []
        self.doc_kind = kind if kind in ("pdf", "ooxml") else None
        if kind in ("jpeg", "png"):
            self.stripper = metadata.StreamingStripper(kind)
            wheader = FileHeader(
                name=name, content_type=content_type, extra={"working_copy_of": "original"}
            )
            self.working = [
                _Stream(store, t, wheader, suite, "working", o.file_id)
                for t, o in zip(targets, self.originals, strict=True)
            ]
        self.name = name
        self.content_type = content_type
        self.suite = suite
        self._buf = bytearray()
        # the batch being encrypted and written while the next one is read from the network
        self._inflight: asyncio.Task[None] | None = None

    async def open(self) -> EvidenceSink:
        for s in (*self.originals, *self.working):
            await s.open()
        return self

    async def write(self, data: bytes) -> None:
        """Collect network chunks into batches; each batch is hashed, stripped, encrypted and
        written while the next one is read from the network (a two-stage pipeline: at most
        one batch in flight, so memory stays at two batches and the order is kept). AES-GCM
        and SHA-256 release the GIL in the worker thread; the event loop only parses."""
        self._buf += data
        if len(self._buf) >= BATCH_SIZE:
            await self._flush()

    def _encrypt_batch(self, data: bytes) -> list[tuple[_Stream, bytes]]:
        """Runs in a worker thread: plaintext in, ciphertext per stream out."""
        outs = [(s, s.enc.update(data)) for s in self.originals]
        if self.stripper is not None:
            cleaned = self.stripper.update(data)
            if not self.stripper.failed:
                outs += [(s, s.enc.update(cleaned)) for s in self.working]
        return outs

    async def _process(self, data: bytes) -> None:
        outs = await anyio.to_thread.run_sync(self._encrypt_batch, data)
        for stream, out in outs:
            if out and stream.writer is not None:
                await stream.writer.write(out)
        if self.stripper is not None and self.stripper.failed:
            await self._drop_working()

    async def _settle(self) -> None:
        """Wait for the batch in flight; its error, if any, is raised here."""
        task, self._inflight = self._inflight, None
        if task is not None:
            await task

    async def _flush(self) -> None:
        if not self._buf:
            return
        data = bytes(self._buf)
        self._buf.clear()
        await self._settle()
        self._inflight = asyncio.ensure_future(self._process(data))

    async def _drop_working(self) -> None:
        for s in self.working:
            await s.abort()
        self.working = []
        self.stripper = None

    async def close(self) -> list[StoredFile]:
        await self._flush()
        await self._settle()
        stored = [await s.close() for s in self.originals]
        if self.stripper is not None:
            try:
                tail = self.stripper.finalize()
            except metadata.MetadataError:
                await self._drop_working()
            else:
                for s in self.working:
                    await s.write(tail)
                stored += [await s.close() for s in self.working]
        return stored

    async def abort(self) -> None:
        self._buf.clear()
        task, self._inflight = self._inflight, None
        if task is not None:
            with contextlib.suppress(Exception):
                await task  # let the worker finish before its files are removed
        for s in (*self.originals, *self.working):
            await s.abort()


async def read_plaintext(
    store: FileStore, case_id: str, file_id: str, storage_key: str, case_key: bytes
) -> AsyncIterator[bytes]:
    """Decrypt a stored file chunk by chunk; raises if it was tampered with or truncated."""
    dec = StreamDecryptor(case_key, file_aad(case_id, file_id))
    async for chunk in store.read(storage_key):
        out = dec.update(chunk)
        if out:
            yield out
    dec.finalize()


async def read_header(
    store: FileStore, case_id: str, file_id: str, storage_key: str, case_key: bytes
) -> FileHeader:
    dec = StreamDecryptor(case_key, file_aad(case_id, file_id))
    async for chunk in store.read(storage_key):
        dec.update(chunk)
        try:
            return dec.header
        except Exception:  # noqa: BLE001,S112 - header not complete yet: read more
            continue
    return dec.header


async def make_document_working_copy(
    store: FileStore,
    original: StoredFile,
    case_key: bytes,
    name: str,
    content_type: str,
    kind: Literal["pdf", "ooxml"],
    suite: Suite,
) -> StoredFile | None:
    """PDF/Office: decrypt to memory, strip, encrypt the working copy. None if not possible."""
    if original.size > metadata.MAX_IN_MEMORY_DOCUMENT:
        return None
    buf = bytearray()
    async for chunk in read_plaintext(
        store, original.case_id, original.file_id, original.storage_key, case_key
    ):
        buf.extend(chunk)
    try:
        cleaned = await anyio.to_thread.run_sync(metadata.strip_document, kind, bytes(buf))
    except metadata.MetadataError:
        return None
    finally:
        buf[:] = b"\x00" * len(buf)
    header = FileHeader(name=name, content_type=content_type, extra={"working_copy_of": "original"})
    stream = _Stream(
        store, Target(original.case_id, case_key), header, suite, "working", original.file_id
    )
    await stream.open()
    try:
        await stream.write(cleaned)
        return await stream.close()
    except BaseException:
        await stream.abort()
        raise
