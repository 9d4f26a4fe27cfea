"""Logs never hold a reporter's network identifiers, receipt codes, passwords or session ids."""

from __future__ import annotations

import json
import logging
import secrets

import pytest
from litestar import Litestar, Request, post
from litestar.testing import TestClient

from portal.kernel.logs import RedactionFilter, configure_logging, scrub

XFF = "203.0.113.77"
IPV6 = "2001:db8::8a2e:370:7334"
RECEIPT = "4821 0937 5563 1208 7741 9036 2254"
RECEIPT_DASHED = RECEIPT.replace(" ", "-")
PASSWORD = "hunter2-CANARY-PW"


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        (f"from {XFF} via proxy", XFF),
        (f"peer [{IPV6}]:443 said hi", IPV6),
        ("loopback ::1 ok", "::1"),
        ("mapped ::ffff:198.51.100.7", "198.51.100.7"),
        (f"code {RECEIPT}", "4821 0937"),
        (f"code {RECEIPT_DASHED}", "4821-0937"),
        ("digits 12345678901234567890123456789", "1234567890123456"),
        (f"password={PASSWORD}", PASSWORD),
        (f"password: {PASSWORD}", PASSWORD),
        ("session_id=abc123XYZ", "abc123XYZ"),
        ("cookie: portal_session=" + "ab" * 32, "ab" * 32),
        ("csrf " + secrets.token_hex(64), "token"),
        ("[SQL: INSERT INTO x VALUES (?)] [parameters: ('secret-name',)]", "secret-name"),
    ],
)
def test_scrub_removes(text: str, secret: str) -> None:
    cleaned = scrub(text)
    if secret == "token":
        assert not any(len(w) >= 32 for w in cleaned.split())
    else:
        assert secret not in cleaned


@pytest.mark.parametrize(
    "text",
    ["at 12:30:45 the job ran", "litestar 2.25.0", "case 23050001 triaged", "3 new reports"],
)
def test_scrub_keeps_ordinary_text(text: str) -> None:
    assert scrub(text) == text


def _json_lines(err: str) -> list[dict]:
    lines = []
    for line in err.splitlines():
        line = line.strip()
        if line.startswith("{"):
            lines.append(json.loads(line))
    return lines


def test_json_lines_and_extra_redaction(settings, capsys) -> None:
    configure_logging(settings)
    logger = logging.getLogger("portal.test")
    logger.warning(
        "sign-in failed for %s with code %s",
        XFF,
        RECEIPT,
        extra={
            "client_addr": XFF,
            "user_agent": "CANARY-UA-EXTRA",
            "forwarded_for": XFF,
            "referer": "https://example.org/CANARY-REF",
            "password": PASSWORD,
            "case_count": 3,
        },
    )
    err = capsys.readouterr().err
    entries = [e for e in _json_lines(err) if e.get("logger") == "portal.test"]
    assert entries, err
    entry = entries[-1]
    assert entry["level"] == "WARNING" and entry["case_count"] == 3
    for secret in (XFF, "CANARY-UA-EXTRA", "CANARY-REF", PASSWORD, "4821"):
        assert secret not in err


def test_filter_on_uvicorn_and_litestar_loggers_and_no_access_log(settings, capsys, caplog) -> None:
    configure_logging(settings)
    for name in ("uvicorn", "uvicorn.error", "litestar", ""):
        logger = logging.getLogger(name)
        assert any(isinstance(f, RedactionFilter) for f in logger.filters), name
    access = logging.getLogger("uvicorn.access")
    access.info('%s - "GET / HTTP/1.1" 200', f"{XFF}:5555")
    logging.getLogger("uvicorn.error").info("connection from %s", XFF)
    err = capsys.readouterr().err
    assert XFF not in err and XFF not in caplog.text


def test_exception_tracebacks_are_scrubbed(settings, capsys) -> None:
    configure_logging(settings)
    try:
        raise ValueError(f"bad code {RECEIPT} from {XFF}")
    except ValueError:
        logging.getLogger("portal.test").exception("failed")
    err = capsys.readouterr().err
    assert "ValueError" in err
    assert XFF not in err and "4821" not in err


@post("/test/careless", opt={"exclude_from_csrf": True}, status_code=200)
async def _careless(request: Request) -> dict[str, str]:
    """A deliberately careless handler: it logs what no handler should."""
    form = await request.form()
    log = logging.getLogger("portal.careless")
    log.info(
        "request from %s forwarded-for: %s user-agent: %s code %s",
        request.client.host if request.client else "-",
        request.headers.get("x-forwarded-for"),
        request.headers.get("user-agent"),
        form.get("receipt"),
        extra={"headers": dict(request.headers), "user_agent": request.headers.get("user-agent")},
    )
    if form.get("explode"):
        raise RuntimeError(
            f"receipt {form.get('receipt')} from {request.headers.get('x-forwarded-for')}"
        )
    return {"ok": "yes"}


def test_marked_values_sent_through_the_real_app_never_reach_logs(
    app: Litestar, client: TestClient, csrf_token, settings, capfd, caplog
) -> None:
    app.register(_careless)
    configure_logging(settings)
    canary_ua = "CANARY-UA-" + secrets.token_hex(6)
    headers = {
        "x-forwarded-for": XFF,
        "x-real-ip": XFF,
        "forwarded": f"for={XFF}",
        "user-agent": canary_ua,
        "referer": "https://example.org/CANARY-REFERER",
    }
    with caplog.at_level(logging.DEBUG):
        token = csrf_token(client, "/")
        client.post(
            "/lang",
            data={"_csrf_token": token, "lang": "en", "receipt": RECEIPT, "password": PASSWORD},
            headers=headers,
        )
        client.post("/test/careless", data={"receipt": RECEIPT}, headers=headers)
        client.post("/test/careless", data={"receipt": RECEIPT, "explode": "1"}, headers=headers)
        client.get("/no/such/page", headers=headers)
    out, err = capfd.readouterr()
    written = out + err + caplog.text + "".join(str(vars(r)) for r in caplog.records)
    for secret in (XFF, canary_ua, "CANARY-REFERER", "4821 0937", RECEIPT, PASSWORD):
        assert secret not in written, secret
    assert client.cookies.get("csrftoken") not in written
