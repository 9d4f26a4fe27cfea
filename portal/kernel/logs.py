"""Structured, redacted logging (requirements R8, R9).

`configure_logging(settings)` sends JSON lines to stderr and installs `RedactionFilter`
three ways, so that no code path can write a reporter's network identifiers or secrets:

1. a log-record factory that scrubs the message, arguments and traceback of *every* record
   at creation, whatever logger or handler later sees it (it survives a later
   `logging.config.dictConfig`, such as the one Litestar runs for its default config);
2. the filter on the root logger, on our stderr handler and on the uvicorn, litestar and
   application loggers (it also drops sensitive `extra=` attributes, which are attached after
   the factory runs);
3. a JSON formatter that writes only plain scalar extras.

What is scrubbed: IPv4/IPv6 literals, runs of 16 or more digits (receipt codes, with or
without group separators), long hex runs (session ids, CSRF tokens), `key=value` pairs for
password/secret/token/cookie/session/receipt keys, and SQLAlchemy parameter lists.
Request bodies and headers are never logged by this code base: do not pass them.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import logging
import re
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from portal.kernel.settings import Settings

__all__ = ["JsonFormatter", "RedactionFilter", "configure_logging", "scrub"]

REDACTED = "[redacted]"

# Loggers that get the filter directly (records are scrubbed before any handler sees them).
FILTERED_LOGGERS: tuple[str, ...] = (
    "",
    "uvicorn",
    "uvicorn.error",
    "uvicorn.access",
    "litestar",
    "portal",
    "investigator",
    "crypto",
    "sqlalchemy",
    "alembic",
    "asyncio",
)

# Sub-strings of `extra=` keys that are never written.
_SENSITIVE_KEY_PARTS: tuple[str, ...] = (
    "addr",
    "client",
    "remote",
    "forwarded",
    "agent",
    "referer",
    "referrer",
    "receipt",
    "password",
    "passwd",
    "secret",
    "token",
    "cookie",
    "session",
    "header",
    "scope",
    "request",
    "body",
    "form",
    "report",
    "identity",
    "email",
    "phone",
    "private",
)
_SENSITIVE_KEYS_EXACT = frozenset({"ip", "ua", "host", "peer", "data", "payload"})

# Attributes every LogRecord has; anything else came from `extra=`.
_STANDARD_ATTRS = frozenset(
    vars(logging.LogRecord("x", logging.INFO, "x", 0, "x", None, None)).keys()
    | {"message", "asctime", "taskName", "_portal_scrubbed"}
)

_DIGIT_RUN = re.compile(r"\d(?:[ \-_./]?\d){15,}")
_HEX_RUN = re.compile(r"(?<![0-9A-Za-z])[0-9A-Fa-f]{32,}(?![0-9A-Za-z])")
_IPV4 = re.compile(r"(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?![\d.])")
_IPV6_CANDIDATE = re.compile(r"\[?[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f.%\w]{0,40}){2,}\]?")
_KEY_VALUE = re.compile(
    r"(?i)\b([\w\-]*(?:password|passwd|secret|token|cookie|session|receipt|authorization"
    r"|user[-_]?agent|forwarded|referer)[\w\-]*)(\s*[=:]\s*)(\"[^\"]*\"|'[^']*'|[^\s,;&]+)"
)
_SQL_PARAMS = re.compile(r"\[parameters: .*?\](?=\s*(?:\(|$))", re.DOTALL)


def _ip_or_none(token: str) -> bool:
    candidate = token.strip("[]")
    candidate = candidate.split("%", 1)[0]
    try:
        ipaddress.ip_address(candidate)
    except ValueError:
        return False
    return True


def _scrub_ipv6(match: re.Match[str]) -> str:
    token = match.group(0)
    return "[ip]" if _ip_or_none(token) else token


def scrub(text: str) -> str:
    """Remove network identifiers, long numbers, tokens and secret key=value pairs."""
    if not text:
        return text
    text = _SQL_PARAMS.sub("[parameters: redacted]", text)
    text = _KEY_VALUE.sub(lambda m: f"{m.group(1)}{m.group(2)}{REDACTED}", text)
    text = _IPV6_CANDIDATE.sub(_scrub_ipv6, text)
    text = _IPV4.sub("[ip]", text)
    text = _HEX_RUN.sub(REDACTED, text)
    return _DIGIT_RUN.sub(REDACTED, text)


def _is_sensitive_key(key: str) -> bool:
    low = key.lower()
    return low in _SENSITIVE_KEYS_EXACT or any(part in low for part in _SENSITIVE_KEY_PARTS)


def _scrub_record(record: logging.LogRecord) -> None:
    """Scrub a record in place: message (with its args) and traceback. Idempotent."""
    if getattr(record, "_portal_scrubbed", False):
        return
    try:
        message = record.getMessage()
    except Exception:  # noqa: BLE001 - a broken format string must not hide the record
        message = str(record.msg)
    record.msg = scrub(message)
    record.args = None
    if record.exc_info:
        formatted = logging.Formatter().formatException(record.exc_info)
        record.exc_text = scrub(formatted)
        record.exc_info = None
    elif record.exc_text:
        record.exc_text = scrub(record.exc_text)
    if record.stack_info:
        record.stack_info = scrub(record.stack_info)
    record._portal_scrubbed = True


class RedactionFilter(logging.Filter):
    """Scrubs every record it sees and drops sensitive `extra=` attributes. Never rejects."""

    def filter(self, record: logging.LogRecord) -> bool:
        _scrub_record(record)
        for key in [k for k in vars(record) if k not in _STANDARD_ATTRS]:
            if _is_sensitive_key(key):
                delattr(record, key)
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, msg, optional exc and scalar extras."""

    def format(self, record: logging.LogRecord) -> str:
        _scrub_record(record)
        entry: dict[str, Any] = {
            "ts": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.msg if isinstance(record.msg, str) else scrub(str(record.msg)),
        }
        if record.exc_text:
            entry["exc"] = record.exc_text
        for key, value in vars(record).items():
            if key in _STANDARD_ATTRS or key in entry or _is_sensitive_key(key):
                continue
            if isinstance(value, bool | int | float) or value is None:
                entry[key] = value
            elif isinstance(value, str):
                entry[key] = scrub(value)
        return json.dumps(entry, ensure_ascii=False)


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever `sys.stderr` is at emit time (test capture, daemon redirection)."""

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)


_FILTER = RedactionFilter()
_HANDLER_NAME = "portal-stderr"


def _install_record_factory() -> None:
    current = logging.getLogRecordFactory()
    if getattr(current, "_portal_redacting", False):
        return

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = current(*args, **kwargs)
        _scrub_record(record)
        return record

    factory._portal_redacting = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)


def _ensure_filter(target: logging.Logger | logging.Handler) -> None:
    if not any(isinstance(f, RedactionFilter) for f in target.filters):
        target.addFilter(_FILTER)


def configure_logging(settings: Settings) -> None:
    """Idempotent: JSON lines to stderr, redaction everywhere, no access log."""
    _install_record_factory()
    root = logging.getLogger()
    handler: logging.Handler | None = next(
        (h for h in root.handlers if h.get_name() == _HANDLER_NAME), None
    )
    if handler is None:
        handler = _StderrHandler(sys.stderr)
        handler.set_name(_HANDLER_NAME)
        handler.setFormatter(JsonFormatter())
        root.addHandler(handler)
    _ensure_filter(handler)
    root.setLevel(logging.DEBUG if settings.debug else logging.INFO)
    for name in FILTERED_LOGGERS:
        _ensure_filter(logging.getLogger(name))
    # An access log would record every reporter's address (R9): off, whatever uvicorn says.
    access = logging.getLogger("uvicorn.access")
    access.handlers.clear()
    access.propagate = False
    access.disabled = True
    access.setLevel(logging.CRITICAL + 1)


def log_exception(logger: logging.Logger, message: str, exc: BaseException) -> None:
    """Log an exception with its traceback (scrubbed) and nothing about the request."""
    logger.error(message, exc_info=(type(exc), exc, exc.__traceback__))
