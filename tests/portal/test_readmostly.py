"""Read-mostly caches (portal.kernel.readmostly): to a page that only shows it, an aged value is
served while one reload runs in the background, so no page waits for a time-based reload
(issue 17: the landing page's worst latency under a burst); an invalidated or too-old value is
loaded by the request itself, and so is an aged one for a caller that decides with it; a
failed background reload is logged and the aged value kept until the stale window ends."""

from __future__ import annotations

import asyncio
import logging

import pytest

from portal.kernel.readmostly import ReadMostly


class Owner:
    """Stands for a Database (the cache is keyed weakly by it)."""


class Source:
    def __init__(self) -> None:
        self.value = "v1"
        self.calls = 0
        self.gate: asyncio.Event | None = None
        self.fail = False

    async def load(self) -> str:
        self.calls += 1
        if self.gate is not None:
            await self.gate.wait()
        if self.fail:
            raise ConnectionError("database unreachable")
        return self.value


async def test_an_aged_value_is_served_while_one_reload_runs() -> None:
    cache: ReadMostly[str] = ReadMostly("test aged", ("t",), ttl_s=0.05, stale_s=30)
    owner, source = Owner(), Source()
    assert await cache.get(owner, source.load, stale_ok=True) == "v1"
    await asyncio.sleep(0.08)  # aged
    source.value, source.gate = "v2", asyncio.Event()
    # neither request waits for the reload, which is started once
    shown = [cache.get(owner, source.load, stale_ok=True) for _ in range(2)]
    got = await asyncio.wait_for(asyncio.gather(*shown), 1.0)
    assert got == ["v1", "v1"]
    await asyncio.sleep(0)
    assert source.calls == 2
    source.gate.set()
    for _ in range(20):
        await asyncio.sleep(0.01)
        if await cache.get(owner, source.load, stale_ok=True) == "v2":
            break
    assert await cache.get(owner, source.load, stale_ok=True) == "v2"
    assert source.calls == 2


async def test_past_the_stale_window_or_invalidated_the_request_loads_itself() -> None:
    cache: ReadMostly[str] = ReadMostly("test window", ("t",), ttl_s=0.02, stale_s=0.03)
    owner, source = Owner(), Source()
    await cache.get(owner, source.load, stale_ok=True)
    await asyncio.sleep(0.08)  # past ttl + stale
    source.value = "v2"
    assert await cache.get(owner, source.load, stale_ok=True) == "v2"
    source.value = "v3"
    cache.invalidate()  # a commit in this process touched its table: never served aged
    assert await cache.get(owner, source.load, stale_ok=True) == "v3"


async def test_a_failed_background_reload_is_logged_and_the_aged_value_kept(
    caplog: pytest.LogCaptureFixture,
) -> None:
    cache: ReadMostly[str] = ReadMostly("test failing", ("t",), ttl_s=0.02, stale_s=0.2)
    owner, source = Owner(), Source()
    await cache.get(owner, source.load, stale_ok=True)
    await asyncio.sleep(0.04)
    source.fail = True
    with caplog.at_level(logging.WARNING, logger="portal.readmostly"):
        assert await cache.get(owner, source.load, stale_ok=True) == "v1"
        await asyncio.sleep(0.01)
    assert any(
        r.getMessage() == "background reload failed" and r.__dict__.get("cache") == "test failing"
        for r in caplog.records
    )
    # still inside the stale window
    assert await cache.get(owner, source.load, stale_ok=True) == "v1"
    await asyncio.sleep(0.25)
    with pytest.raises(ConnectionError):  # past it: the request meets the error
        await cache.get(owner, source.load, stale_ok=True)


async def test_a_caller_that_decides_never_gets_an_aged_value() -> None:
    cache: ReadMostly[str] = ReadMostly("test deciding", ("t",), ttl_s=0.02, stale_s=30)
    owner, source = Owner(), Source()
    await cache.get(owner, source.load)
    await asyncio.sleep(0.04)
    source.value = "v2"
    assert await cache.get(owner, source.load) == "v2"
