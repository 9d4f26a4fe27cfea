"""Chunked streaming AEAD for evidence files (requirement C2, R11).

Design: the STREAM construction (Hoang, Reyhanitabar, Rogaway, Vizár 2015) as used by age's
payload. Every file gets a fresh random 32-byte *file key*, wrapped with the caller's
wrapping key (the case key) under the caller's ``aad``. Records are sealed with a key derived
from the file key and a random 16-byte stream id; the nonce of record ``i`` is
``u88be(i) || final_flag``. Hence records cannot be reordered, dropped, duplicated, moved
between files (even files of the same case), truncated or extended without detection.

Layout (version 1), integers big-endian::

    prologue
      0    1    magic b"S"
      1    1    format version (1)
      2    1    suite id (1 = AES-256-GCM, 2 = SM4-GCM)
      3    4    chunk size C (plaintext bytes per full data record; 1 .. 16 MiB)
      7    16   stream id (random)
      23   12   nonce of the wrapped file key (random)
      35   48   wrapped file key: AEAD_wrapping_key(file key) = 32 bytes + 16-byte tag
               aad = prologue[0:23] || caller aad
      83   4    H = length of the sealed header (16 + 2 .. 64 KiB)
      87   H    sealed header: AEAD_header_key(JSON of FileHeader), nonce = 12 zero bytes
               (the header key is used once), aad = prologue[0:87] || caller aad
    records, repeated
      0    1    flag: 0 = data record, 1 = final record
      1    4    L = sealed length (plaintext length + 16)
      5    L    AEAD_payload_key(plaintext), nonce = u88be(index) || flag,
               aad = record[0:5] || stream id || caller aad
    Data records hold 1 .. C plaintext bytes; all but the last hold exactly C bytes.
    The final record (exactly one, last) holds the 40-byte trailer: u64be size || SHA-256.

    header_key || payload_key = HKDF(file key, salt = stream id,
                                     info = "whistle-portal/v1/stream-keys", 64 bytes)
    (HKDF-SHA256; HKDF-SM3 for the 国密 suite)

The record flag and length are sent in clear so a push-style decryptor can release every
authenticated record at once, without waiting for the end of the stream; both are
authenticated (nonce and aad), so changing them only makes authentication fail.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Iterator
from dataclasses import dataclass, field

from crypto._wire import MAGIC_STREAM, check_aad, check_key, suite_kdf
from crypto.errors import DecryptionError, NeedMoreDataError, TruncatedStreamError
from crypto.suites import NONCE_SIZE, TAG_SIZE, Aead, Suite, aead_for, suite_by_id

__all__ = [
    "CHUNK_SIZE",
    "MAX_CHUNK_SIZE",
    "MAX_HEADER_SIZE",
    "READ_HEADER_MAX",
    "STREAM_VERSION",
    "FileHeader",
    "FileTrailer",
    "StreamDecryptor",
    "StreamEncryptor",
    "adecrypt_iter",
    "aencrypt_iter",
    "decrypt_iter",
    "encrypt_iter",
    "read_header",
]

#: Plaintext bytes per data record: 1 MiB. Large enough that the per-record cost (a Python
#: call, a 5-byte header, a 16-byte tag, one nonce) is negligible next to AES-GCM over the
#: record (measured: AES-GCM runs at ~8 GB/s here, so 64 KiB records would spend a visible
#: share of time in per-call overhead); small enough that decryption memory stays at a few
#: MiB and a truncated or corrupted file loses at most 1 MiB of verified output.
#: Written into each stream's prologue, so it can change without breaking old files.
CHUNK_SIZE = 1 << 20
MAX_CHUNK_SIZE = 16 << 20
STREAM_VERSION = 1
#: Maximum size of the sealed header (JSON + tag).
MAX_HEADER_SIZE = 64 * 1024

_FIXED = struct.Struct(">cBBI16s12s48sI")  # prologue up to the sealed header: 87 bytes
_RECORD = struct.Struct(">BI")
_TRAILER = struct.Struct(">Q32s")
_FLAG_DATA = 0
_FLAG_FINAL = 1
_KEYS_INFO = b"whistle-portal/v1/stream-keys"
_HEADER_NONCE = bytes(NONCE_SIZE)
_FINAL_SEALED_LEN = _TRAILER.size + TAG_SIZE
_MAX_COUNTER = 1 << 88

#: ``read_header`` never needs more than this many bytes from the start of a stream.
READ_HEADER_MAX = _FIXED.size + MAX_HEADER_SIZE


@dataclass(frozen=True)
class FileHeader:
    """Metadata sealed at the start of a file stream (never stored in clear)."""

    name: str
    content_type: str
    extra: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not isinstance(self.content_type, str):
            raise TypeError("FileHeader name and content_type must be str")
        if not isinstance(self.extra, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in self.extra.items()
        ):
            raise TypeError("FileHeader extra must be a dict[str, str]")

    def to_bytes(self) -> bytes:
        doc = {"name": self.name, "content_type": self.content_type, "extra": self.extra}
        return json.dumps(doc, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode(
            "utf-8"
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> FileHeader:
        try:
            doc = json.loads(data.decode("utf-8"))
            if not isinstance(doc, dict) or set(doc) != {"name", "content_type", "extra"}:
                raise ValueError("unexpected header fields")
            return cls(name=doc["name"], content_type=doc["content_type"], extra=doc["extra"])
        except (ValueError, TypeError) as exc:
            raise DecryptionError("malformed file header") from exc


@dataclass(frozen=True)
class FileTrailer:
    """Size and SHA-256 (hex) of the plaintext, sealed in the final record."""

    size: int
    sha256: str


def _derive_stream_keys(suite: Suite, file_key: bytes, stream_id: bytes) -> tuple[Aead, Aead]:
    keys = suite_kdf(suite, file_key, salt=stream_id, info=_KEYS_INFO, length=64)
    return aead_for(suite, keys[:32]), aead_for(suite, keys[32:])


def _record_nonce(counter: int, flag: int) -> bytes:
    if counter >= _MAX_COUNTER:
        raise OverflowError("stream too long")
    return counter.to_bytes(11, "big") + bytes((flag,))


class StreamEncryptor:
    """Push-style encryptor: ``start()``, then ``update()`` any number of times, ``finalize()``.

    Memory use is bounded by one chunk. Not thread-safe.
    """

    def __init__(
        self,
        wrapping_key: bytes,
        aad: bytes,
        header: FileHeader,
        *,
        suite: Suite = Suite.AES256GCM,
    ) -> None:
        wrapping_key = check_key(wrapping_key, "wrapping_key")
        aad = check_aad(aad)
        if not isinstance(header, FileHeader):
            raise TypeError("header must be a FileHeader")
        chunk_size = CHUNK_SIZE
        if not 1 <= chunk_size <= MAX_CHUNK_SIZE:
            raise ValueError("CHUNK_SIZE out of range")
        self._chunk_size = chunk_size
        file_key = os.urandom(32)
        stream_id = os.urandom(16)
        header_aead, self._payload = _derive_stream_keys(suite, file_key, stream_id)

        fixed_start = struct.pack(
            ">cBBI16s", MAGIC_STREAM, STREAM_VERSION, suite.value, chunk_size, stream_id
        )
        wrap_nonce = os.urandom(NONCE_SIZE)
        wrapped = aead_for(suite, wrapping_key).encrypt(wrap_nonce, file_key, fixed_start + aad)
        header_plain = header.to_bytes()
        sealed_len = len(header_plain) + TAG_SIZE
        if sealed_len > MAX_HEADER_SIZE:
            raise ValueError("file header too large")
        fixed = fixed_start + wrap_nonce + wrapped + struct.pack(">I", sealed_len)
        assert len(fixed) == _FIXED.size
        sealed_header = header_aead.encrypt(_HEADER_NONCE, header_plain, fixed + aad)
        self._prologue: bytes | None = fixed + sealed_header
        self._aad_tail = stream_id + aad
        self._counter = 0
        self._buf_view = memoryview(bytearray(chunk_size))
        self._fill = 0
        self._sha256 = hashlib.sha256()
        self._size = 0
        self._started = False
        self._finished = False

    def start(self) -> bytes:
        """The stream prologue; call exactly once, before ``update``."""
        if self._started or self._prologue is None:
            raise RuntimeError("start() already called")
        self._started = True
        prologue, self._prologue = self._prologue, None
        return prologue

    def _check_open(self) -> None:
        if not self._started:
            raise RuntimeError("call start() first")
        if self._finished:
            raise RuntimeError("stream already finalized")

    def _record(self, flag: int, plaintext: bytes | memoryview, out: list[bytes]) -> None:
        head = _RECORD.pack(flag, len(plaintext) + TAG_SIZE)
        nonce = _record_nonce(self._counter, flag)
        sealed = self._payload.encrypt(nonce, plaintext, head + self._aad_tail)
        self._counter += 1
        out.append(head)
        out.append(sealed)

    def update(self, data: bytes | bytearray | memoryview) -> bytes:
        """Buffer ``data``; return the records of every chunk completed so far (maybe b"")."""
        return b"".join(self.update_parts(data))

    def update_parts(self, data: bytes | bytearray | memoryview) -> list[bytes]:
        """Like :meth:`update`, but the output as a list of pieces to write in order.

        Avoids copying each record once more to join it with its 5-byte header (about 20 %
        faster on large inputs); used by :func:`encrypt_iter` and :func:`aencrypt_iter`.
        """
        self.absorb(data)
        return self.seal_parts(data)

    def absorb(self, data: bytes | bytearray | memoryview) -> None:
        """The hashing half of :meth:`update_parts`: SHA-256 and size of the plaintext.

        ``absorb`` and :meth:`seal_parts` touch disjoint state, so one thread may hash while
        another encrypts the same data (both release the GIL); each must see every byte
        once, in order, and both must be done before :meth:`finalize`."""
        self._check_open()
        with memoryview(data) as raw, raw.cast("B") as view:
            self._sha256.update(view)
            self._size += len(view)

    def seal_parts(self, data: bytes | bytearray | memoryview) -> list[bytes]:
        """The encrypting half of :meth:`update_parts` (see :meth:`absorb`): the records
        completed so far, as pieces to write in order."""
        self._check_open()
        with memoryview(data) as raw, raw.cast("B") as view:
            return self._seal_chunks(view)

    @property
    def record_size(self) -> int:
        """Bytes of one full data record (head, ciphertext, tag): what ``seal_chunk_into``
        writes."""
        return _RECORD.size + self._chunk_size + TAG_SIZE

    def seal_chunk_into(self, chunk: bytes | bytearray | memoryview, out: memoryview) -> None:
        """The encrypting half for a caller that gathers whole chunks itself: seal exactly
        one chunk (``len(chunk)`` is the chunk size) as one data record written straight into
        ``out`` (``record_size`` bytes), with no copy and no allocation. Only between whole
        chunks: nothing may be buffered by ``seal_parts`` before it. The hashing half is
        ``absorb``, over the same bytes."""
        self._check_open()
        size = self._chunk_size
        if self._fill:
            raise RuntimeError("seal_chunk_into after a partial chunk")
        with memoryview(chunk) as raw, raw.cast("B") as view, memoryview(out) as dest:
            if len(view) != size or len(dest) != _RECORD.size + size + TAG_SIZE:
                raise ValueError("one whole chunk, into exactly record_size bytes")
            _RECORD.pack_into(dest, 0, _FLAG_DATA, size + TAG_SIZE)
            nonce = _record_nonce(self._counter, _FLAG_DATA)
            self._payload.encrypt_into(
                nonce, view, bytes(dest[: _RECORD.size]) + self._aad_tail, dest[_RECORD.size :]
            )
            self._counter += 1

    def _seal_chunks(self, view: memoryview) -> list[bytes]:
        size = self._chunk_size
        out: list[bytes] = []
        pos, end = 0, len(view)
        if self._fill:
            take = min(size - self._fill, end)
            self._buf_view[self._fill : self._fill + take] = view[:take]
            self._fill += take
            pos = take
            if self._fill == size:
                self._record(_FLAG_DATA, self._buf_view, out)
                self._fill = 0
        while end - pos >= size:
            self._record(_FLAG_DATA, view[pos : pos + size], out)
            pos += size
        if pos < end:
            self._buf_view[: end - pos] = view[pos:]
            self._fill = end - pos
        return out

    def finalize(self) -> tuple[bytes, FileTrailer]:
        """The last data record (if any) and the final record; and the trailer."""
        self._check_open()
        self._finished = True
        out: list[bytes] = []
        if self._fill:
            self._record(_FLAG_DATA, self._buf_view[: self._fill], out)
            self._fill = 0
        digest = self._sha256.digest()
        self._record(_FLAG_FINAL, _TRAILER.pack(self._size, digest), out)
        return b"".join(out), FileTrailer(size=self._size, sha256=digest.hex())


_S_PROLOGUE, _S_HEADER, _S_RECORD_HEAD, _S_RECORD_BODY, _S_DONE, _S_FAILED = range(6)


class StreamDecryptor:
    """Push-style decryptor. ``update`` returns only authenticated plaintext.

    Plaintext is released record by record: until ``finalize()`` has returned, the output is
    an authentic *prefix* of the file, which may have been truncated. Not thread-safe.
    After any failure the decryptor refuses further use.
    """

    def __init__(self, wrapping_key: bytes, aad: bytes) -> None:
        self._wrapping_key = check_key(wrapping_key, "wrapping_key")
        self._aad = check_aad(aad)
        self._state = _S_PROLOGUE
        self._need = _FIXED.size
        self._buf_view = memoryview(bytearray(0))
        self._fill = 0
        self._fixed = b""
        self._suite = Suite.AES256GCM
        self._chunk_size = 0
        self._header_aead: Aead | None = None
        self._payload: Aead | None = None
        self._aad_tail = b""
        self._header: FileHeader | None = None
        self._trailer: FileTrailer | None = None
        self._counter = 0
        self._size = 0
        self._record_flag = 0
        self._record_head = b""
        self._short_seen = False

    @property
    def has_header(self) -> bool:
        return self._header is not None

    @property
    def header(self) -> FileHeader:
        """The sealed file header; RuntimeError until the prologue has been fed."""
        if self._header is None:
            raise RuntimeError("file header not available yet: feed the stream prologue first")
        return self._header

    def _fail(self, message: str) -> DecryptionError:
        self._state = _S_FAILED
        return DecryptionError(message)

    def update(self, data: bytes | bytearray | memoryview) -> bytes:
        """Feed ciphertext; return the plaintext of every record authenticated so far."""
        if self._state == _S_FAILED:
            raise DecryptionError("stream decryption already failed")
        try:
            with memoryview(data) as raw, raw.cast("B") as view:
                return self._feed(view)
        except DecryptionError:
            self._state = _S_FAILED
            raise

    def _feed(self, view: memoryview) -> bytes:
        out: list[bytes] = []
        pos, end = 0, len(view)
        while pos < end:
            if self._state == _S_DONE:
                raise self._fail("data after the final chunk")
            need = self._need
            if self._fill:
                # Complete the item being assembled in the reusable buffer.
                take = min(need - self._fill, end - pos)
                self._buf_view[self._fill : self._fill + take] = view[pos : pos + take]
                self._fill += take
                pos += take
                if self._fill < need:
                    break
                item = self._buf_view[:need]
                self._fill = 0
            elif end - pos >= need:
                item = view[pos : pos + need]  # whole item present: no copy
                pos += need
            else:
                if len(self._buf_view) < need:
                    self._buf_view = memoryview(bytearray(need))
                self._buf_view[: end - pos] = view[pos:]
                self._fill = end - pos
                break
            plaintext = self._consume(item)
            if plaintext:
                out.append(plaintext)
        if len(out) == 1:
            return out[0]
        return b"".join(out)

    def _consume(self, item: memoryview) -> bytes | None:
        state = self._state
        if state == _S_RECORD_BODY:
            return self._open_record(item)
        if state == _S_RECORD_HEAD:
            flag, sealed_len = _RECORD.unpack(item)
            if flag == _FLAG_DATA:
                if self._short_seen or not TAG_SIZE < sealed_len <= self._chunk_size + TAG_SIZE:
                    raise self._fail("malformed data record")
            elif flag == _FLAG_FINAL:
                if sealed_len != _FINAL_SEALED_LEN:
                    raise self._fail("malformed final record")
            else:
                raise self._fail("malformed record")
            self._record_head = bytes(item)
            self._record_flag = flag
            self._state, self._need = _S_RECORD_BODY, sealed_len
            return None
        if state == _S_PROLOGUE:
            self._parse_fixed(bytes(item))
            return None
        if state == _S_HEADER:
            assert self._header_aead is not None
            plain = self._header_aead.decrypt(_HEADER_NONCE, item, self._fixed + self._aad)
            self._header = FileHeader.from_bytes(plain)
            self._state, self._need = _S_RECORD_HEAD, _RECORD.size
            return None
        raise AssertionError("unreachable")

    def _parse_fixed(self, fixed: bytes) -> None:
        magic, version, suite_id, chunk_size, stream_id, wrap_nonce, wrapped, header_len = (
            _FIXED.unpack(fixed)
        )
        if magic != MAGIC_STREAM or version != STREAM_VERSION:
            raise self._fail("not a file stream of a supported version")
        suite = suite_by_id(suite_id)
        if not 1 <= chunk_size <= MAX_CHUNK_SIZE or not TAG_SIZE < header_len <= MAX_HEADER_SIZE:
            raise self._fail("malformed stream prologue")
        wrap_aad = fixed[: _FIXED.size - NONCE_SIZE - 48 - 4] + self._aad
        file_key = aead_for(suite, self._wrapping_key).decrypt(wrap_nonce, wrapped, wrap_aad)
        self._header_aead, self._payload = _derive_stream_keys(suite, file_key, stream_id)
        self._suite, self._chunk_size, self._fixed = suite, chunk_size, fixed
        self._aad_tail = stream_id + self._aad
        self._state, self._need = _S_HEADER, header_len

    def _open_record(self, sealed: memoryview) -> bytes | None:
        assert self._payload is not None
        flag = self._record_flag
        nonce = _record_nonce(self._counter, flag)
        plaintext = self._payload.decrypt(nonce, sealed, self._record_head + self._aad_tail)
        self._counter += 1
        self._state, self._need = _S_RECORD_HEAD, _RECORD.size
        if flag == _FLAG_DATA:
            if len(plaintext) < self._chunk_size:
                self._short_seen = True
            self._size += len(plaintext)
            return plaintext
        size, digest = _TRAILER.unpack(plaintext)
        if size != self._size:
            raise self._fail("file size does not match its trailer")
        self._trailer = FileTrailer(size=size, sha256=digest.hex())
        self._state = _S_DONE
        return None

    def finalize(self) -> FileTrailer:
        """The trailer. TruncatedStreamError if the final record never came."""
        if self._state == _S_FAILED:
            raise DecryptionError("stream decryption already failed")
        if self._state != _S_DONE or self._trailer is None:
            self._state = _S_FAILED
            raise TruncatedStreamError("file stream is truncated: the final chunk is missing")
        return self._trailer


def read_header(wrapping_key: bytes, aad: bytes, prefix: bytes) -> FileHeader:
    """Authenticate and return the header of a stream from the first bytes of the stream.

    The prologue is ``87 + H`` bytes, never more than :data:`READ_HEADER_MAX` (65,623): pass
    ``min(READ_HEADER_MAX, file size)`` bytes. A shorter prefix raises
    :class:`~crypto.errors.NeedMoreDataError` whose ``needed`` says how many bytes are needed.
    """
    if len(prefix) < _FIXED.size:
        raise NeedMoreDataError(_FIXED.size)
    header_len = _FIXED.unpack_from(prefix)[-1]
    if not TAG_SIZE < header_len <= MAX_HEADER_SIZE:
        raise DecryptionError("malformed stream prologue")
    total = _FIXED.size + header_len
    if len(prefix) < total:
        raise NeedMoreDataError(total)
    decryptor = StreamDecryptor(wrapping_key, aad)
    decryptor.update(memoryview(prefix)[:total])
    return decryptor.header


def encrypt_iter(
    wrapping_key: bytes,
    aad: bytes,
    header: FileHeader,
    chunks: Iterable[bytes],
    *,
    suite: Suite = Suite.AES256GCM,
    on_trailer: Callable[[FileTrailer], None] | None = None,
) -> Iterator[bytes]:
    """Ciphertext of the stream of ``chunks``; ``on_trailer`` receives the trailer at the end."""
    encryptor = StreamEncryptor(wrapping_key, aad, header, suite=suite)
    yield encryptor.start()
    for chunk in chunks:
        yield from encryptor.update_parts(chunk)
    last, trailer = encryptor.finalize()
    if on_trailer is not None:
        on_trailer(trailer)
    yield last


def decrypt_iter(
    wrapping_key: bytes,
    aad: bytes,
    chunks: Iterable[bytes],
    *,
    on_header: Callable[[FileHeader], None] | None = None,
    on_trailer: Callable[[FileTrailer], None] | None = None,
) -> Iterator[bytes]:
    """Authenticated plaintext of a stream; raises (e.g. TruncatedStreamError) at the end
    instead of finishing normally if the stream is incomplete or tampered with."""
    decryptor = StreamDecryptor(wrapping_key, aad)
    header_sent = False
    for chunk in chunks:
        out = decryptor.update(chunk)
        if not header_sent and decryptor.has_header:
            header_sent = True
            if on_header is not None:
                on_header(decryptor.header)
        if out:
            yield out
    trailer = decryptor.finalize()
    if on_trailer is not None:
        on_trailer(trailer)


async def aencrypt_iter(
    wrapping_key: bytes,
    aad: bytes,
    header: FileHeader,
    chunks: AsyncIterable[bytes],
    *,
    suite: Suite = Suite.AES256GCM,
    on_trailer: Callable[[FileTrailer], None] | None = None,
) -> AsyncIterator[bytes]:
    """Async :func:`encrypt_iter`. Runs the cipher inline (about 1 ms per MiB with AES)."""
    encryptor = StreamEncryptor(wrapping_key, aad, header, suite=suite)
    yield encryptor.start()
    async for chunk in chunks:
        for part in encryptor.update_parts(chunk):
            yield part
    last, trailer = encryptor.finalize()
    if on_trailer is not None:
        on_trailer(trailer)
    yield last


async def adecrypt_iter(
    wrapping_key: bytes,
    aad: bytes,
    chunks: AsyncIterable[bytes],
    *,
    on_header: Callable[[FileHeader], None] | None = None,
    on_trailer: Callable[[FileTrailer], None] | None = None,
) -> AsyncIterator[bytes]:
    """Async :func:`decrypt_iter`."""
    decryptor = StreamDecryptor(wrapping_key, aad)
    header_sent = False
    async for chunk in chunks:
        out = decryptor.update(chunk)
        if not header_sent and decryptor.has_header:
            header_sent = True
            if on_header is not None:
                on_header(decryptor.header)
        if out:
            yield out
    trailer = decryptor.finalize()
    if on_trailer is not None:
        on_trailer(trailer)
