"""Throttle state shared by every instance through Redis (O2), when REDIS_URL is set.

* `RedisTokenBucket`: the receipt sign-in global budget (R8). Same behaviour as
  `portal.kernel.throttle.TokenBucket` (wait for a token, `Busy` past `max_wait_s`), but the bucket
  lives in Redis and is updated by one Lua script, atomically, with the Redis server's clock:
  two instances share one budget. A caller that has to wait *reserves* its token (the level
  may go negative) so waiting callers are served in order.
* `RedisSigninThrottle`: the staff sign-in throttle (A4), the `portal.kernel.throttle_policy`
  interface on Redis. Per-name failure counters (the name is hashed, never stored) that expire
  ``forget_after_s`` after the last failure, and a global failure counter per window.

Keys carry a prefix (``PORTAL_REDIS_PREFIX`` and a colon, default ``portal:``). The client uses
socket and connect timeouts; the password comes with the URL (settings refuse a password-less
URL in production). Redis holds no reporter data here: only counters and hashes of typed staff
names.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from portal.kernel.outage import RedisUnavailable, note_outage, note_success
from portal.kernel.settings import Settings
from portal.kernel.throttle import Busy
from portal.kernel.throttle_policy import ThrottlePolicy

_TAKE = """
local key = KEYS[1]
local rate = tonumber(ARGV[1])
local capacity = tonumber(ARGV[2])
local max_wait = tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local state = redis.call('HMGET', key, 'tokens', 'ts')
local tokens = tonumber(state[1])
local ts = tonumber(state[2])
if tokens == nil then
  tokens = capacity
  ts = now
end
tokens = math.min(capacity, tokens + math.max(0, now - ts) * rate)
local wait = 0
if tokens < 1 then
  wait = (1 - tokens) / rate
  if wait > max_wait then
    redis.call('HSET', key, 'tokens', tostring(tokens), 'ts', tostring(now))
    redis.call('EXPIRE', key, math.ceil(capacity / rate) + 60)
    return '-1'
  end
end
tokens = tokens - 1
redis.call('HSET', key, 'tokens', tostring(tokens), 'ts', tostring(now))
redis.call('EXPIRE', key, math.ceil((capacity - tokens) / rate) + 60)
return tostring(wait)
"""


@asynccontextmanager
async def redis_guard() -> AsyncIterator[None]:
    """Redis unreachable, timed out or refusing our password leaves as `RedisUnavailable`
    (503 with Retry-After, never 429 or 500); the outage and the recovery are logged once."""
    from redis.exceptions import RedisError

    try:
        yield
    except RedisError as error:
        if type(error).__name__ == "MaxConnectionsError":
            # every pooled connection is busy: this instance is overloaded, Redis is not down
            raise RedisOverloaded(error) from None
        note_outage(RedisUnavailable.component, type(error).__name__)
        raise RedisUnavailable(error) from None
    except OSError as error:  # a socket error redis-py did not wrap
        note_outage(RedisUnavailable.component, type(error).__name__)
        raise RedisUnavailable(error) from None
    else:
        note_success(RedisUnavailable.component)


class RedisOverloaded(RedisUnavailable):
    """No free connection in this instance's pool (not an outage: not logged)."""


def redis_client(url: str) -> Any:
    """An asyncio Redis client with timeouts (a stalled Redis must not hang requests)."""
    from redis.asyncio import Redis

    return Redis.from_url(
        url,
        socket_timeout=5,
        socket_connect_timeout=5,
        health_check_interval=30,
        retry_on_timeout=False,
    )


class RedisTokenBucket:
    def __init__(
        self,
        client: Any,
        per_minute: int,
        *,
        burst: int | None = None,
        max_wait_s: float = 20.0,
        key: str = "portal:receipt-bucket",
    ) -> None:
        self.client = client
        self.rate = per_minute / 60.0
        self.capacity = float(burst if burst is not None else max(1, per_minute // 4))
        self.max_wait_s = max_wait_s
        self.key = key
        self._script = client.register_script(_TAKE)

    async def take(self) -> None:
        """Wait for a token shared with every instance; Busy if the wait would be too long,
        `RedisUnavailable` while Redis cannot be used (no code is evaluated while the shared
        budget is unknown: fail closed, with a 503 that says "try again later")."""
        try:
            async with redis_guard():
                raw = await self._script(
                    keys=[self.key], args=[self.rate, self.capacity, self.max_wait_s]
                )
        except RedisOverloaded:
            raise Busy from None  # more callers at once than connections: the budget is busy
        wait = float(raw.decode() if isinstance(raw, bytes) else raw)
        if wait < 0:
            raise Busy
        if wait > 0:
            await asyncio.sleep(wait)


class RedisSigninThrottle:
    """`portal.kernel.throttle_policy.SigninThrottle` with its state in Redis (shared by
    instances)."""

    def __init__(
        self,
        client: Any,
        policy: ThrottlePolicy | None = None,
        *,
        prefix: str = "portal:",
    ) -> None:
        self.client = client
        self.policy = policy or ThrottlePolicy()
        self.prefix = prefix

    def _account_key(self, key: str) -> str:
        hashed = hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()
        return f"{self.prefix}signin:acct:{hashed}"

    async def _global_key(self) -> str:
        seconds, _micro = await self.client.time()
        window = int(seconds // max(1.0, self.policy.global_window_s))
        return f"{self.prefix}signin:global:{window}"

    async def delay_for(self, key: str) -> float:
        async with redis_guard():
            gkey = await self._global_key()
            failures, global_count = await self.client.mget(self._account_key(key), gkey)
        delay = self.policy.account_delay(int(failures or 0))
        if int(global_count or 0) > self.policy.global_budget:
            delay += self.policy.global_delay
        return delay

    async def record_failure(self, key: str) -> None:
        akey = self._account_key(key)
        async with redis_guard():
            gkey = await self._global_key()
            async with self.client.pipeline(transaction=True) as pipe:
                pipe.incr(akey)
                pipe.expire(akey, int(self.policy.forget_after_s))
                pipe.incr(gkey)
                pipe.expire(gkey, int(self.policy.global_window_s * 2) + 1)
                await pipe.execute()

    async def record_success(self, key: str) -> None:
        async with redis_guard():
            await self.client.delete(self._account_key(key))

    async def failures(self, key: str) -> int:
        """Recent failures on ``key`` (for tests and diagnostics)."""
        async with redis_guard():
            return int(await self.client.get(self._account_key(key)) or 0)


# --- choosing by settings -------------------------------------------------------------------


def _prefix(settings: Settings) -> str:
    return f"{settings.redis_prefix}:"


def receipt_bucket(settings: Settings) -> Any:
    """The receipt sign-in global budget: shared through Redis when REDIS_URL is set."""
    prefix = _prefix(settings)
    if settings.redis_url:
        return RedisTokenBucket(
            redis_client(settings.redis_url),
            settings.receipt_global_budget_per_minute,
            key=f"{prefix}receipt-bucket",
        )
    from portal.kernel.throttle import TokenBucket

    return TokenBucket(settings.receipt_global_budget_per_minute)


def signin_throttle(settings: Settings) -> Any:
    """The staff sign-in throttle: shared through Redis when REDIS_URL is set, else None (the
    caller's in-process default)."""
    if settings.redis_url:
        return RedisSigninThrottle(redis_client(settings.redis_url), prefix=_prefix(settings))
    return None
