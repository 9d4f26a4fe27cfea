"""Pages that are the same for every visitor but for their tokens, rendered once.

The report form is the page every reporter of a burst opens first, and rendering it (about 70
translated strings, the field macros) took more of the event loop than anything else a
submission does but the commit (issue 17). Yet a blank form differs between visitors only in
the CSRF token of their session and the submission token drawn for this visit.
`StampedTemplate` renders such a page once per (template, language, path, ``key``) with
random marks in place of those values, keeps the text, and serves each visit a copy with the
marks replaced by the visit's own values, HTML-escaped. ``key`` holds everything else the page
depends on (the categories, whether the channel is open, settings), so a change renders anew.

What may be stamped: only values the page shows verbatim (tokens). A page that shows anything
else of the visitor (a form after an error, the fields they typed) is rendered normally
(`litestar.response.Template`). The marks are drawn at start-up; a rendered text that still
holds the visit's real CSRF token (it never should: the token is swapped for its mark while
rendering) is not kept.
"""

from __future__ import annotations

import html
import secrets
import threading
import time
import weakref
from collections.abc import Hashable, Iterable, Mapping
from typing import Any

from litestar import Request
from litestar.background_tasks import BackgroundTask, BackgroundTasks
from litestar.datastructures import Cookie
from litestar.enums import MediaType
from litestar.response import Response, Template
from litestar.response.base import ASGIResponse
from litestar.types import TypeEncodersMap
from litestar.utils.scope.state import ScopeState

from portal.http.i18n import locale_of

__all__ = ["StampedTemplate", "clear"]

_MAX_PAGES = 64
# where templates are reloaded when edited (development), a rendered page is kept this long
_RELOADING_KEEP_S = 2.0
_CSRF_MARK = "csrf" + secrets.token_hex(16)
_marks: dict[str, str] = {}
# per template engine (one per app: its globals come from the app's settings), by page key
_pages: weakref.WeakKeyDictionary[object, dict[Hashable, tuple[str, float]]] = (
    weakref.WeakKeyDictionary()
)
_lock = threading.Lock()


def _mark(name: str) -> str:
    with _lock:
        return _marks.setdefault(name, name.replace("_", "") + secrets.token_hex(16))


def clear() -> None:
    """Forget every rendered page (tests that change templates or data behind the keys)."""
    with _lock:
        _pages.clear()


def _store(request: Request[Any, Any, Any]) -> dict[Hashable, tuple[str, float]]:
    engine = request.app.template_engine
    with _lock:
        store = _pages.get(engine)
        if store is None:
            store = _pages[engine] = {}
        return store


def _reloading(request: Request[Any, Any, Any]) -> bool:
    engine = request.app.template_engine
    env = getattr(engine, "engine", None)
    return bool(getattr(env, "auto_reload", True))


class StampedTemplate(Template):
    """``Template`` for a page whose only per-visit content is the CSRF token and ``stamps``
    (name -> value, each shown verbatim where the context's value of that name goes)."""

    def __init__(
        self,
        template_name: str,
        *,
        key: Hashable,
        context: Mapping[str, Any],
        stamps: Mapping[str, str],
        status_code: int = 200,
    ) -> None:
        super().__init__(
            template_name=template_name, context=dict(context), status_code=status_code
        )
        self.key = key
        self.stamps = dict(stamps)

    def _blank(self, request: Request[Any, Any, Any]) -> str | None:
        """The page with marks for the tokens, or None when it cannot be kept."""
        engine = request.app.template_engine
        if engine is None or self.template_name is None:  # pragma: no cover - configured
            return None
        state = ScopeState.from_scope(request.scope)
        real = state.csrf_token
        state.csrf_token = _CSRF_MARK  # what csrf_token() and csrf_input give while rendering
        try:
            context = self.create_template_context(request)
            context.update({name: _mark(name) for name in self.stamps})
            text: str = engine.get_template(self.template_name).render(**context)
        finally:
            state.csrf_token = real
        if isinstance(real, str) and real and real in text:  # pragma: no cover - never
            return None
        return text

    def render_stamped(self, request: Request[Any, Any, Any]) -> str:
        cache_key = (self.template_name, locale_of(request.scope), request.url.path, self.key)
        now = time.monotonic()
        store = _store(request)
        with _lock:
            kept = store.get(cache_key)
        page = kept[0] if kept is not None else None
        if kept is not None and now - kept[1] > _RELOADING_KEEP_S and _reloading(request):
            page = None  # the template files may have changed
        if page is None:
            page = self._blank(request)
            if page is None:
                return self._render_plain(request)
            with _lock:
                if len(store) >= _MAX_PAGES:
                    store.clear()
                store[cache_key] = (page, now)
        csrf = ScopeState.from_scope(request.scope).csrf_token
        body = page.replace(_CSRF_MARK, html.escape(csrf if isinstance(csrf, str) else ""))
        for name, value in self.stamps.items():
            body = body.replace(_mark(name), html.escape(value))
        return body

    def _render_plain(self, request: Request[Any, Any, Any]) -> str:  # pragma: no cover
        engine = request.app.template_engine
        if engine is None or self.template_name is None:
            raise RuntimeError("no template engine")
        context = {**self.create_template_context(request), **self.stamps}
        text: str = engine.get_template(self.template_name).render(**context)
        return text

    def to_asgi_response(
        self,
        app: Any,
        request: Request[Any, Any, Any],
        *,
        background: BackgroundTask | BackgroundTasks | None = None,
        cookies: Iterable[Cookie] | None = None,
        encoded_headers: Iterable[tuple[bytes, bytes]] | None = None,
        headers: dict[str, str] | None = None,
        is_head_response: bool = False,
        media_type: MediaType | str | None = None,
        status_code: int | None = None,
        type_encoders: TypeEncodersMap | None = None,
    ) -> ASGIResponse:
        response: Response[str] = Response(
            content=self.render_stamped(request),
            status_code=self.status_code,
            media_type=MediaType.HTML,
            headers=self.headers,
            cookies=self.cookies,
        )
        return response.to_asgi_response(
            None,
            request,
            background=background,
            cookies=cookies,
            encoded_headers=encoded_headers,
            headers=headers,
            is_head_response=is_head_response,
            media_type=MediaType.HTML,
            status_code=status_code,
            type_encoders=type_encoders,
        )
