"""Redis unreachable or refusing our password (issue 14, point 2): the routes that need it answer
503 with Retry-After and the translated "temporarily unavailable" page - never 429 (the
reporter's follow-up used to say "try again in a minute" forever) nor 500 (staff sign-in) - and
the outage is logged once, with no identifier, address or URL. `/readyz` names Redis.

Real Redis servers: a port nothing listens on, and a private `redis-server --requirepass` on a
free port, asked with a wrong password and with the right one."""

from __future__ import annotations

import dataclasses
import logging
import secrets
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import TestClient

from crypto.receipts import generate_receipt
from portal.kernel import outage
from portal.kernel.db.engine import RETRY_AFTER_S
from portal.kernel.settings import Settings
from tests.portal.test_reporter_journeys import ATTEMPTS_RE, CSRF_RE

PASSWORD = "right-" + secrets.token_hex(8)
# a well-formed code that is nobody's: junk would be refused before the shared budget is asked
CODE = generate_receipt()  # already formatted for display
LEAKS = ("Traceback", 'File "', "127.0.0.1", PASSWORD, "wrong-password", "redis://")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def private_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """A redis-server of our own that wants a password; yields its port."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed")
    port = _free_port()
    workdir: Path = tmp_path_factory.mktemp("redis")
    proc = subprocess.Popen(
        [
            binary, "--port", str(port), "--bind", "127.0.0.1", "--requirepass", PASSWORD,
            "--save", "", "--appendonly", "no", "--dir", str(workdir),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    break
            except OSError:
                time.sleep(0.05)
        else:
            pytest.fail("the private redis-server did not start")
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _url(kind: str, port: int) -> str:
    if kind == "closed":
        return f"redis://:{PASSWORD}@127.0.0.1:{_free_port()}/0"  # nothing listens there
    if kind == "wrong-password":
        return f"redis://:wrong-password@127.0.0.1:{port}/0"
    return f"redis://:{PASSWORD}@127.0.0.1:{port}/0"


@pytest.fixture
def settings(settings: Settings, request: pytest.FixtureRequest, private_redis: int) -> Settings:
    kind = getattr(request, "param", "right-password")
    return dataclasses.replace(
        settings,
        redis_url=_url(kind, private_redis),
        redis_prefix=f"t{secrets.token_hex(4)}",
    )


@pytest.fixture(autouse=True)
def _no_outage_left_over() -> Iterator[None]:
    outage.reset()
    yield
    outage.reset()


BROKEN = pytest.mark.parametrize("settings", ["closed", "wrong-password"], indirect=True)


def _assert_unavailable(response: Any) -> None:
    assert response.status_code == 503, response.status_code
    assert response.headers["retry-after"] == str(RETRY_AFTER_S)
    assert response.headers["content-type"].startswith("text/html")
    assert 'class="error-page"' in response.text
    for leak in LEAKS:
        assert leak not in response.text, leak


def _follow_up(client: TestClient[Litestar], lang: str) -> Any:
    page = client.get("/follow-up", headers={"accept-language": lang})
    assert page.status_code == 200, page.status_code
    csrf, attempts = CSRF_RE.search(page.text), ATTEMPTS_RE.search(page.text)
    assert csrf and attempts
    return client.post(
        "/follow-up",
        data={"_csrf_token": csrf.group(1), "attempts": attempts.group(1), "code": CODE},
        headers={"accept-language": lang},
        follow_redirects=False,
    )


@BROKEN
def test_follow_up_answers_a_translated_503_and_the_outage_is_logged_once(
    client: TestClient[Litestar], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO):
        english = _follow_up(client, "en")
        chinese = _follow_up(client, "zh-CN")
        taiwan = _follow_up(client, "zh-TW")
    _assert_unavailable(english)
    assert "Temporarily unavailable" in english.text
    _assert_unavailable(chinese)
    assert "服务暂时不可用" in chinese.text
    _assert_unavailable(taiwan)
    assert "服務暫時無法使用" in taiwan.text
    lines = [r for r in caplog.records if r.name == "portal.kernel.outage"]
    assert len(lines) == 1, [r.getMessage() for r in lines]
    message = lines[0].getMessage()
    assert message.startswith("redis unavailable (") and "Error" in message, message
    assert lines[0].exc_info is None and not lines[0].exc_text
    for leak in LEAKS:
        assert leak not in caplog.text, leak
    assert not [r for r in caplog.records if r.name == "portal.errors"]  # no 500


@BROKEN
def test_staff_sign_in_answers_503_not_500(
    client: TestClient[Litestar], caplog: pytest.LogCaptureFixture
) -> None:
    page = client.get("/workspace/", headers={"accept-language": "en"})
    assert page.status_code == 200
    csrf = CSRF_RE.search(page.text)
    assert csrf
    with caplog.at_level(logging.INFO):
        answer = client.post(
            "/workspace/signin",
            data={"_csrf_token": csrf.group(1), "username": "someone", "password": "a password"},
            headers={"accept-language": "en"},
            follow_redirects=False,
        )
    _assert_unavailable(answer)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR and r.exc_info]
    assert not [r for r in caplog.records if r.name == "portal.errors"]


@BROKEN
def test_a_session_cookie_while_redis_is_down_answers_503(
    client: TestClient[Litestar], caplog: pytest.LogCaptureFixture
) -> None:
    client.cookies.set("portal_session", secrets.token_hex(32))
    with caplog.at_level(logging.INFO):
        for path in ("/workspace/", "/follow-up/case"):
            _assert_unavailable(client.get(path, headers={"accept-language": "en"}))
    assert not [r for r in caplog.records if r.name == "portal.errors"]
    assert len([r for r in caplog.records if r.name == "portal.kernel.outage"]) == 1


@BROKEN
def test_readiness_names_redis(
    client: TestClient[Litestar], request: pytest.FixtureRequest
) -> None:
    answer = client.get("/readyz")
    assert answer.status_code == 503
    assert answer.headers["retry-after"] == str(RETRY_AFTER_S)
    body = answer.json()
    assert body["status"] == "unavailable"
    assert body["failed"] == ["redis"]
    expected = "unreachable" if "closed" in request.node.callspec.id else "authentication failed"
    assert body["checks"]["redis"] == expected
    assert body["checks"]["database"] == "ok" and body["checks"]["keyring"] == "ok"
    for leak in LEAKS:
        assert leak not in answer.text
    assert client.get("/healthz").status_code == 200  # liveness: the process itself is fine


def test_with_the_right_password_everything_works(client: TestClient[Litestar]) -> None:
    ready = client.get("/readyz")
    assert ready.status_code == 200, ready.text
    assert ready.json()["checks"]["redis"] == "ok"
    answer = _follow_up(client, "en")
    assert answer.status_code == 400  # a wrong code, evaluated: Redis answered
    assert "Temporarily unavailable" not in answer.text


async def test_the_outage_and_its_end_are_logged_once_each(
    private_redis: int, caplog: pytest.LogCaptureFixture
) -> None:
    from portal.kernel.outage import RedisUnavailable
    from portal.kernel.redis_state import redis_client, redis_guard

    down = redis_client(_url("closed", private_redis))
    up = redis_client(_url("right-password", private_redis))
    try:
        with caplog.at_level(logging.INFO):
            for _ in range(3):
                with pytest.raises(RedisUnavailable):
                    async with redis_guard():
                        await down.ping()
            for _ in range(2):
                async with redis_guard():
                    assert await up.ping()
    finally:
        await down.aclose()
        await up.aclose()
    lines = [r.getMessage() for r in caplog.records if r.name == "portal.kernel.outage"]
    assert len(lines) == 2, lines
    assert lines[0] == "redis unavailable (ConnectionError)"
    assert lines[1].startswith("redis available again after ")
    assert lines[1].endswith("(3 requests refused meanwhile)")
