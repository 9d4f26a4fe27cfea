"""Error pages: calm, translated, never a detail; 404 the same for 'absent' and 'forbidden'."""

from __future__ import annotations

import logging

from litestar import Litestar, get, post
from litestar.exceptions import (
    ClientException,
    NotFoundException,
    TooManyRequestsException,
    ValidationException,
)
from litestar.params import FromQuery, JSONBody
from litestar.testing import TestClient

from portal.http.errors import exception_handlers
from portal.kernel.settings import Settings

LEAKS = ("Traceback", "SECRET-DETAIL", "SELECT", "/etc/", "RuntimeError", 'File "', ".py")


@get("/test/boom")
async def _boom() -> str:
    raise RuntimeError("SECRET-DETAIL /etc/passwd SELECT * FROM reports WHERE code='1'")


@get("/test/case")
async def _case(mode: FromQuery[str]) -> str:
    # The workspace raises NotFoundException for both; nothing else may differ.
    if mode == "absent":
        raise NotFoundException("no such case")
    raise NotFoundException()


@get("/test/throttled")
async def _throttled() -> str:
    raise TooManyRequestsException("SECRET-DETAIL budget", headers={"Retry-After": "60"})


@get("/test/invalid")
async def _invalid() -> str:
    raise ValidationException("SECRET-DETAIL field x")


@get("/test/teapot")
async def _teapot() -> str:
    raise ClientException("SECRET-DETAIL", status_code=418)


@post("/test/echo", opt={"exclude_from_csrf": True})
async def _echo(data: JSONBody[dict[str, str]]) -> dict[str, str]:
    return data


def _register(app: Litestar) -> None:
    for handler in (_boom, _case, _throttled, _invalid, _teapot, _echo):
        app.register(handler)


def _no_leak(text: str) -> None:
    for leak in LEAKS:
        assert leak not in text, leak


def test_unhandled_exception_renders_500_without_detail(
    app: Litestar, client: TestClient, caplog
) -> None:
    _register(app)
    with caplog.at_level(logging.ERROR, logger="portal.errors"):
        response = client.get("/test/boom", headers={"user-agent": "CANARY-UA-ERR"})
    assert response.status_code == 500
    assert response.headers["content-type"].startswith("text/html")
    assert "出现错误" in response.text
    _no_leak(response.text)
    assert response.headers["cache-control"] == "no-store"
    records = [r for r in caplog.records if r.name == "portal.errors"]
    assert records and "RuntimeError" in records[0].getMessage()
    assert "CANARY-UA-ERR" not in caplog.text


def test_404_page_and_translations(client: TestClient) -> None:
    response = client.get("/definitely/not/here")
    assert response.status_code == 404
    assert "页面不存在" in response.text
    english = client.get("/definitely/not/here", headers={"accept-language": "en"})
    assert "Page not found" in english.text and 'lang="en"' in english.text


def test_404_absent_and_forbidden_are_identical(app: Litestar, client: TestClient) -> None:
    _register(app)
    client.get("/")  # settle the CSRF cookie so both answers see the same cookie state
    first = client.get("/test/case", params={"mode": "absent"})
    second = client.get("/test/case", params={"mode": "forbidden"})
    assert first.status_code == second.status_code == 404
    assert first.text == second.text
    strip = {"set-cookie", "date"}
    assert {k: v for k, v in first.headers.items() if k not in strip} == {
        k: v for k, v in second.headers.items() if k not in strip
    }
    assert "no such case" not in first.text


def test_405_page(client: TestClient) -> None:
    response = client.delete("/")
    assert response.status_code == 405
    assert "不允许的操作" in response.text


def test_413_page(client: TestClient, csrf_token) -> None:
    token = csrf_token(client, "/")
    response = client.post(
        "/lang", data={"_csrf_token": token, "lang": "en", "pad": "x" * (2 * 1024 * 1024)}
    )
    assert response.status_code == 413
    assert "内容过大" in response.text


def test_413_on_a_handler_body(app: Litestar, client: TestClient) -> None:
    _register(app)
    response = client.post(
        "/test/echo",
        content=b"{" + b" " * (2 * 1024 * 1024) + b"}",
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 413
    assert "内容过大" in response.text


def test_400_429_and_other_codes_show_no_detail(app: Litestar, client: TestClient) -> None:
    _register(app)
    invalid = client.get("/test/invalid")
    assert invalid.status_code == 400 and "无法识别请求" in invalid.text
    throttled = client.get("/test/throttled")
    assert throttled.status_code == 429 and "尝试次数过多" in throttled.text
    assert throttled.headers["retry-after"] == "60"
    teapot = client.get("/test/teapot")
    assert teapot.status_code == 418 and "无法识别请求" in teapot.text
    malformed = client.post(
        "/test/echo", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert malformed.status_code == 400
    for response in (invalid, throttled, teapot, malformed):
        assert "SECRET-DETAIL" not in response.text


def test_schema_is_not_served(client: TestClient) -> None:
    for path in ("/schema", "/schema/openapi.json", "/schema/swagger"):
        assert client.get(path).status_code == 404


def test_json_clients_get_short_json(client: TestClient) -> None:
    response = client.get("/healthz/nope")
    assert response.status_code == 404
    assert response.json() == {"error": "not found", "status": 404}
    response = client.get("/nope", headers={"accept": "application/json"})
    assert response.json()["status"] == 404


def test_debug_page_only_in_development(tmp_path) -> None:
    base = {"data_dir": tmp_path, "database_url": "sqlite+aiosqlite:///x.db"}
    assert Exception in exception_handlers(Settings(mode="test", **base))
    assert Exception in exception_handlers(Settings(mode="production", **base))
    assert Exception not in exception_handlers(Settings(mode="development", debug=True, **base))
