"""Fixtures for the workspace tests: staff accounts and a signed-in browser."""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pyotp
import pytest
from litestar import Litestar
from litestar.testing import TestClient
from sqlalchemy import update

from investigator.domain.staff import add_user
from portal.kernel.db.models import User
from portal.kernel.services import Services

STRONG_PASSWORD = "correct horse battery staple 42"
_SECRET = re.compile(r'<code class="secret">([A-Z2-7 ]+)</code>')
_CSRF_FIELD = re.compile(r'name="_csrf_token"\s+value="([^"]+)"')


@dataclass
class Staff:
    user_id: str
    username: str
    password: str
    totp_secret: str | None = None


def form_token(html: str) -> str:
    match = _CSRF_FIELD.search(html)
    assert match, "no CSRF field on the page"
    return match.group(1)


def code_for(secret: str, offset_steps: int = 0) -> str:
    return pyotp.TOTP(secret).at(time.time() + 30 * offset_steps)


def in_app_loop(client: TestClient[Litestar], fn: Callable[[], Awaitable[Any]]) -> Any:
    """Run a coroutine on the app's event loop (the database engine is used there)."""
    return client.blocking_portal.call(fn)


@pytest.fixture
def make_staff(services: Services, client: TestClient[Litestar]) -> Callable[..., Staff]:
    """Create a staff account (synchronously, on the app's loop) for HTTP tests."""

    def make(*args: Any, **kwargs: Any) -> Staff:
        return in_app_loop(client, lambda: create_staff(services, *args, **kwargs))  # type: ignore[no-any-return]

    return make


async def create_staff(
    services: Services,
    username: str = "alice",
    roles: str = "investigator",
    *,
    password: str = STRONG_PASSWORD,
    must_change_password: bool = False,
    department: str | None = None,
) -> Staff:
    new = await add_user(
        services.db,
        services.argon2,
        pepper=services.keyring.password_pepper,
        username=username,
        display_name=username.title(),
        roles=roles,
        password=password,
        department=department,
        owner=True,  # as the installation's owner on the command line (owner-only roles)
    )
    if not must_change_password:
        async with services.db.write() as s:
            await s.execute(
                update(User).where(User.id == new.user.id).values(must_change_password=False)
            )
    return Staff(new.user.id, new.user.username, password)


class Browser:
    """A TestClient that follows the sign-in flow like a person would."""

    def __init__(self, client: TestClient[Litestar]) -> None:
        self.client = client

    def token(self, path: str = "/workspace/") -> str:
        response = self.client.get(path)
        assert response.status_code == 200, response.status_code
        return form_token(response.text)

    def password_step(self, username: str, password: str) -> Any:
        token = self.token()
        return self.client.post(
            "/workspace/signin",
            data={"_csrf_token": token, "username": username, "password": password},
            follow_redirects=False,
        )

    def enrol(self, staff: Staff) -> Any:
        response = self.password_step(staff.username, staff.password)
        assert response.status_code == 303, response.text
        assert response.headers["location"] == "/workspace/totp/enrol"
        page = self.client.get("/workspace/totp/enrol")
        match = _SECRET.search(page.text)
        assert match, page.text
        staff.totp_secret = match.group(1).replace(" ", "")
        return self.client.post(
            "/workspace/totp/enrol",
            data={"_csrf_token": form_token(page.text), "code": code_for(staff.totp_secret)},
            follow_redirects=False,
        )

    def code_step(self, code: str) -> Any:
        page = self.client.get("/workspace/totp")
        assert page.status_code == 200, page.status_code
        return self.client.post(
            "/workspace/totp",
            data={"_csrf_token": form_token(page.text), "code": code},
            follow_redirects=False,
        )

    def sign_in(self, staff: Staff, offset_steps: int = 1) -> Any:
        """Password and code for an enrolled account (a code of a later step than any used)."""
        response = self.password_step(staff.username, staff.password)
        assert response.headers["location"] == "/workspace/totp", response.text
        assert staff.totp_secret
        return self.code_step(code_for(staff.totp_secret, offset_steps))

    def sign_out(self) -> Any:
        token = self.token()
        return self.client.post(
            "/workspace/signout", data={"_csrf_token": token}, follow_redirects=False
        )


@pytest.fixture
def staff_client(client: TestClient[Litestar]) -> Browser:
    """English pages (the assertions read the English source strings)."""
    client.headers["accept-language"] = "en"
    return Browser(client)
