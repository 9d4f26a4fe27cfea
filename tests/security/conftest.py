"""The auditor's checklist (requirements sections 1, 3 and 4) through the real app.

Fixtures here only assemble what the other suites already provide: the reporter's HTTP helpers
(tests/portal/test_reporter_journeys.py), the staff sign-in flow (tests/investigator/conftest.py
and ws_helpers.Desk). The app serves both the reporter portal and the workspace.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx
import pytest
from litestar import Litestar
from litestar.testing import TestClient

from portal.kernel.services import Services
from tests.investigator.ws_helpers import Desk
from tests.portal.test_reporter_journeys import (
    case_page,
    receipt_of,
    report_fields,
    sign_in,
    submit,
)
from tests.portal.test_reporter_journeys import (
    with_categories as with_categories,  # re-exported fixture
)


@pytest.fixture
def reporter(client: TestClient[Litestar]) -> TestClient[Litestar]:
    client.headers["accept-language"] = "en"
    return client


@dataclass
class World:
    """One reporter with a case (signed in, own cookie jar) and a desk of staff."""

    client: TestClient[Litestar]
    desk: Desk
    code: str
    case_id: str
    reporter_jar: httpx.Cookies

    def as_reporter(self) -> TestClient[Litestar]:
        self.desk.anonymous()
        self.client.cookies = httpx.Cookies(self.reporter_jar)
        return self.client

    def reporter_token(self) -> str:
        _page, csrf, _ids = case_page(self.as_reporter())
        return csrf


def make_world(
    client: TestClient[Litestar],
    services: Services,
    fields: list[tuple[str, str]] | None = None,
    files: list | None = None,
) -> World:
    client.headers["accept-language"] = "en"
    desk = Desk(client, services)  # staff exist before the report, so it is wrapped for them
    desk.add("intake", "intake_officer")
    desk.add("admin", "administrator")
    response = submit(client, fields or report_fields(), files or [])
    assert response.status_code == 200, response.text
    code = receipt_of(response)
    assert sign_in(client, code).status_code == 303
    _page, _csrf, ids = case_page(client)
    jar = httpx.Cookies(client.cookies)
    client.cookies = httpx.Cookies()
    return World(client, desk, code, ids[0], jar)


@pytest.fixture
def world(reporter: TestClient[Litestar], services: Services, with_categories: None) -> World:
    return make_world(reporter, services)
