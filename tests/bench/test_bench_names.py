"""bench/common.py: a benchmark run creates its own PostgreSQL database and Redis key prefix
and removes those, and nothing else (issue 17, point 6)."""

from __future__ import annotations

import asyncio
import secrets
import sys
from pathlib import Path

import pytest

from tests.portal.scaleout_fixtures import pg_available, redis_available

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import common

REDIS_DB_URL = "redis://127.0.0.1:6379/11"


def test_redis_prefix_removes_its_own_keys_only() -> None:
    if not redis_available():
        pytest.skip("no Redis on 127.0.0.1:6379")
    import redis

    client = redis.Redis.from_url(REDIS_DB_URL)
    other = f"other_{secrets.token_hex(4)}"
    try:
        client.set(f"{other}:kept", b"1")
        client.set(f"{other}_sessions:kept", b"1")
        with common.private_redis_prefix("bench_test", REDIS_DB_URL) as prefix:
            assert common.RUN_ID in prefix
            client.set(f"{prefix}:receipt-bucket", b"1")
            client.set(f"{prefix}_sessions:abc", b"1")
        assert list(client.scan_iter(match=f"{prefix}*")) == []
        assert client.get(f"{other}:kept") == b"1"
        assert client.get(f"{other}_sessions:kept") == b"1"
    finally:
        client.delete(f"{other}:kept", f"{other}_sessions:kept")
        client.close()


async def _databases() -> set[str]:
    import asyncpg

    conn = await asyncpg.connect(f"{common.PG_SERVER}/postgres")
    try:
        return {r["datname"] for r in await conn.fetch("SELECT datname FROM pg_database")}
    finally:
        await conn.close()


def test_private_database_is_new_and_only_it_is_dropped() -> None:
    if not pg_available():
        pytest.skip("no PostgreSQL on 127.0.0.1:5432")
    before = asyncio.run(_databases())
    with common.private_database("bench_test") as url:
        name = url.rsplit("/", 1)[1]
        assert name == f"bench_test_{common.RUN_ID}" and name not in before
        assert name in asyncio.run(_databases())
        # a second run with the same name is refused, never given the first one's database
        with (
            pytest.raises(Exception, match="already exists"),
            common.private_database("bench_test"),
        ):
            pass
        assert name in asyncio.run(_databases())
    assert name not in asyncio.run(_databases())  # other engineers' databases come and go
