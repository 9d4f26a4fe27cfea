"""R8: the global receipt budget cannot be turned against the rightful holder.

* input that cannot be a receipt code takes no token: 200 concurrent junk sign-ins leave the
  budget as it was, and the holder of the right code signs in at once;
* the queue is bounded by the maximum wait: of 200 callers at once on an empty budget each is
  either served within ``max_wait_s`` or told "busy" at once, in memory and on Redis;
* over HTTP, with the budget drained by well-formed wrong codes, the holder is answered within
  the documented maximum (``max_wait_s`` plus one derivation), served or shown the busy page.
"""

from __future__ import annotations

import asyncio
import re
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
from litestar import Litestar
from litestar.testing import TestClient

import portal.web.reporter as reporter_routes
from crypto.receipts import RECEIPT_MAX_INPUT, generate_receipt
from portal.kernel.redis_state import RedisTokenBucket, redis_client
from portal.kernel.services import Services
from portal.kernel.throttle import Busy, TokenBucket
from tests.portal.scaleout_fixtures import REDIS_URL, redis_prefix  # noqa: F401
from tests.portal.test_reporter_journeys import (
    ATTEMPTS_RE,
    CSRF_RE,
    receipt_of,
    report_fields,
    submit,
)

SLACK_S = 1.5  # scheduling noise on a loaded two-core machine


async def _crowd(bucket: Any, n: int = 200) -> list[tuple[str, float]]:
    async def one() -> tuple[str, float]:
        started = time.monotonic()
        try:
            await bucket.take()
            outcome = "served"
        except Busy:
            outcome = "busy"
        return outcome, time.monotonic() - started

    return list(await asyncio.gather(*(one() for _ in range(n))))


def _check_bounded(results: list[tuple[str, float]], max_wait: float, capacity: float) -> None:
    served = [t for outcome, t in results if outcome == "served"]
    busy = [t for outcome, t in results if outcome == "busy"]
    assert busy, "an empty budget must refuse some of 200 callers"
    # nobody waits past the maximum, and nobody is told "busy" only after waiting
    assert max(served) <= max_wait + SLACK_S, max(served)
    assert max(busy) < SLACK_S, max(busy)
    # the callers served are the burst plus what the rate allows within the maximum wait
    assert len(served) <= capacity + max_wait * 2 + 2, len(served)


async def test_in_memory_budget_queue_is_bounded_by_the_maximum_wait() -> None:
    bucket = TokenBucket(120, burst=3, max_wait_s=1.0)  # two tokens a second
    results = await _crowd(bucket)
    _check_bounded(results, 1.0, 3)


async def test_shared_budget_queue_is_bounded_by_the_maximum_wait(
    redis_prefix: str,  # noqa: F811
) -> None:
    client = redis_client(REDIS_URL)
    try:
        bucket = RedisTokenBucket(
            client, 120, burst=3, max_wait_s=1.0, key=f"{redis_prefix}receipt-bucket"
        )
        results = await _crowd(bucket)
        _check_bounded(results, 1.0, 3)
    finally:
        await client.aclose()


def _form(client: TestClient[Litestar]) -> tuple[str, str]:
    page = client.get("/follow-up")
    csrf = CSRF_RE.search(page.text).group(1)  # type: ignore[union-attr]
    attempts = ATTEMPTS_RE.search(page.text).group(1)  # type: ignore[union-attr]
    return csrf, attempts


def _post_code(
    client: TestClient[Litestar], form: tuple[str, str], code: str
) -> tuple[int, float, str]:
    started = time.monotonic()
    answer = client.post(
        "/follow-up",
        data={"_csrf_token": form[0], "attempts": form[1], "code": code},
        follow_redirects=False,
    )
    return answer.status_code, time.monotonic() - started, answer.text


def _bucket(services: Services) -> TokenBucket:
    bucket = reporter_routes._global_bucket(services)
    assert isinstance(bucket, TokenBucket)
    return bucket


def test_junk_takes_no_token_and_the_holder_signs_in_at_once(
    reporter: TestClient[Litestar], services: Services, with_categories: None
) -> None:
    code = receipt_of(submit(reporter, report_fields()))
    reporter.cookies = httpx.Cookies()
    form = _form(reporter)
    bucket = _bucket(services)
    before = bucket.tokens
    junk = ["1" * (RECEIPT_MAX_INPUT + 1), "12345", "not a code", "1" * 27] * 50
    with ThreadPoolExecutor(max_workers=32) as pool:
        answers = list(pool.map(lambda raw: _post_code(reporter, form, raw), junk))
    assert {status for status, _t, _text in answers} <= {400, 413}
    assert all("receipt code has 28 digits" in text for s, _t, text in answers if s == 400)
    bucket._refill()
    assert bucket.tokens >= before - 1e-6, "junk must not spend the shared budget"
    status, elapsed, _text = _post_code(reporter, form, code)
    assert status == 303
    assert elapsed < bucket.max_wait_s


def test_a_drained_budget_answers_the_holder_within_the_documented_maximum(
    reporter: TestClient[Litestar], services: Services, with_categories: None
) -> None:
    code = receipt_of(submit(reporter, report_fields()))
    reporter.cookies = httpx.Cookies()
    form = _form(reporter)
    max_wait = 2.0
    # a small budget so that 200 well-formed wrong codes drain it for good
    reporter_routes._bucket[id(services)] = TokenBucket(60, burst=2, max_wait_s=max_wait)
    wrong = [generate_receipt() for _ in range(200)]
    holder: list[tuple[int, float, str]] = []

    def crowd() -> list[tuple[int, float, str]]:
        with ThreadPoolExecutor(max_workers=48) as pool:
            return list(pool.map(lambda raw: _post_code(reporter, form, raw), wrong))

    with ThreadPoolExecutor(max_workers=1) as background:
        pending = background.submit(crowd)
        time.sleep(0.5)  # the crowd is in: the budget is spent and callers are queued
        holder.append(_post_code(reporter, form, code))
        answers = pending.result()
    statuses = {status for status, _t, _text in answers}
    assert statuses <= {400, 429}, statuses
    assert 429 in statuses  # the crowd did drain the budget
    assert max(t for _s, t, _x in answers) <= max_wait + SLACK_S + 1.0
    status, elapsed, text = holder[0]
    assert status in (303, 429)
    if status == 429:
        assert re.search(r"try again", text, re.IGNORECASE)
    # documented maximum: the budget's maximum wait plus one derivation (and scheduling)
    assert elapsed <= max_wait + SLACK_S + 1.0, elapsed
