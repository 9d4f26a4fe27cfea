"""PORTAL_REDIS_PREFIX: every Redis key of an installation starts with it, so two installations
(or two benchmark runs) sharing one Redis database never touch each other's keys."""

from __future__ import annotations

import dataclasses
import secrets
from collections.abc import Iterator

import pytest
from litestar import Litestar
from litestar.testing import TestClient

from portal.kernel.redis_state import receipt_bucket, signin_throttle
from portal.kernel.settings import Settings, SettingsError
from tests.portal.scaleout_fixtures import redis_available
from tests.portal.test_reporter_journeys import receipt_of, report_fields, sign_in, submit

REDIS_DB_URL = "redis://127.0.0.1:6379/11"


def test_the_prefix_is_read_and_checked() -> None:
    assert Settings.from_env({"PORTAL_MODE": "test"}).redis_prefix == "portal"
    env = {"PORTAL_MODE": "test", "PORTAL_REDIS_PREFIX": "bench_1a2b"}
    assert Settings.from_env(env).redis_prefix == "bench_1a2b"
    for bad in ("a:b", "x" * 41, "sp ace", "*"):
        with pytest.raises(SettingsError, match="PORTAL_REDIS_PREFIX"):
            Settings.from_env({**env, "PORTAL_REDIS_PREFIX": bad})


@pytest.fixture
def settings(settings: Settings) -> Iterator[Settings]:
    """The test installation on the real Redis (database 11) with a random prefix; only the
    keys under that prefix are deleted afterwards."""
    if not redis_available():
        pytest.skip("no Redis on 127.0.0.1:6379")
    import redis

    prefix = f"t{secrets.token_hex(6)}"
    yield dataclasses.replace(settings, redis_url=REDIS_DB_URL, redis_prefix=prefix)
    client = redis.Redis.from_url(REDIS_DB_URL)
    for key in client.scan_iter(match=f"{prefix}*"):
        client.delete(key)
    client.close()


def test_sessions_and_throttles_use_the_prefix(
    settings: Settings, client: TestClient[Litestar], readers: list[str]
) -> None:
    import redis

    prefix = settings.redis_prefix
    assert receipt_bucket(settings).key == f"{prefix}:receipt-bucket"
    assert signin_throttle(settings).prefix == f"{prefix}:"
    code = receipt_of(submit(client, report_fields()))
    assert sign_in(client, code).status_code == 303  # a reporter session, stored in Redis
    store = redis.Redis.from_url(REDIS_DB_URL)
    try:
        keys = [k.decode() for k in store.scan_iter(match=f"{prefix}*")]
    finally:
        store.close()
    assert f"{prefix}:receipt-bucket" in keys
    assert any(k.startswith(f"{prefix}_sessions:") for k in keys), keys
