from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import AsyncIterator, Iterable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crypto import stream
from crypto.envelope import field_aad
from crypto.errors import DecryptionError, NeedMoreDataError, TruncatedStreamError
from crypto.stream import (
    READ_HEADER_MAX,
    FileHeader,
    FileTrailer,
    StreamDecryptor,
    StreamEncryptor,
    adecrypt_iter,
    aencrypt_iter,
    decrypt_iter,
    encrypt_iter,
    read_header,
)
from crypto.suites import Suite
from tests.crypto.helpers import chunk_size, split_stream

KEY = bytes(range(32))
OTHER_KEY = bytes(range(1, 33))
AAD = field_aad("23050001", "file:7")
HEADER = FileHeader("证据.pdf", "application/pdf", {"original_sha256": "ab" * 32})


def encrypt(
    data: bytes,
    *,
    key: bytes = KEY,
    aad: bytes = AAD,
    suite: Suite = Suite.AES256GCM,
    pieces: Iterable[bytes] | None = None,
) -> bytes:
    return b"".join(
        encrypt_iter(key, aad, HEADER, pieces if pieces is not None else [data], suite=suite)
    )


def decrypt(blob: bytes, *, key: bytes = KEY, aad: bytes = AAD) -> bytes:
    return b"".join(decrypt_iter(key, aad, [blob]))


def cut(data: bytes, sizes: list[int]) -> list[bytes]:
    out, pos = [], 0
    for size in sizes:
        out.append(data[pos : pos + size])
        pos += size
    out.append(data[pos:])
    return out


@given(
    data=st.binary(max_size=200),
    chunk=st.integers(min_value=1, max_value=40),
    enc_cuts=st.lists(st.integers(min_value=0, max_value=50), max_size=8),
    dec_cuts=st.lists(st.integers(min_value=0, max_value=90), max_size=12),
    suite=st.sampled_from(list(Suite)),
)
@settings(max_examples=250, deadline=None)
def test_round_trip_any_chunking(
    data: bytes, chunk: int, enc_cuts: list[int], dec_cuts: list[int], suite: Suite
) -> None:
    with chunk_size(chunk):
        enc = StreamEncryptor(KEY, AAD, HEADER, suite=suite)
        parts = [enc.start()]
        parts += [enc.update(p) for p in cut(data, enc_cuts)]
        last, trailer = enc.finalize()
        blob = b"".join([*parts, last])
    assert trailer == FileTrailer(len(data), hashlib.sha256(data).hexdigest())

    dec = StreamDecryptor(KEY, AAD)
    out = b"".join(dec.update(p) for p in cut(blob, dec_cuts))
    assert dec.finalize() == trailer
    assert out == data
    assert dec.header == HEADER


@pytest.mark.parametrize("n_chunks", [0, 1, 2, 3, 5])
@pytest.mark.parametrize("extra", [0, 1, 15])
def test_sizes_around_chunk_boundaries(small_chunks: int, n_chunks: int, extra: int) -> None:
    data = os.urandom(n_chunks * small_chunks + extra)
    blob = encrypt(data)
    assert decrypt(blob) == data
    _, records = split_stream(blob)
    data_records = (len(data) + small_chunks - 1) // small_chunks
    assert len(records) == data_records + 1
    assert records[-1][0] == 1 and all(r[0] == 0 for r in records[:-1])


def test_update_returns_only_authenticated_bytes(small_chunks: int) -> None:
    data = os.urandom(small_chunks * 3)
    blob = encrypt(data)
    dec = StreamDecryptor(KEY, AAD)
    released = b""
    for i in range(len(blob)):
        released += dec.update(blob[i : i + 1])
        # released output is always a whole number of records
        assert len(released) % small_chunks == 0
    assert released == data
    dec.finalize()


def test_default_chunk_size_round_trip() -> None:
    data = os.urandom(stream.CHUNK_SIZE * 2 + 123)
    pieces = [data[i : i + 100_000] for i in range(0, len(data), 100_000)]
    blob = encrypt(data, pieces=pieces)
    assert (
        b"".join(decrypt_iter(KEY, AAD, [blob[i : i + 65536] for i in range(0, len(blob), 65536)]))
        == data
    )


