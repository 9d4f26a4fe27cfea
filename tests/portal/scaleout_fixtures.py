"""Shared fixtures for the scale-out tests: a real S3-compatible server (moto in server mode on
a free loopback port), a per-test key prefix on the real Redis, and a private PostgreSQL
database."""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import Iterator
from typing import Any

import pytest

REDIS_URL = os.environ.get("PORTAL_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
PG_ADMIN = os.environ.get("PORTAL_TEST_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/postgres")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    pytest.importorskip("moto")
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture
def s3_bucket(moto_endpoint: str) -> Iterator[dict[str, Any]]:
    """A fresh bucket on the moto server; yields the Settings overrides that select it."""
    from portal.s3store import S3Config, make_client

    name = f"portal-{secrets.token_hex(6)}"
    config = S3Config(bucket=name, endpoint=moto_endpoint, access_key="test", secret_key="test")
    client = make_client(config)
    client.create_bucket(Bucket=name)
    yield {
        "s3_bucket": name,
        "s3_endpoint": moto_endpoint,
        "s3_access_key": "test",
        "s3_secret_key": "test",
        "s3_region": "us-east-1",
    }


def redis_available() -> bool:
    try:
        import redis

        redis.Redis.from_url(REDIS_URL, socket_timeout=1).ping()
    except Exception:
        return False
    return True


@pytest.fixture
def redis_prefix() -> Iterator[str]:
    """A random key prefix on the real Redis; only its keys are deleted afterwards."""
    if not redis_available():
        pytest.skip("no Redis on 127.0.0.1:6379")
    import redis

    prefix = f"t-{secrets.token_hex(6)}:"
    yield prefix
    client = redis.Redis.from_url(REDIS_URL)
    for key in client.scan_iter(match=f"{prefix}*"):
        client.delete(key)


def pg_available() -> bool:
    import subprocess

    return (
        subprocess.run(
            ["psql", PG_ADMIN, "-c", "select 1"], capture_output=True, timeout=10
        ).returncode
        == 0
    )


@pytest.fixture
def pg_database() -> Iterator[str]:
    """A private, empty PostgreSQL database; dropped afterwards."""
    import subprocess

    if not pg_available():
        pytest.skip("no PostgreSQL on 127.0.0.1:5432")
    name = f"i9_{secrets.token_hex(5)}"
    subprocess.run(
        ["psql", PG_ADMIN, "-c", f"CREATE DATABASE {name}"], check=True, capture_output=True
    )
    base = PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    try:
        yield f"{base}/{name}"
    finally:
        subprocess.run(
            ["psql", PG_ADMIN, "-c", f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"],
            capture_output=True,
        )
