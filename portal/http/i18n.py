"""Per-request locale (R10) and the language switch (POST /lang).

Locale order: a valid `lang` cookie, else the best Accept-Language match among zh_CN, zh_TW
and en, else `settings.default_locale`. `LocaleMiddleware` stores it in `scope["state"]
["locale"]` and in the `current_locale` context variable, which the Jinja gettext callables
read (portal.http.templating).
"""

from __future__ import annotations

import re
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from litestar import Request, Router, post
from litestar.datastructures import Cookie
from litestar.response import Redirect

from portal.kernel.i18n import DEFAULT_LOCALE, LOCALES

if TYPE_CHECKING:
    from litestar.types import ASGIApp, Receive, Scope, Send

    from portal.kernel.settings import Settings

__all__ = [
    "LANG_COOKIE",
    "LocaleMiddleware",
    "current_locale",
    "language_router",
    "locale_of",
    "negotiate_locale",
    "safe_next",
]

LANG_COOKIE = "lang"
ONE_YEAR_S = 365 * 24 * 3600
STATE_KEY = "locale"
_MAX_ACCEPT_LANGUAGE = 512
_MAX_NEXT = 2048

current_locale: ContextVar[str] = ContextVar("current_locale", default=DEFAULT_LOCALE)

_TRADITIONAL = ("zh-tw", "zh-hk", "zh-mo", "zh-hant")
_LANG_RANGE = re.compile(r"^[a-z]{1,8}(?:-[a-z0-9]{1,8})*$|^\*$")


def _match(tag: str) -> str | None:
    tag = tag.lower().replace("_", "-")
    if tag.startswith("zh"):
        return "zh_TW" if tag.startswith(_TRADITIONAL) else "zh_CN"
    if tag == "en" or tag.startswith("en-"):
        return "en"
    return None


def _parse_accept_language(header: str) -> str | None:
    best: tuple[float, int, str] | None = None
    for position, item in enumerate(header[:_MAX_ACCEPT_LANGUAGE].split(",")[:32]):
        tag, _, params = item.strip().partition(";")
        tag = tag.strip().lower()
        if not _LANG_RANGE.match(tag):
            continue
        quality = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name.strip() == "q":
                try:
                    quality = float(value.strip())
                except ValueError:
                    quality = 0.0
        locale = _match(tag)
        if locale is None or not 0.0 < quality <= 1.0:
            continue
        key = (-quality, position, locale)
        if best is None or key < best:
            best = key
    return None if best is None else best[2]


def _cookie_value(scope: Scope, name: str) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() != b"cookie":
            continue
        for part in bytes(value).decode("latin-1").split(";"):
            cname, _, cvalue = part.strip().partition("=")
            if cname == name:
                return cvalue.strip()
    return None


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return None


def _default_locale(scope: Scope) -> str:
    app = scope.get("app")
    settings = getattr(app, "state", {}).get("settings") if app is not None else None
    default = getattr(settings, "default_locale", DEFAULT_LOCALE)
    return default if default in LOCALES else DEFAULT_LOCALE


def negotiate_locale(scope: Scope) -> str:
    """The locale for a request scope (cookie, then Accept-Language, then the default)."""
    cookie = _cookie_value(scope, LANG_COOKIE)
    if cookie in LOCALES:
        return str(cookie)
    header = _header(scope, b"accept-language")
    if header:
        matched = _parse_accept_language(header)
        if matched:
            return matched
    return _default_locale(scope)


def locale_of(scope: Scope) -> str:
    """The locale already chosen for this request, negotiating it if no middleware ran
    (errors raised before routing)."""
    state: dict[str, Any] = scope.setdefault("state", {})
    locale = state.get(STATE_KEY)
    if locale not in LOCALES:
        locale = negotiate_locale(scope)
        state[STATE_KEY] = locale
    return str(locale)


class LocaleMiddleware:
    """Pure ASGI middleware (list it bare: `middleware=[..., LocaleMiddleware, ...]`)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        locale = negotiate_locale(scope)
        scope.setdefault("state", {})[STATE_KEY] = locale
        token = current_locale.set(locale)
        try:
            await self.app(scope, receive, send)
        finally:
            current_locale.reset(token)


def safe_next(value: object) -> str:
    """`value` if it is a same-site relative path ("/..." but not "//..." nor "/\\..."),
    else "/"."""
    if not isinstance(value, str) or not value or len(value) > _MAX_NEXT:
        return "/"
    if not value.startswith("/") or value.startswith(("//", "/\\")):
        return "/"
    if any(ch in value for ch in "\\\r\n\t") or any(
        ord(ch) < 0x20 or ord(ch) == 0x7F for ch in value
    ):
        return "/"
    return value


@post(
    "/lang",
    name="set_language",
    status_code=303,
    include_in_schema=False,
    opt={"skip_session": True},
)
async def set_language(request: Request[Any, Any, Any]) -> Redirect:
    form = await request.form()
    lang = form.get("lang")
    target = safe_next(form.get("next"))
    settings: Settings | None = request.app.state.get("settings")
    cookies: list[Cookie] = []
    if isinstance(lang, str) and lang in LOCALES:
        cookies.append(
            Cookie(
                key=LANG_COOKIE,
                value=lang,
                max_age=ONE_YEAR_S,
                path="/",
                httponly=True,
                samesite="strict",
                secure=bool(settings and settings.secure_cookies),
            )
        )
    return Redirect(path=target, status_code=303, cookies=cookies)


def language_router() -> Router:
    """Mounts POST /lang (CSRF-protected like any POST)."""
    return Router(path="/", route_handlers=[set_language])