# --- tampering ----------------------------------------------------------------------------


def _fails(blob: bytes, *, key: bytes = KEY, aad: bytes = AAD) -> type[Exception]:
    dec = StreamDecryptor(key, aad)
    with pytest.raises(DecryptionError) as info:
        dec.update(blob)
        dec.finalize()
    return info.type


@pytest.mark.parametrize("suite", list(Suite))
def test_every_bit_flip_detected(small_chunks: int, suite: Suite) -> None:
    data = os.urandom(small_chunks * 2 + 5)
    blob = encrypt(data, suite=suite)
    for i in range(len(blob)):
        tampered = bytearray(blob)
        tampered[i] ^= 1 << (i % 8)
        dec = StreamDecryptor(KEY, AAD)
        with pytest.raises(DecryptionError):
            dec.update(bytes(tampered))
            dec.finalize()
        # nothing after the tampered byte was released
        dec2 = StreamDecryptor(KEY, AAD)
        released = b""
        try:
            for j in range(0, len(tampered), 7):
                released += dec2.update(bytes(tampered[j : j + 7]))
            dec2.finalize()
        except DecryptionError:
            pass
        assert data.startswith(released)


def test_truncation_at_every_record_boundary(small_chunks: int) -> None:
    blob = encrypt(os.urandom(small_chunks * 4 + 3))
    prologue, records = split_stream(blob)
    for n in range(len(records)):  # keep only the first n records: final one missing
        truncated = prologue + b"".join(records[:n])
        assert _fails(truncated) is TruncatedStreamError
        with pytest.raises(TruncatedStreamError):
            b"".join(decrypt_iter(KEY, AAD, [truncated]))


def test_truncation_at_every_byte(small_chunks: int) -> None:
    blob = encrypt(os.urandom(small_chunks * 2 + 3))
    for n in range(len(blob)):
        assert issubclass(_fails(blob[:n]), DecryptionError)
        if n >= 87:
            dec = StreamDecryptor(KEY, AAD)
            dec.update(blob[:n])
            with pytest.raises(TruncatedStreamError):
                dec.finalize()


def test_reorder_drop_duplicate_records(small_chunks: int) -> None:
    prologue, records = split_stream(encrypt(os.urandom(small_chunks * 4)))
    data_records, final = records[:-1], records[-1]
    variants = [
        [data_records[1], data_records[0], *data_records[2:], final],  # swap
        [*data_records[:1], *data_records[2:], final],  # drop one in the middle
        [data_records[0], *data_records, final],  # duplicate
        [*data_records, data_records[-1], final],  # duplicate the last data record
        [*data_records[:-1], final],  # drop the last data record
        [final, *data_records],  # final first
        [*data_records, final, final],  # final twice
    ]
    for variant in variants:
        assert issubclass(_fails(prologue + b"".join(variant)), DecryptionError)


def test_data_after_final_rejected(small_chunks: int) -> None:
    blob = encrypt(os.urandom(small_chunks * 2))
    for extra in (b"\x00", os.urandom(40), split_stream(blob)[1][0]):
        dec = StreamDecryptor(KEY, AAD)
        with pytest.raises(DecryptionError) as info:
            dec.update(blob)
            dec.update(extra)
        assert info.type is DecryptionError
        with pytest.raises(DecryptionError):
            dec.finalize()
        with pytest.raises(DecryptionError):
            decrypt(blob + extra)


def test_splice_two_streams_same_key(small_chunks: int) -> None:
    pa, ra = split_stream(encrypt(os.urandom(small_chunks * 3)))
    pb, rb = split_stream(encrypt(os.urandom(small_chunks * 3)))
    assert issubclass(_fails(pa + rb[0] + b"".join(ra[1:])), DecryptionError)
    assert issubclass(_fails(pa + b"".join(ra[:-1]) + rb[-1]), DecryptionError)
    assert issubclass(_fails(pb + b"".join(ra)), DecryptionError)
    assert issubclass(_fails(pa[:87] + pb[87:] + b"".join(ra)), DecryptionError)


