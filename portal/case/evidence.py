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
import mmap
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

import anyio.to_thread

from crypto.envelope import field_aad
from crypto.stream import CHUNK_SIZE, FileHeader, StreamDecryptor, StreamEncryptor
from crypto.suites import Suite
from portal.case import metadata
from portal.kernel.db.models import new_id
from portal.kernel.direct_io import BufferPool
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


# plaintext bytes gathered before one hop to the worker threads (constant memory): whole
# chunks of the stream format, so a batch seals into whole records
BATCH_SIZE = 4 * CHUNK_SIZE
# batches being hashed, encrypted or written while the next one is read from the network
MAX_IN_FLIGHT = 2

Data = bytes | bytearray | memoryview
# the contiguous plaintext of the batches in flight, reused (see `_seal_in_place`)
_plaintext = BufferPool(BATCH_SIZE)


@runtime_checkable
class _InPlaceWriter(Protocol):
    """A store writer that a worker thread may fill in place (the local store's)."""

    def reserve(self, n: int) -> memoryview: ...
    def advance(self, n: int) -> None: ...
    def write_blocking(self, data: bytes | memoryview) -> None: ...


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
        self._batch: mmap.mmap | None = None  # the batch being filled (from `_plaintext`)
        self._pending = 0
        # the batches being hashed, encrypted and written, oldest first
        self._inflight: collections.deque[asyncio.Future[None]] = collections.deque()
        self._pools: tuple[ThreadPoolExecutor, ThreadPoolExecutor] | None = None
        self._in_place = False  # set by open(): the store is written in place from a thread

    async def open(self) -> EvidenceSink:
        for s in (*self.originals, *self.working):
            await s.open()
        self._in_place = all(
            isinstance(s.writer, _InPlaceWriter) for s in (*self.originals, *self.working)
        )
        return self

    async def write(self, data: Data) -> None:
        """Copy the network chunk into the current batch buffer (the only copy of a plaintext
        byte: the chunk itself is released at once, so the server's allocator reuses warm
        memory) and hand each full batch of ``BATCH_SIZE`` bytes to the worker threads; up to
        ``MAX_IN_FLIGHT`` batches are being processed while the event loop reads the next one
        from the network (see `_seal_in_place` and `_seal_batch` for what the threads do)."""
        view = memoryview(data)
        pos, end = 0, len(view)
        while pos < end:
            if self._batch is None:
                self._batch = _plaintext.take()
            take = min(BATCH_SIZE - self._pending, end - pos)
            self._batch[self._pending : self._pending + take] = view[pos : pos + take]
            self._pending += take
            pos += take
            if self._pending == BATCH_SIZE:
                await self._flush()

    # -- stores written from a worker thread (the local store): the lean path ----------------

    def _seal_in_place(self, batch: memoryview) -> None:
        """Seal thread, for a store written from worker threads: hand the batch to the hash
        thread (one SHA-256 update per original, GIL released) and meanwhile encrypt each
        whole chunk with AES-GCM straight into the store's staging buffer, which the store
        writes out past the page cache. A partial chunk (the file's last) goes through the
        encryptor's own buffer. Returns when both threads are done with the batch."""
        hashed = self._executors()[0].submit(self._hash_batch, batch)
        try:
            n = len(batch)
            whole = n - n % CHUNK_SIZE
            for s in self.originals:
                writer = s.writer
                assert isinstance(writer, _InPlaceWriter)
                size = s.enc.record_size
                for pos in range(0, whole, CHUNK_SIZE):
                    s.enc.seal_chunk_into(batch[pos : pos + CHUNK_SIZE], writer.reserve(size))
                    writer.advance(size)
                if whole < n:
                    for piece in s.enc.seal_parts(batch[whole:]):
                        writer.write_blocking(piece)
            for stream, pieces in self._strip_batch(batch):
                for piece in pieces:
                    stream.writer.write_blocking(piece)  # type: ignore[union-attr]
        finally:
            hashed.result()  # the batch is given back only when the hash is done with it

    # -- stores written from the event loop (S3): pieces handed back ----------------------

    def _hash_batch(self, batch: memoryview) -> None:
        """Hash thread: SHA-256 (and size) of the originals' plaintext."""
        for s in self.originals:
            s.enc.absorb(batch)

    def _seal_batch(self, batch: memoryview) -> list[tuple[_Stream, list[bytes]]]:
        """Seal thread, for a store written from the event loop: the originals' records and
        the stripped working copy's, as pieces to write in order."""
        outs = [(s, s.enc.seal_parts(batch)) for s in self.originals]
        return outs + self._strip_batch(batch)

    def _strip_batch(self, batch: memoryview) -> list[tuple[_Stream, list[bytes]]]:
        """The working copies' records (JPEG, PNG: metadata stripped as the bytes pass)."""
        stripper = self.stripper
        if stripper is None or stripper.failed:  # a failed one's copies are dropped
            return []
        cleaned = stripper.update(bytes(batch))  # images only
        if stripper.failed:
            return []
        return [(w, w.enc.update_parts(cleaned)) for w in self.working]

    def _executors(self) -> tuple[ThreadPoolExecutor, ThreadPoolExecutor]:
        if self._pools is None:
            self._pools = (
                ThreadPoolExecutor(1, thread_name_prefix="evidence-hash"),
                ThreadPoolExecutor(1, thread_name_prefix="evidence-seal"),
            )
        return self._pools

    async def _process(self, buf: mmap.mmap, n: int, before: asyncio.Future[None] | None) -> None:
        loop = asyncio.get_running_loop()
        hasher, sealer = self._executors()
        with memoryview(buf) as whole, whole[:n] as batch:
            try:
                if self._in_place:
                    # FIFO executors keep the order; the seal thread writes as it seals
                    await loop.run_in_executor(sealer, self._seal_in_place, batch)
                    outs = []
                else:
                    hashed = loop.run_in_executor(hasher, self._hash_batch, batch)
                    sealed = loop.run_in_executor(sealer, self._seal_batch, batch)
                    try:
                        outs = await sealed
                        await hashed
                    finally:
                        # never leave a worker running on this batch while the caller aborts
                        await asyncio.gather(hashed, sealed, return_exceptions=True)
            finally:
                batch.release()
                whole.release()
                _plaintext.give(buf)
        if outs:
            if before is not None:
                await before  # the batch before this one is written first (its error raised)
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
        if self._batch is None:
            return
        buf, n, self._batch, self._pending = self._batch, self._pending, None, 0
        if not n:
            _plaintext.give(buf)
            return
        await self._settle(keep=MAX_IN_FLIGHT - 1)
        before = self._inflight[-1] if self._inflight else None
        self._inflight.append(asyncio.ensure_future(self._process(buf, n, before)))

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
        stored: list[StoredFile] = []
        try:
            for s in self.originals:
                stored.append(await s.close())
            if self.stripper is not None:
                try:
                    tail = self.stripper.finalize()
                except metadata.MetadataError:
                    await self._drop_working()
                else:
                    for s in self.working:
                        await s.write(tail)
                    for s in self.working:
                        stored.append(await s.close())
        except BaseException:
            # a copy failed (or the request was cancelled) after others were committed: the
            # caller never learns of those, so they go here (abort() drops the rest)
            for f in stored:
                await self.store.delete(f.storage_key)
            raise
        return stored

    async def abort(self) -> None:
        if self._batch is not None:
            buf, self._batch, self._pending = self._batch, None, 0
            _plaintext.give(buf)
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
