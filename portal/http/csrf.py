"""CSRF protection (A4): Litestar's double-submit middleware, plus what it cannot do.

For other engineers
-------------------
* Every HTML form that POSTs renders the token field first::

      <form method="post" action="...">
        {{ csrf_input | safe }}
        ...

  (`csrf_input` is a plain string in Litestar's template context, so `| safe` is required:
  litestar#1922.) `csrf_token()` is also available as a template callable.
* Streaming upload routes are excluded from the middleware (it would spool multipart files to
  disk in plaintext) with `opt={"exclude_from_csrf": True}`; the handler must then read the
  `_csrf_token` field, which the form sends before any file, and call
  `verify_csrf_token(request, submitted)`; refuse with 403 when it returns False.
* `PortalCSRFMiddleware` is Litestar's middleware with one fix: a token or cookie holding a
  non-ASCII character is a mismatch (403), not a `TypeError` from `hmac.compare_digest` (500
  and an ERROR traceback that any stranger could repeat). The app installs it with
  `csrf_middleware(config)` and keeps the config in `app.state["csrf_config"]` (Litestar's own
  `csrf_config=` would add the unfixed middleware).
* `OriginCheckMiddleware` refuses state-changing requests that a browser marks as cross-site
  (`Sec-Fetch-Site`) or that carry a foreign `Origin`, before any body is read.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from litestar.config.csrf import CSRFConfig
from litestar.exceptions import PermissionDeniedException
from litestar.middleware import DefineMiddleware
from litestar.middleware.csrf import CSRFMiddleware

if TYPE_CHECKING:
    from litestar import Request
    from litestar.types import ASGIApp, Receive, Scope, Send

    from portal.kernel.settings import Settings

__all__ = [
    "CSRF_FIELD",
    "HasServerKey",
    "OriginCheckMiddleware",
    "PortalCSRFMiddleware",
    "csrf_config",
    "csrf_middleware",
    "derive_secret",
    "verify_csrf_token",
]

CSRF_FIELD = "_csrf_token"
CSRF_COOKIE = "csrftoken"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Litestar's token: 32 random bytes as hex, followed by an HMAC-SHA256 hex digest of them.
_RANDOM_HEX = 64
_TOKEN_LENGTH = _RANDOM_HEX + 64


class HasServerKey(Protocol):
    """What this layer needs from `crypto.keyring.Keyring`."""

    @property
    def server_key(self) -> bytes: ...


def derive_secret(server_key: bytes, label: str, length: int = 32) -> bytes:
    """A sub-key for one purpose, so no two features share key material."""
    return HKDF(
        algorithm=hashes.SHA256(),
        length=length,
        salt=None,
        info=f"whistle-portal/{label}".encode(),
    ).derive(server_key)


def csrf_config(settings: Settings, keyring: HasServerKey) -> CSRFConfig:
    """The app's CSRFConfig; its HMAC secret is derived from the installation's server key."""
    secret = derive_secret(keyring.server_key, "csrf-token/v1").hex()
    return CSRFConfig(
        secret=secret,
        cookie_name=CSRF_COOKIE,
        cookie_path="/",
        cookie_httponly=True,
        cookie_samesite="strict",
        cookie_secure=settings.secure_cookies,
        safe_methods={"GET", "HEAD", "OPTIONS"},
    )


def _ascii(value: object) -> bool:
    return isinstance(value, str) and value.isascii()


class PortalCSRFMiddleware(CSRFMiddleware):
    """Litestar's double-submit check; malformed (non-ASCII) values simply do not match."""

    def _csrf_tokens_match(self, request_csrf_token: str, cookie_csrf_token: str) -> bool:
        if not (_ascii(request_csrf_token) and _ascii(cookie_csrf_token)):
            return False
        return super()._csrf_tokens_match(request_csrf_token, cookie_csrf_token)


def csrf_middleware(config: CSRFConfig) -> DefineMiddleware:
    """The CSRF middleware; list it last (innermost) among the app's middleware."""
    return DefineMiddleware(PortalCSRFMiddleware, config=config)


def _config_of(request: Request[Any, Any, Any]) -> CSRFConfig | None:
    config = request.app.state.get("csrf_config") or request.app.csrf_config
    return config if isinstance(config, CSRFConfig) else None


def _random_part(token: str, secret: str) -> str | None:
    """The random half of a well-formed token whose HMAC verifies, else None."""
    if len(token) != _TOKEN_LENGTH:
        return None
    try:
        token.encode("ascii")
    except UnicodeEncodeError:
        return None
    random_part, mac = token[:_RANDOM_HEX], token[_RANDOM_HEX:]
    expected = hmac.new(secret.encode(), random_part.encode(), hashlib.sha256).hexdigest()
    return random_part if hmac.compare_digest(mac, expected) else None


def verify_csrf_token(request: Request[Any, Any, Any], submitted: str) -> bool:
    """The check Litestar's CSRF middleware performs: the submitted token and the cookie are
    both authentic (HMAC under the app secret) and carry the same random value. Constant time.
    """
    config = _config_of(request)
    if config is None or not isinstance(submitted, str):
        return False
    cookie = request.cookies.get(config.cookie_name)
    if not cookie:
        return False
    from_form = _random_part(submitted, config.secret)
    from_cookie = _random_part(cookie, config.secret)
    if from_form is None or from_cookie is None:
        return False
    return hmac.compare_digest(from_form, from_cookie)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return None


def cross_site_refusal(scope: Scope) -> str | None:
    """Why a state-changing request must be refused as cross-site, or None if it may proceed.

    * `Sec-Fetch-Site` (sent by every current browser): only `same-origin` and `none` (a
      user-typed navigation) pass; `cross-site` and `same-site` (a sibling sub-domain) fail.
    * `Origin`, when present, must name the same host (and port) as `Host`.
    * `Origin: null` is what browsers send for a same-site form POST from a page served with
      `Referrer-Policy: no-referrer` (ours). It passes only when the browser itself vouches
      for the request with `Sec-Fetch-Site: same-origin`, a header no page can forge; a
      sandboxed or cross-site document sending `null` is marked cross-site and fails above.
      Without either header (old clients) the CSRF token and SameSite=Strict cookie decide.
    """
    method = str(scope.get("method", "GET")).upper()
    if method in SAFE_METHODS:
        return None
    fetch_site = _header(scope, b"sec-fetch-site")
    if fetch_site is not None and fetch_site.strip().lower() not in ("same-origin", "none"):
        return "sec-fetch-site"
    origin = _header(scope, b"origin")
    if origin is not None:
        host = (_header(scope, b"host") or "").strip().lower()
        origin = origin.strip().lower()
        if origin == "null":
            vouched = fetch_site is not None and fetch_site.strip().lower() == "same-origin"
            return None if vouched else "origin"
        if not host:
            return "origin"
        try:
            parts = urlsplit(origin)
        except ValueError:
            return "origin"
        if parts.scheme not in ("http", "https") or parts.netloc != host:
            return "origin"
    return None


class OriginCheckMiddleware:
    """Pure ASGI: refuses cross-site state changes with 403 before anything reads the body.

    Place it before the session middleware (outer), e.g. right after the headers middleware.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and cross_site_refusal(scope) is not None:
            raise PermissionDeniedException("cross-site request refused")
        await self.app(scope, receive, send)