def test_wrong_key_and_wrong_aad(small_chunks: int) -> None:
    blob = encrypt(b"evidence")
    assert _fails(blob, key=OTHER_KEY) is DecryptionError
    assert _fails(blob, aad=field_aad("23050001", "file:8")) is DecryptionError
    assert _fails(blob, aad=field_aad("23050002", "file:7")) is DecryptionError
    with pytest.raises(DecryptionError):
        read_header(OTHER_KEY, AAD, blob)


def test_decryptor_refuses_use_after_failure(small_chunks: int) -> None:
    blob = bytearray(encrypt(os.urandom(40)))
    blob[-1] ^= 1
    dec = StreamDecryptor(KEY, AAD)
    with pytest.raises(DecryptionError):
        dec.update(bytes(blob))
    with pytest.raises(DecryptionError):
        dec.update(b"")
    with pytest.raises(DecryptionError):
        dec.finalize()


def test_oversized_record_length_refused_before_buffering(small_chunks: int) -> None:
    blob = encrypt(os.urandom(40))
    prologue, _records = split_stream(blob)
    evil = prologue + b"\x00" + (0xFFFFFFFF).to_bytes(4, "big")
    assert _fails(evil) is DecryptionError


# --- header --------------------------------------------------------------------------------


def test_read_header_and_need_more(small_chunks: int) -> None:
    blob = encrypt(os.urandom(100))
    assert read_header(KEY, AAD, blob[:READ_HEADER_MAX]) == HEADER
    with pytest.raises(NeedMoreDataError) as info:
        read_header(KEY, AAD, blob[:10])
    assert info.value.needed == 87
    with pytest.raises(NeedMoreDataError) as info:
        read_header(KEY, AAD, blob[:90])
    prologue_len = len(split_stream(blob)[0])
    assert info.value.needed == prologue_len
    assert read_header(KEY, AAD, blob[:prologue_len]) == HEADER


def test_header_property_before_prologue() -> None:
    dec = StreamDecryptor(KEY, AAD)
    with pytest.raises(RuntimeError):
        _ = dec.header
    assert not dec.has_header


def test_encryptor_call_order() -> None:
    enc = StreamEncryptor(KEY, AAD, HEADER)
    with pytest.raises(RuntimeError):
        enc.update(b"x")
    enc.start()
    with pytest.raises(RuntimeError):
        enc.start()
    enc.finalize()
    with pytest.raises(RuntimeError):
        enc.update(b"x")


def test_header_validation() -> None:
    with pytest.raises(TypeError):
        FileHeader("a", "b", {"k": 1})  # type: ignore[dict-item]
    with pytest.raises(ValueError):
        StreamEncryptor(KEY, AAD, FileHeader("x" * 70_000, "a"))


def test_iterators_report_header_and_trailer(small_chunks: int) -> None:
    trailers: list[FileTrailer] = []
    headers: list[FileHeader] = []
    data = os.urandom(50)
    blob = b"".join(encrypt_iter(KEY, AAD, HEADER, [data], on_trailer=trailers.append))
    out = b"".join(
        decrypt_iter(KEY, AAD, [blob], on_header=headers.append, on_trailer=trailers.append)
    )
    assert out == data and headers == [HEADER]
    assert trailers[0] == trailers[1] == FileTrailer(50, hashlib.sha256(data).hexdigest())


def test_async_iterators(small_chunks: int) -> None:
    data = os.urandom(100)

    async def agen(parts: Iterable[bytes]) -> AsyncIterator[bytes]:
        for p in parts:
            yield p

    async def run() -> tuple[bytes, bytes]:
        blob = b"".join(
            [c async for c in aencrypt_iter(KEY, AAD, HEADER, agen([data[:30], data[30:]]))]
        )
        out = b"".join([c async for c in adecrypt_iter(KEY, AAD, agen([blob]))])
        return blob, out

    blob, out = asyncio.run(run())
    assert out == data

    async def truncated() -> None:
        async for _ in adecrypt_iter(KEY, AAD, agen([blob[:-10]])):
            pass

    with pytest.raises(TruncatedStreamError):
        asyncio.run(truncated())


