from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.crypto.helpers import chunk_size


@pytest.fixture
def small_chunks() -> Iterator[int]:
    """A 16-byte CHUNK_SIZE for the duration of the test."""
    with chunk_size(16):
        yield 16
