"""The session store with Redis outages made explicit.

`litestar.stores.redis.RedisStore` lets a refused connection or a wrong password escape as a
redis-py error, which the session middleware turns into a 500 and an ERROR traceback at every
request carrying a session cookie (staff sign-in, a reporter's follow-up). `GuardedStore`
wraps the app's session store: such errors leave as `portal.kernel.outage.RedisUnavailable` (503
with
Retry-After and the translated "temporarily unavailable" page), logged once per outage.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from litestar.stores.base import Store

from portal.kernel.redis_state import redis_guard

if TYPE_CHECKING:
    from types import TracebackType

__all__ = ["GuardedStore", "guard_stores"]


class GuardedStore(Store):
    """Delegates every call to ``inner`` inside `portal.kernel.redis_state.redis_guard`."""

    def __init__(self, inner: Store) -> None:
        self.inner = inner

    async def set(
        self, key: str, value: str | bytes, expires_in: int | timedelta | None = None
    ) -> None:
        async with redis_guard():
            await self.inner.set(key, value, expires_in=expires_in)

    async def get(self, key: str, renew_for: int | timedelta | None = None) -> bytes | None:
        async with redis_guard():
            return await self.inner.get(key, renew_for=renew_for)

    async def delete(self, key: str) -> None:
        async with redis_guard():
            await self.inner.delete(key)

    async def delete_all(self) -> None:
        async with redis_guard():
            await self.inner.delete_all()

    async def exists(self, key: str) -> bool:
        async with redis_guard():
            return await self.inner.exists(key)

    async def expires_in(self, key: str) -> int | None:
        async with redis_guard():
            return await self.inner.expires_in(key)

    async def __aenter__(self) -> None:
        await self.inner.__aenter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> None:
        await self.inner.__aexit__(exc_type, exc_val, exc_tb)


def guard_stores(stores: dict[str, Store], *, redis: bool) -> dict[str, Store]:
    """Wrap every store when they live in Redis; in-memory stores are returned as they are."""
    if not redis:
        return stores
    return {name: GuardedStore(store) for name, store in stores.items()}