@given(
    data=st.binary(max_size=60),
    edits=st.lists(
        st.tuples(
            st.sampled_from(["flip", "insert", "delete"]),
            st.integers(0, 10_000),
            st.integers(1, 255),
        ),
        min_size=1,
        max_size=4,
    ),
    cuts=st.lists(st.integers(min_value=1, max_value=64), max_size=6),
)
@settings(max_examples=300, deadline=None)
def test_mangled_streams_only_raise_decryption_error(
    data: bytes, edits: list[tuple[str, int, int]], cuts: list[int]
) -> None:
    with chunk_size(16):
        blob = bytearray(encrypt(data))
    for op, where, value in edits:
        pos = where % (len(blob) + 1)
        if op == "flip" and pos < len(blob):
            blob[pos] ^= value
        elif op == "insert":
            blob[pos:pos] = bytes([value])
        elif op == "delete" and pos < len(blob):
            del blob[pos]
    dec = StreamDecryptor(KEY, AAD)
    released = b""
    try:
        for piece in cut(bytes(blob), cuts):
            released += dec.update(piece)
        dec.finalize()
    except DecryptionError:
        assert data.startswith(released)
    else:
        assert released == data  # only an edit that cancelled out can succeed


def test_update_parts_gives_the_same_stream_layout(small_chunks: int) -> None:
    data = os.urandom(small_chunks * 3 + 4)
    enc = StreamEncryptor(KEY, AAD, HEADER)
    pieces = [enc.start()]
    for i in range(0, len(data), 10):
        parts = enc.update_parts(data[i : i + 10])
        assert all(isinstance(p, bytes) for p in parts)
        pieces += parts
    last, trailer = enc.finalize()
    blob = b"".join([*pieces, last])
    assert decrypt(blob) == data and trailer.size == len(data)
    assert len(split_stream(blob)[1]) == 4 + 1


@pytest.mark.parametrize("suite", [Suite.AES256GCM, Suite.SM4GCM])
def test_whole_chunks_sealed_in_place_read_back(small_chunks: int, suite: Suite) -> None:
    """``seal_chunk_into`` (whole chunks, straight into the caller's buffer) then
    ``seal_parts`` for the tail: one stream, readable, with the plaintext's SHA-256."""
    data = os.urandom(small_chunks * 3 + 5)
    enc = StreamEncryptor(KEY, AAD, HEADER, suite=suite)
    out = bytearray(enc.start())
    view = memoryview(data)
    for i in range(3):
        chunk = view[i * small_chunks : (i + 1) * small_chunks]
        enc.absorb(chunk)
        record = bytearray(b"\xee" * (enc.record_size + 2))
        enc.seal_chunk_into(chunk, memoryview(record)[1:-1])
        assert record[0] == record[-1] == 0xEE  # exactly record_size bytes written
        out += record[1:-1]
    enc.absorb(view[3 * small_chunks :])
    out += b"".join(enc.seal_parts(view[3 * small_chunks :]))
    last, trailer = enc.finalize()
    blob = bytes(out + last)
    dec = StreamDecryptor(KEY, AAD)
    assert dec.update(blob) == data
    assert dec.finalize().sha256 == hashlib.sha256(data).hexdigest() == trailer.sha256
    assert len(split_stream(blob)[1]) == 4 + 1


def test_seal_chunk_into_takes_only_whole_chunks_between_whole_chunks(small_chunks: int) -> None:
    enc = StreamEncryptor(KEY, AAD, HEADER)
    enc.start()
    with pytest.raises(ValueError):
        enc.seal_chunk_into(b"x" * (small_chunks - 1), memoryview(bytearray(enc.record_size)))
    with pytest.raises(ValueError):
        enc.seal_chunk_into(b"x" * small_chunks, memoryview(bytearray(enc.record_size - 1)))
    enc.seal_parts(b"tail")
    with pytest.raises(RuntimeError):
        enc.seal_chunk_into(b"x" * small_chunks, memoryview(bytearray(enc.record_size)))
