"""R8, C3: the receipt code never travels or lingers, and sign-in reveals nothing.

* the code is absent from every cookie, every URL and Location the browser is sent to, every
  page after the receipt page, and the logs;
* input that cannot be a receipt code (over-long, other characters, wrong number of digits, a
  failed check digit: the format is public) is refused before any key derivation and before
  any token of the global budget is taken (a spy counts Argon2 evaluations);
* unknown, near-miss and right codes each cost exactly one derivation, and over HTTP their
  answer times do not differ measurably (medians within a tolerance, Argon2 made heavy
  enough here that skipping it would show).
"""

from __future__ import annotations

import dataclasses
import logging
import random
import re
import time
from typing import Any

import httpx
import pytest
from litestar import Litestar
from litestar.testing import TestClient

import portal.reporter.followup as reporter_followup
from crypto.params import Argon2Params
from crypto.receipts import RECEIPT_MAX_INPUT, damm_check_digit, generate_receipt
from portal.kernel.services import Services
from portal.kernel.settings import Settings
from tests.portal.test_reporter_journeys import (
    ATTEMPTS_RE,
    CSRF_RE,
    case_page,
    multipart,
    receipt_of,
    report_fields,
    sign_in,
    submit,
)


def _pattern(code: str) -> re.Pattern[str]:
    return re.compile(r"[^0-9]{0,3}".join(code.replace(" ", "")))


