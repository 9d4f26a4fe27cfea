"""Receipt throttling (R8): slows guessing, stores no address, never locks out."""

from __future__ import annotations

import asyncio
import statistics
import time

import pytest

import portal.reporter.followup as reporter_followup
import portal.reporter.submission as reporter_submission
from portal.kernel.services import Services
from portal.kernel.throttle import AttemptCounter, Busy, TokenBucket
from tests.conftest import appoint_readers


async def test_bucket_delays_instead_of_refusing_then_says_busy() -> None:
    bucket = TokenBucket(per_minute=600, burst=2, max_wait_s=0.5)  # 10 per second
    start = time.monotonic()
    for _ in range(4):
        await bucket.take()
    elapsed = time.monotonic() - start
    assert elapsed >= 0.15, "the third and fourth takes had to wait for refill"
    slow = TokenBucket(per_minute=1, burst=1, max_wait_s=0.1)
    await slow.take()
    with pytest.raises(Busy):
        await slow.take()


def test_attempt_counter_is_signed_and_bounded() -> None:
    counter = AttemptCounter(b"k" * 32, free_attempts=3, cap_s=30)
    token = counter.encode(5)
    assert counter.decode(token) == 5
    assert counter.decode(token[:-2] + "AA") == 0
    assert counter.decode("garbage") == 0
    assert AttemptCounter(b"x" * 32, free_attempts=3).decode(token) == 0
    assert counter.delay_for(2) == 0
    assert counter.delay_for(3) == 1
    assert counter.delay_for(5) == 4
    assert counter.delay_for(100) == 30


async def test_malformed_unknown_and_wrong_codes_take_the_same_time(services: Services) -> None:
    """Each kind of bad code costs one derivation: medians within a generous tolerance."""
    from portal.reporter.intake import parse_report

    parsed = parse_report(
        {
            "kind": ["report"],
            "identity_mode": ["anonymous"],
            "category": ["bribery"],
            "relation": ["other"],
            "what": ["Something happened in the warehouse."],
            "declaration": ["yes"],
        },
        ["bribery"],
    )
    assert parsed.report is not None
    await appoint_readers(services)  # reports are taken only once somebody can open them
    code, _ = await reporter_submission.submit(
        services,
        parsed.report,
        reporter_submission.new_targets(["report"]),
        [],
        "token-timing-abcdefghijkl",
    )
    digits = code.replace(" ", "")
    wrong = digits[:-2] + str((int(digits[-2]) + 3) % 10) + digits[-1]
    samples: dict[str, list[float]] = {"malformed": [], "unknown": [], "right": []}
    inputs = {"malformed": "12ab-34", "unknown": wrong, "right": code}
    for _ in range(15):
        for name, raw in inputs.items():
            t = time.perf_counter()
            await reporter_followup.sign_in_with_receipt(services, raw)
            samples[name].append(time.perf_counter() - t)
    med = {k: statistics.median(v) for k, v in samples.items()}
    base = med["right"]
    for name in ("malformed", "unknown"):
        assert 0.5 * base <= med[name] <= 2.0 * base, med
    await asyncio.sleep(0)


def test_attempt_counter_round_trips_whatever_bytes_its_mac_holds() -> None:
    """The 16-byte MAC contains a "." about one time in 16; such a token must still decode
    (splitting on the last dot once reset the count to 0, undoing the slow-down)."""
    counter = AttemptCounter(b"k" * 32, free_attempts=3)
    for attempts in range(400):
        assert counter.decode(counter.encode(attempts)) == attempts
    assert counter.decode(counter.encode(7)[:-4]) == 0
