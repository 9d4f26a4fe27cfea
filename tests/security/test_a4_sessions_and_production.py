"""A4 sessions on the real sign-in routes, and production-mode hardening.

Sessions (reporter receipt sign-in and staff password + TOTP): a planted session id is never
adopted; sign-in issues a new id; after sign-out the old cookie opens nothing; idle and absolute
timeouts end the session on the real pages; a TOTP code, once used (enrolment included), is
never accepted again, from any browser.

Production mode: no stack trace or detail from a handler that raises, no debug, /schema closed,
Secure cookies, HSTS.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import httpx
import pytest
from litestar import Litestar, get
from litestar.testing import TestClient

import portal.http.sessions as sessions
from portal.http.sessions import SESSION_COOKIE
from portal.kernel.services import Services
from portal.kernel.settings import Settings
from tests.conftest import BASE_URL
from tests.investigator.conftest import Browser, code_for, create_staff
from tests.investigator.ws_helpers import run
from tests.portal.test_reporter_journeys import receipt_of, report_fields, sign_in, submit

PLANTED = "f" * 64


def _reporter_code(client: TestClient[Litestar]) -> str:
    client.headers["accept-language"] = "en"
    code = receipt_of(submit(client, report_fields()))
    client.cookies = httpx.Cookies()
    return code


def _plant(client: TestClient[Litestar], value: str) -> None:
    """Replace the session cookie in the jar, as an attacker who set it would."""
    for cookie in list(client.cookies.jar):
        if cookie.name == SESSION_COOKIE:
            client.cookies.jar.clear(cookie.domain, cookie.path, cookie.name)
    client.cookies.set(SESSION_COOKIE, value, domain="testserver.local", path="/")


def _session_id(client: TestClient[Litestar]) -> str | None:
    values = [c.value for c in client.cookies.jar if c.name == SESSION_COOKIE]
    assert len(values) <= 1
    return values[0] if values else None


def _staff_in(client: TestClient[Litestar]) -> bool:
    page = client.get("/workspace/", follow_redirects=False)
    return page.status_code == 200 and 'action="/workspace/signout"' in page.text


def _case_ok(client: TestClient[Litestar]) -> bool:
    return client.get("/follow-up/case", follow_redirects=False).status_code == 200


def test_A4_reporter_session_fixation_sign_out_and_timeouts(
    client: TestClient[Litestar],
    settings: Settings,
    with_categories: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    code = _reporter_code(client)
    _plant(client, PLANTED)
    assert sign_in(client, code).status_code == 303
    issued = _session_id(client)
    assert issued and issued != PLANTED
    assert _case_ok(client)
    # the planted id opens nothing
    _plant(client, PLANTED)
    assert not _case_ok(client)
    # sign-out: the old cookie, replayed, opens nothing
    client.cookies = httpx.Cookies()
    assert sign_in(client, code).status_code == 303
    old = _session_id(client)
    page = client.get("/follow-up/case")
    token = page.text.split('name="_csrf_token" value="', 1)[1].split('"', 1)[0]
    client.post("/follow-up/sign-out", data={"_csrf_token": token}, follow_redirects=False)
    _plant(client, old or "")
    assert not _case_ok(client)
    # idle and absolute timeouts, on the real follow-up page
    clock = [sessions._now()]
    monkeypatch.setattr(sessions, "_now", lambda: clock[0])
    client.cookies = httpx.Cookies()
    assert sign_in(client, code).status_code == 303
    clock[0] += settings.reporter_idle_timeout_s + 1
    assert not _case_ok(client)  # idle
    client.cookies = httpx.Cookies()
    assert sign_in(client, code).status_code == 303
    step = settings.reporter_idle_timeout_s - 10
    elapsed = 0
    while elapsed + step <= settings.reporter_absolute_timeout_s:
        clock[0] += step
        elapsed += step
        assert _case_ok(client)  # busy: kept alive ...
    clock[0] += step
    assert not _case_ok(client)  # ... until the absolute limit


def test_A4_staff_fixation_sign_out_timeout_and_totp_replay(
    client: TestClient[Litestar],
    services: Services,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    client.headers["accept-language"] = "en"
    staff = run(client, lambda: create_staff(services, "sam", "investigator"))
    browser = Browser(client)
    _plant(client, PLANTED)
    assert browser.enrol(staff).status_code == 303
    assert _session_id(client) not in (None, PLANTED)
    assert staff.totp_secret
    enrol_code = code_for(staff.totp_secret)
    assert _staff_in(client)
    old = _session_id(client)
    browser.sign_out()
    _plant(client, old or "")
    assert not _staff_in(client)
    # the enrolment code, replayed in another browser within its window, is refused
    client.cookies = httpx.Cookies()
    assert browser.password_step(staff.username, staff.password).status_code == 303
    replay = browser.code_step(enrol_code)
    assert "That code was not accepted." in replay.text
    # a fresh code works once; the same code in a second browser is refused
    fresh = code_for(staff.totp_secret, 1)
    assert browser.code_step(fresh).headers["location"] == "/workspace/"
    signed_in = httpx.Cookies(client.cookies)
    client.cookies = httpx.Cookies()
    assert browser.password_step(staff.username, staff.password).status_code == 303
    assert "That code was not accepted." in browser.code_step(fresh).text
    # idle timeout on the real workspace home
    client.cookies = signed_in
    assert _staff_in(client)
    clock = [sessions._now() + settings.staff_idle_timeout_s + 1]
    monkeypatch.setattr(sessions, "_now", lambda: clock[0])
    assert not _staff_in(client)


# --- production mode ------------------------------------------------------------------------


@get("/test/raise", opt={"skip_session": True})
async def _raise() -> str:
    raise RuntimeError("SECRET-DETAIL select * from identities /etc/portal")


@pytest.fixture
def production(settings: Settings, services: Services) -> Iterator[TestClient[Litestar]]:
    """The real app in production mode (Argon2 left at the test profile, for speed only)."""
    from portal.app import create_app

    prod = dataclasses.replace(settings, mode="production", debug=False)
    services.settings = prod
    app = create_app(prod, services)
    app.register(_raise)
    with TestClient(app, base_url=BASE_URL, raise_server_exceptions=False) as test_client:
        test_client.headers["accept-language"] = "en"
        yield test_client


def test_production_mode_hardening(production: TestClient[Litestar]) -> None:
    assert production.app.debug is False
    boom = production.get("/test/raise")
    assert boom.status_code == 500
    for leak in ("Traceback", "SECRET-DETAIL", "RuntimeError", "identities", ".py", "/etc/"):
        assert leak not in boom.text
    for path in ("/schema", "/schema/openapi.json", "/schema/swagger", "/openapi.json"):
        assert production.get(path).status_code == 404, path
    assert production.get("/").headers["strict-transport-security"].startswith("max-age=")
    production.cookies = httpx.Cookies()
    page = production.get("/report/new")
    assert page.headers["strict-transport-security"].startswith("max-age=")
    cookies = page.headers.get_list("set-cookie")
    assert cookies and all("secure" in c.lower() for c in cookies)
    # the session cookie a sign-in sets is Secure too
    code = receipt_of(submit(production, report_fields()))
    production.cookies = httpx.Cookies()
    answer = sign_in(production, code)
    assert answer.status_code == 303
    session_cookies = [
        c for c in answer.headers.get_list("set-cookie") if c.startswith(SESSION_COOKIE)
    ]
    assert session_cookies and all(
        "secure" in c.lower() and "httponly" in c.lower() for c in session_cookies
    )