def test_R8_code_absent_from_cookies_urls_later_pages_and_logs(
    reporter: TestClient[Litestar],
    with_categories: None,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    seen: list[httpx.Response] = []
    reporter.event_hooks = {"request": [], "response": [seen.append]}
    receipt_page = submit(reporter, report_fields())
    code = receipt_of(receipt_page)
    pattern = _pattern(code)
    assert sign_in(reporter, code).status_code == 303
    _page, csrf, ids = case_page(reporter)
    reporter.post(
        "/follow-up/message",
        data={"_csrf_token": csrf, "case_id": ids[0], "text": "hello"},
        follow_redirects=True,
    )
    body, hdrs = multipart(
        [("_csrf_token", csrf), ("case_id", ids[0]), ("evidence", ("e.txt", b"x", "text/plain"))]
    )
    reporter.post("/follow-up/evidence", content=body, headers=hdrs, follow_redirects=True)
    for path in ("/", "/follow-up", "/follow-up/case", "/report/new", "/help"):
        reporter.get(path)
    reporter.post("/follow-up/sign-out", data={"_csrf_token": csrf}, follow_redirects=True)
    reporter.event_hooks = {"request": [], "response": []}

    problems: list[str] = []
    for response in seen:
        where = f"{response.request.method} {response.request.url}"
        if pattern.search(str(response.request.url)):
            problems.append(f"URL {where}")
        for name, value in response.headers.multi_items():
            if pattern.search(value):
                problems.append(f"header {name} of {where}")
        if response is not receipt_page and pattern.search(response.text):
            problems.append(f"page {where}")
    for name, value in reporter.cookies.items():
        if pattern.search(f"{name}={value}"):
            problems.append(f"cookie {name}")
    if pattern.search(caplog.text + "".join(repr(r.__dict__) for r in caplog.records)):
        problems.append("logs")
    assert len(seen) > 10 and problems == []


def test_R8_over_long_codes_are_refused_before_any_derivation(
    reporter: TestClient[Litestar], monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    real = reporter_followup.derive

    async def counting(services: Services, normalized: str) -> Any:
        calls.append(normalized)
        return await real(services, normalized)

    monkeypatch.setattr(reporter_followup, "derive", counting)  # the receipt door
    for raw in ("1" * (RECEIPT_MAX_INPUT + 1), "1234 " * 200, "9" * 60_000):
        page = reporter.get("/follow-up")
        answer = reporter.post(
            "/follow-up",
            data={
                "_csrf_token": CSRF_RE.search(page.text).group(1),  # type: ignore[union-attr]
                "attempts": ATTEMPTS_RE.search(page.text).group(1),  # type: ignore[union-attr]
                "code": raw,
            },
            follow_redirects=False,
        )
        assert answer.status_code in (400, 413), answer.status_code
    assert calls == []
    # ... and so is every other input that cannot be a code, while every well-formed code
    # costs exactly one derivation
    well_formed = (generate_receipt(), generate_receipt())
    for raw in ("abc", "1" * 27, _typo(well_formed[0]), *well_formed):
        assert reporter_followup.sign_in_with_receipt is not None
        page = reporter.get("/follow-up")
        reporter.post(
            "/follow-up",
            data={
                "_csrf_token": CSRF_RE.search(page.text).group(1),  # type: ignore[union-attr]
                "attempts": ATTEMPTS_RE.search(page.text).group(1),  # type: ignore[union-attr]
                "code": raw,
            },
            follow_redirects=False,
        )
    assert calls == [code.replace(" ", "") for code in well_formed]


def _typo(code: str) -> str:
    """The code with its check digit changed: fails the Damm check."""
    digits = code.replace(" ", "")
    return digits[:-1] + str((int(digits[-1]) + 1) % 10)


def _near_miss(code: str) -> str:
    """The right code with one digit changed and a valid check digit: well-formed, wrong."""
    digits = code.replace(" ", "")
    body = digits[:-1]
    changed = body[:10] + str((int(body[10]) + 1) % 10) + body[11:]
    return changed + damm_check_digit(changed)


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The global sign-in budget (R8 slow-down, tested in tests/portal) raised so that its
    waits stay out of these measurements."""
    return dataclasses.replace(settings, receipt_global_budget_per_minute=100_000)


@pytest.fixture
def heavy_argon2(services: Services) -> Services:
    """Argon2 heavy enough (tens of ms) that a path skipping it would stand out."""
    services.receipt_argon2 = Argon2Params(memory_kib=24 * 1024, iterations=1, lanes=1)
    return services


def test_R8_no_timing_difference_between_unknown_and_wrong_codes(
    heavy_argon2: Services, client: TestClient[Litestar], with_categories: None
) -> None:
    client.headers["accept-language"] = "en"
    code = receipt_of(submit(client, report_fields()))
    client.cookies = httpx.Cookies()
    classes = {
        "unknown": generate_receipt(),
        "near-miss": _near_miss(code),
        "over-long": "1" * (RECEIPT_MAX_INPUT + 1),  # the baseline: refused before derivation
        "typo": _typo(code),  # refused early too (fails the check digit)
    }
    page = client.get("/follow-up")
    csrf = CSRF_RE.search(page.text).group(1)  # type: ignore[union-attr]
    # the attempts counter is client-held; presenting the first value again (as an attacker
    # would) keeps the per-session slow-down out of the measurement
    attempts = ATTEMPTS_RE.search(page.text).group(1)  # type: ignore[union-attr]
    rng = random.Random(8)

    def measure(rounds: int = 15) -> tuple[dict[str, float], float]:
        """The fastest answer per class (noise on a shared machine only ever adds time), and
        the over-long baseline; every round sends each class once, in a random order."""
        times: dict[str, list[float]] = {name: [] for name in classes}
        for _ in range(rounds):
            order = list(classes)
            rng.shuffle(order)
            for name in order:
                data = {"_csrf_token": csrf, "attempts": attempts, "code": classes[name]}
                started = time.perf_counter()
                answer = client.post("/follow-up", data=data, follow_redirects=False)
                times[name].append(time.perf_counter() - started)
                assert answer.status_code == 400
        baseline = min(times.pop("over-long") + times.pop("typo"))
        return {name: min(values) for name, values in times.items()}, baseline

    # A real difference shows in every measurement; a burst of load from elsewhere does not:
    # up to three measurements, the first that is clean settles it.
    for _attempt in range(3):
        fastest, baseline = measure()
        # what skipping the derivation would save: the gap to the refused-early path
        cost = min(fastest.values()) - baseline
        spread = max(fastest.values()) - min(fastest.values())
        # the derivation is in the measured path, and the classes differ by less than a
        # third of its cost (about 1 ms in practice)
        if cost > 0.01 and spread < cost / 3:
            break
    assert cost > 0.01, (fastest, baseline)
    assert spread < cost / 3, (fastest, baseline)
    print("receipt sign-in fastest answer per class (s):", fastest, "baseline", baseline)


def test_R8_a_burst_of_wrong_codes_slows_the_form_but_the_right_code_still_signs_in(
    reporter: TestClient[Litestar], with_categories: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No lock-out: after enough wrong codes for the per-form delay to reach its cap, the right
    code, sent with the slowed form's own attempt counter as a browser would, still signs in,
    and waits no longer than the cap. The delay the handler asks for is recorded instead of
    slept (the app's only sleep on this path); the global bucket runs for real."""
    import asyncio
    import types

    import portal.web.reporter as reporter_routes
    from portal.kernel.throttle import AttemptCounter

    slept: list[float] = []

    async def record_sleep(seconds: float) -> None:
        slept.append(seconds)
        await asyncio.sleep(0)

    monkeypatch.setattr(reporter_routes, "asyncio", types.SimpleNamespace(sleep=record_sleep))
    code = receipt_of(submit(reporter, report_fields()))
    wrong = _near_miss(code)  # well-formed (valid check digit), one digit off
    free = reporter.app.state["services"].settings.receipt_session_budget
    cap = AttemptCounter(b"k" * 32, free_attempts=free).cap_s
    burst = free + 8  # 2**7 s > cap: the delay is capped well before the burst ends

    page = reporter.get("/follow-up")
    for _ in range(burst):
        csrf, attempts = CSRF_RE.search(page.text), ATTEMPTS_RE.search(page.text)
        assert csrf and attempts
        page = reporter.post(
            "/follow-up",
            data={"_csrf_token": csrf.group(1), "attempts": attempts.group(1), "code": wrong},
            follow_redirects=False,
        )
        assert page.status_code == 400, page.status_code
        assert "No report was found for this code." in page.text
    expected = [min(cap, 2.0 ** (n - free)) for n in range(free, burst)]
    assert slept == expected, slept
    assert slept[-1] == cap  # the slow-down is on, at its cap

    slept.clear()
    csrf, attempts = CSRF_RE.search(page.text), ATTEMPTS_RE.search(page.text)
    assert csrf and attempts
    signed = reporter.post(
        "/follow-up",
        data={"_csrf_token": csrf.group(1), "attempts": attempts.group(1), "code": code},
        follow_redirects=False,
    )
    assert signed.status_code == 303, signed.text
    assert signed.headers["location"] == "/follow-up/case"
    assert slept == [cap]  # slowed, within the capped delay, and let in
    page, _csrf, ids = case_page(reporter)
    assert len(ids) == 1 and "Received" in page.text
