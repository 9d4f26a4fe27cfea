"""Security headers on every response (R1, litestar#3829: Litestar has no such middleware).

`SecurityHeadersMiddleware` is a pure ASGI middleware. Litestar applies app-level middleware
to matched routes only, and errors raised before a handler runs (unknown path, wrong method,
CSRF refusal, body too large while the CSRF middleware parses a form) are answered by the
app-level exception handlers without passing through it: `portal.http.errors` therefore adds
the same headers with `security_headers()`. Both *replace* existing values, never add twice.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from litestar.datastructures import MutableScopeHeaders

if TYPE_CHECKING:
    from litestar.types import ASGIApp, Message, Receive, Scope, Send

    from portal.kernel.settings import Settings

__all__ = ["CSP", "SecurityHeadersMiddleware", "security_headers"]

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; connect-src 'self'"
)
PERMISSIONS_POLICY = ", ".join(
    f"{feature}=()"
    for feature in (
        "accelerometer",
        "autoplay",
        "bluetooth",
        "browsing-topics",
        "camera",
        "display-capture",
        "encrypted-media",
        "fullscreen",
        "geolocation",
        "gyroscope",
        "hid",
        "idle-detection",
        "interest-cohort",
        "magnetometer",
        "microphone",
        "midi",
        "payment",
        "picture-in-picture",
        "publickey-credentials-get",
        "screen-wake-lock",
        "serial",
        "usb",
        "xr-spatial-tracking",
    )
)
HSTS = "max-age=63072000; includeSubDomains"
STATIC_PREFIX = "/static/"
WORKSPACE_PREFIX = "/workspace"

_COMMON: tuple[tuple[str, str], ...] = (
    ("content-security-policy", CSP),
    ("referrer-policy", "no-referrer"),
    ("x-frame-options", "DENY"),
    ("x-content-type-options", "nosniff"),
    ("permissions-policy", PERMISSIONS_POLICY),
    ("cross-origin-opener-policy", "same-origin"),
    ("cross-origin-resource-policy", "same-origin"),
    ("x-permitted-cross-domain-policies", "none"),
)


def _is_static(path: str) -> bool:
    return path.startswith(STATIC_PREFIX) or path == STATIC_PREFIX.rstrip("/")


def _is_reporter_page(path: str) -> bool:
    return not (
        _is_static(path) or path == WORKSPACE_PREFIX or path.startswith(WORKSPACE_PREFIX + "/")
    )


def security_headers(
    settings: Settings, path: str, content_type: str | None, query_string: bytes = b""
) -> list[tuple[str, str]]:
    """The headers one response must carry, as (lower-case name, value) pairs."""
    headers = list(_COMMON)
    if _is_static(path):
        headers.append(("cache-control", "public, max-age=3600"))
    else:
        headers.append(("cache-control", "no-store"))
        headers.append(("pragma", "no-cache"))
    if settings.mode == "production":
        headers.append(("strict-transport-security", HSTS))
    is_html = (content_type or "").lower().startswith("text/html")
    if settings.onion_address and is_html and _is_reporter_page(path):
        target = f"http://{settings.onion_address}{path}"
        if query_string:
            target += "?" + query_string.decode("latin-1")
        headers.append(("onion-location", target))
    return headers


def apply_security_headers(
    headers: MutableScopeHeaders,
    settings: Settings,
    path: str,
    query_string: bytes = b"",
) -> None:
    """Set (replace) the security headers on an outgoing message and drop `Server`."""
    if "server" in headers:
        del headers["server"]
    if "x-powered-by" in headers:
        del headers["x-powered-by"]
    for name, value in security_headers(settings, path, headers.get("content-type"), query_string):
        headers[name] = value


class SecurityHeadersMiddleware:
    """Pure ASGI middleware: `DefineMiddleware(SecurityHeadersMiddleware, settings=settings)`."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "/")
        query: bytes = scope.get("query_string", b"")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableScopeHeaders.from_message(message)
                apply_security_headers(headers, self.settings, path, query)
            await send(message)

        await self.app(scope, receive, send_with_headers)
