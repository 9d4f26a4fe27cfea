"""Helpers for the crypto tests."""

from __future__ import annotations

import struct
from collections.abc import Iterator
from contextlib import contextmanager
from unittest import mock

from crypto import stream


@contextmanager
def chunk_size(size: int) -> Iterator[None]:
    """Temporarily use a small CHUNK_SIZE (it is read when an encryptor is created)."""
    with mock.patch.object(stream, "CHUNK_SIZE", size):
        yield


def split_stream(blob: bytes) -> tuple[bytes, list[bytes]]:
    """Split a stream into its prologue and its records, following the documented layout."""
    header_len = struct.unpack_from(">I", blob, 83)[0]
    pos = 87 + header_len
    prologue = blob[:pos]
    records = []
    while pos < len(blob):
        length = struct.unpack_from(">I", blob, pos + 1)[0]
        records.append(blob[pos : pos + 5 + length])
        pos += 5 + length
    assert b"".join([prologue, *records]) == blob
    return prologue, records
