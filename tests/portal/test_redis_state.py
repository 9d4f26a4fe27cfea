# ruff: noqa: F401, F811 - pytest fixtures imported from scaleout_fixtures
"""Throttle state shared through the real Redis on 127.0.0.1:6379 (random key prefix per test)."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import pytest

from portal.kernel.redis_state import (
    RedisSigninThrottle,
    RedisTokenBucket,
    receipt_bucket,
    redis_client,
    signin_throttle,
)
from portal.kernel.settings import Settings
from portal.kernel.throttle import Busy, TokenBucket
from portal.kernel.throttle_policy import ThrottlePolicy
from tests.portal.scaleout_fixtures import REDIS_URL, redis_prefix


async def test_two_instances_share_one_receipt_budget(redis_prefix: str) -> None:
    a_client, b_client = redis_client(REDIS_URL), redis_client(REDIS_URL)
    key = f"{redis_prefix}receipt-bucket"
    # 60/minute = one token a second, burst of 2, callers wait at most 0.3 s
    a = RedisTokenBucket(a_client, 60, burst=2, max_wait_s=0.3, key=key)
    b = RedisTokenBucket(b_client, 60, burst=2, max_wait_s=0.3, key=key)
    await a.take()
    await a.take()
    with pytest.raises(Busy):  # instance B sees the budget A spent
        await b.take()
    patient = RedisTokenBucket(b_client, 60, burst=2, max_wait_s=5, key=key)
    started = time.monotonic()
    await patient.take()  # waits its turn instead of being refused
    assert 0.5 < time.monotonic() - started < 2.0
    assert await a_client.ttl(key) > 0  # the bucket expires when idle
    await a_client.aclose()
    await b_client.aclose()


async def test_waiting_callers_reserve_in_order(redis_prefix: str) -> None:
    client = redis_client(REDIS_URL)
    bucket = RedisTokenBucket(client, 600, burst=1, max_wait_s=1.0, key=f"{redis_prefix}b")
    started = time.monotonic()
    for _ in range(4):  # 10 a second: the 2nd..4th wait 0.1 s more each
        await bucket.take()
    assert 0.25 < time.monotonic() - started < 1.0
    await client.aclose()


async def test_signin_failures_are_shared_and_names_are_hashed(redis_prefix: str) -> None:
    policy = ThrottlePolicy(free_failures=2, base_delay=1.0, max_delay=8.0, global_budget=5)
    one = RedisSigninThrottle(redis_client(REDIS_URL), policy, prefix=redis_prefix)
    two = RedisSigninThrottle(redis_client(REDIS_URL), policy, prefix=redis_prefix)
    assert await one.delay_for("alice") == 0
    for _ in range(3):
        await one.record_failure("alice")
    assert await two.failures("alice") == 3
    assert await two.delay_for("alice") == 2.0  # 1 * 2**(3-2), seen by the other instance
    assert await two.delay_for("bob") == 0
    keys = [k.decode() async for k in one.client.scan_iter(match=f"{redis_prefix}*")]
    assert keys and not any("alice" in k for k in keys)
    acct = next(k for k in keys if ":acct:" in k)
    assert 0 < await one.client.ttl(acct) <= policy.forget_after_s
    await two.record_success("alice")
    assert await one.delay_for("alice") == 0
    # a campaign spread over many names slows everyone
    for i in range(6):
        await two.record_failure(f"user{i}")
    assert await one.delay_for("carol") == policy.global_delay
    await one.client.aclose()
    await two.client.aclose()


def test_settings_choose_redis_or_memory(tmp_path: Path, redis_prefix: str) -> None:
    base = Settings(
        mode="test",
        argon2_profile="test",
        data_dir=tmp_path,
        database_url=f"sqlite+aiosqlite:///{tmp_path}/p.db",
    )
    assert isinstance(receipt_bucket(base), TokenBucket)
    assert signin_throttle(base) is None
    shared = dataclasses.replace(
        base, redis_url=REDIS_URL, redis_prefix=redis_prefix.removesuffix(":")
    )
    bucket = receipt_bucket(shared)
    assert isinstance(bucket, RedisTokenBucket)
    assert bucket.key == f"{redis_prefix}receipt-bucket"
    throttle = signin_throttle(shared)
    assert isinstance(throttle, RedisSigninThrottle)
    assert throttle.prefix == redis_prefix
    kwargs = bucket.client.connection_pool.connection_kwargs
    assert kwargs["socket_timeout"] == 5 and kwargs["socket_connect_timeout"] == 5


async def test_an_unreachable_redis_fails_closed_as_unavailable() -> None:
    from portal.kernel.outage import RedisUnavailable
    from tests.portal.scaleout_fixtures import free_port

    client = redis_client(f"redis://127.0.0.1:{free_port()}/0")  # nothing listens there
    bucket = RedisTokenBucket(client, 60, key="portal:unreachable")
    with pytest.raises(RedisUnavailable):  # 503 "try again later": no code is evaluated
        await bucket.take()
    await client.aclose()
