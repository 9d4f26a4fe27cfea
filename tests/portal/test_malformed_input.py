"""Malformed tokens, cookies and headers answer 400 or 403, never 500, and leave no ERROR
(no traceback) in the log; a client that disconnects mid-body logs at most one INFO line
(issue 14, point 6). Each input goes through the real app; the log is read with caplog."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import TestClient

NON_ASCII_TOKEN = "é" * 128  # the length of a real token, not ASCII
Client = TestClient[Litestar]


def _errors(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info or r.exc_text]


@pytest.mark.parametrize(
    ("case", "status"),
    [
        ("form token not ASCII", 403),
        ("cookie not ASCII", 403),
        ("header token not ASCII", 403),
        ("form token of mixed ASCII and not", 403),
        ("session cookie not ASCII", 200),  # no session: the language is set (redirect followed)
        ("session cookie of the right length not ASCII", 400),  # no session: "code not found"
    ],
)
def test_malformed_csrf_and_session_input_is_refused_without_an_error(
    client: Client,
    csrf_token: Callable[[Client, str], str],
    caplog: pytest.LogCaptureFixture,
    case: str,
    status: int,
) -> None:
    good = csrf_token(client, "/")
    cookie = client.cookies.get("csrftoken") or ""
    client.cookies.clear()  # every cookie goes in a raw header, as a client may send it
    form = {"lang": "en", "next": "/"}

    def post(path: str, token: str, cookies: str, **headers: bytes) -> Any:
        raw = {"cookie": cookies.encode("latin-1"), **headers}
        return client.post(path, data={"_csrf_token": token, **form}, headers=raw)  # type: ignore[arg-type]

    with caplog.at_level(logging.DEBUG):
        if case == "form token not ASCII":
            response = post("/lang", NON_ASCII_TOKEN, f"csrftoken={cookie}")
        elif case == "cookie not ASCII":
            response = post("/lang", good, "csrftoken=" + "\xfc" * 128)
        elif case == "header token not ASCII":
            response = post("/lang", "", f"csrftoken={cookie}", **{"x-csrftoken": b"\xfc" * 128})
        elif case == "form token of mixed ASCII and not":
            response = post("/lang", good[:-1] + "\u00df", f"csrftoken={cookie}")
        elif case == "session cookie not ASCII":
            response = post("/lang", good, f"csrftoken={cookie}; portal_session=" + "\xe4" * 20)
        else:
            response = post(
                "/follow-up", good, f"csrftoken={cookie}; portal_session=" + "\xe4" * 64
            )
    assert response.status_code == status, (case, response.status_code)
    assert not _errors(caplog), [r.getMessage() for r in _errors(caplog)]


@pytest.mark.parametrize(
    "headers",
    [
        {"cookie": "csrftoken=\xe9\xe9; portal_session=\xff"},
        {"cookie": '=;;;=";\x7f; a'},
        {"content-type": "multipart/form-data; boundary="},
        {"content-type": "application/x-www-form-urlencoded; charset=\xe9"},
        {"accept-language": "\xe9\xe9;q=\xff, zh;q=abc"},
        {"origin": "http://[::1"},
        {"sec-fetch-site": "\xe9"},
    ],
    ids=[
        "cookie-latin1",
        "cookie-garbage",
        "empty-boundary",
        "odd-charset",
        "accept-language",
        "origin-bad-ipv6",
        "sec-fetch-site",
    ],
)
@pytest.mark.usefixtures("readers")  # the report form is open only with readers (C7)
def test_odd_headers_never_answer_500(
    client: Client,
    csrf_token: Callable[[Client, str], str],
    caplog: pytest.LogCaptureFixture,
    headers: dict[str, str],
) -> None:
    token = csrf_token(client, "/")
    raw = {k: v.encode("latin-1") for k, v in headers.items()}
    with caplog.at_level(logging.DEBUG):
        for path in ("/lang", "/follow-up", "/report"):
            response = client.post(
                path,
                content=f"_csrf_token={token}&lang=en&next=/".encode(),
                headers={"content-type": "application/x-www-form-urlencoded", **raw},  # type: ignore[dict-item]
            )
            assert response.status_code in (200, 303, 400, 403, 413), (path, response.status_code)
        response = client.get("/", headers=raw)  # type: ignore[arg-type]
        assert response.status_code in (200, 400), response.status_code
    assert not _errors(caplog), [r.getMessage() for r in _errors(caplog)]


async def _disconnect_midway(app: Litestar, path: str, content_type: str) -> list[dict[str, Any]]:
    """Send half a body, then `http.disconnect`, as uvicorn does when the client goes away."""
    messages = [
        {
            "type": "http.request",
            "body": b"--b\r\nContent-Disposition: form-data; ",
            "more_body": True,
        },
        {"type": "http.disconnect"},
    ]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        if messages:
            return messages.pop(0)
        await asyncio.sleep(3600)  # pragma: no cover - nothing more will come
        raise AssertionError

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "https",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [
            (b"host", b"testserver.local"),
            (b"content-type", content_type.encode()),
            (b"content-length", b"100000"),
        ],
        "client": ("127.0.0.1", 1234),
        "server": ("testserver.local", 443),
        "state": {},
    }
    await asyncio.wait_for(app(scope, receive, send), timeout=30)  # type: ignore[arg-type]
    return sent


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("/report", "multipart/form-data; boundary=b"),  # the streaming upload route
        ("/follow-up", "application/x-www-form-urlencoded"),  # a form the CSRF check reads
        ("/lang", "multipart/form-data; boundary=b"),
    ],
)
def test_a_client_that_disconnects_mid_body_logs_at_most_one_info_line(
    client: Client, caplog: pytest.LogCaptureFixture, path: str, content_type: str
) -> None:
    app: Litestar = client.app
    with caplog.at_level(logging.DEBUG):
        sent = client.blocking_portal.call(_disconnect_midway, app, path, content_type)  # type: ignore[union-attr]
    starts = [m for m in sent if m["type"] == "http.response.start"]
    assert all(m["status"] < 500 for m in starts), starts
    assert not _errors(caplog), [r.getMessage() for r in _errors(caplog)]
    ours = [
        r for r in caplog.records if r.levelno >= logging.INFO and "disconnect" in r.getMessage()
    ]
    assert len(ours) == 1, [r.getMessage() for r in ours]  # one INFO line, no more
    assert ours[0].levelno == logging.INFO
    others = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert not others, [r.getMessage() for r in others]
