"""Evidence files: encrypted as they arrive, one ciphertext stream per target case.

A file uploaded for a 举报+投诉 submission is written once per linked case (each case has its
own key). JPEG and PNG get a metadata-stripped working copy on the fly; PDF and Office files
get theirs after the upload, in memory (`make_document_working_copies`). Originals are kept
sealed; the SHA-256 of the original is recorded inside the encrypted trailer, and the working
copy's header names the original's hash.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
from collections.abc import AsyncIterator
from concurrent.futures import Future, ThreadPoolExecutor
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


# plaintext bytes gathered before one hop to the worker threads (constant memory)
BATCH_SIZE = 4 * 1024 * 1024
# batches being hashed, encrypted or written while the next one is read from the network
MAX_IN_FLIGHT = 2

Data = bytes | bytearray | memoryview


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
        self._chunks: list[Data] = []
        self._pending = 0
        # the batches being hashed, encrypted and written, oldest first
        self._inflight: collections.deque[asyncio.Future[None]] = collections.deque()
        self._pools: tuple[ThreadPoolExecutor, ThreadPoolExecutor, ThreadPoolExecutor] | None = None
        self._blocking_writes = False  # set by open(): the store writes from worker threads

    async def open(self) -> EvidenceSink:
        for s in (*self.originals, *self.working):
            await s.open()
        self._blocking_writes = all(
            hasattr(s.writer, "write_blocking") for s in (*self.originals, *self.working)
        )
        return self

    async def write(self, data: Data) -> None:
        """Collect network chunks (kept as they are: no copy) into batches of ``BATCH_SIZE``.
        Each batch is hashed in one worker thread while it is stripped and encrypted in another
        (SHA-256 and AES-GCM release the GIL, so they run at once on two cores), then written
        by a third while the next batch is sealed (local store); up to ``MAX_IN_FLIGHT``
        batches are in that pipeline while the event loop reads the next one from the network.
        The only copy of a plaintext byte is the encryptor's, into its record buffer. Order is
        kept by single-thread executors (FIFO) and, for a store written from the event loop,
        by each batch writing only after the one before it."""
        self._chunks.append(data)
        self._pending += len(data)
        if self._pending >= BATCH_SIZE:
            await self._flush()

    def _hash_batch(self, chunks: list[Data]) -> None:
        """Worker thread 1: SHA-256 (and size) of the originals' plaintext."""
        for chunk in chunks:
            for s in self.originals:
                s.enc.absorb(chunk)

    def _seal_batch(
        self, chunks: list[Data]
    ) -> tuple[list[tuple[_Stream, list[bytes]]], Future[None] | None]:
        """Worker thread 2: the originals' records, and the stripped working copy's. Where
        the store can write from a worker thread (the local store), they are handed from here
        to worker thread 3, which writes them while this one seals the next batch: handed in
        the order sealed (each executor runs one batch at a time, FIFO), so written in order."""
        outs: list[tuple[_Stream, list[bytes]]] = []
        for s in self.originals:
            pieces: list[bytes] = []
            for chunk in chunks:
                pieces += s.enc.seal_parts(chunk)
            outs.append((s, pieces))
        stripper = self.stripper
        if stripper is not None and not stripper.failed:  # a failed one's copies are dropped
            for chunk in chunks:
                cleaned = stripper.update(bytes(chunk))  # images only
                if stripper.failed:
                    break
                for w in self.working:
                    outs.append((w, w.enc.update_parts(cleaned)))
        if not self._blocking_writes:
            return outs, None
        return [], self._executors()[2].submit(self._write_batch, outs)

    @staticmethod
    def _write_batch(outs: list[tuple[_Stream, list[bytes]]]) -> None:
        """Worker thread 3 (local store): one batch's ciphertext, in order."""
        for stream, pieces in outs:
            write = getattr(stream.writer, "write_blocking", None)
            assert write is not None
            for piece in pieces:
                write(piece)

    def _executors(self) -> tuple[ThreadPoolExecutor, ThreadPoolExecutor, ThreadPoolExecutor]:
        if self._pools is None:
            self._pools = (
                ThreadPoolExecutor(1, thread_name_prefix="evidence-hash"),
                ThreadPoolExecutor(1, thread_name_prefix="evidence-seal"),
                ThreadPoolExecutor(1, thread_name_prefix="evidence-write"),
            )
        return self._pools

    async def _process(self, chunks: list[Data], before: asyncio.Future[None] | None) -> None:
        loop = asyncio.get_running_loop()
        hasher, sealer, _writer = self._executors()
        hashed = loop.run_in_executor(hasher, self._hash_batch, chunks)
        sealed = loop.run_in_executor(sealer, self._seal_batch, chunks)
        written: asyncio.Future[None] | None = None
        try:
            outs, handed = await sealed
            if handed is not None:
                written = asyncio.wrap_future(handed)
                await written
            await hashed
        finally:
            # never leave a worker running on this batch while the caller aborts
            await asyncio.gather(
                hashed, sealed, *([written] if written else []), return_exceptions=True
            )
        if before is not None:
            await before  # the batch before this one is written first (its error is raised)
        for stream, pieces in outs:
            if stream.writer is not None:
                for piece in pieces:
                    await stream.writer.write(piece)
        if self.stripper is not None and self.stripper.failed:
            await self._drop_working()

    async def _settle(self, keep: int = 0) -> None:
        """Wait until at most ``keep`` batches are in flight; an error of one is raised here."""
        while len(self._inflight) > keep:
            await self._inflight.popleft()

    async def _flush(self) -> None:
        if not self._chunks:
            return
        chunks, self._chunks, self._pending = self._chunks, [], 0
        await self._settle(keep=MAX_IN_FLIGHT - 1)
        before = self._inflight[-1] if self._inflight else None
        self._inflight.append(asyncio.ensure_future(self._process(chunks, before)))

    def _shutdown(self) -> None:
        pools, self._pools = self._pools, None
        for pool in pools or ():
            pool.shutdown(wait=False)

    async def _drop_working(self) -> None:
        for s in self.working:
            await s.abort()
        self.working = []
        self.stripper = None

    async def close(self) -> list[StoredFile]:
        try:
            await self._flush()
            await self._settle()
        finally:
            self._shutdown()
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
        self._chunks.clear()
        while self._inflight:
            with contextlib.suppress(Exception):
                await self._inflight.popleft()  # let the workers finish before files go
        self._shutdown()
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
