"""Error pages (O4): the same calm page for every cause, never a detail.

* HTML requests get templates/errors/<status>.html (400, 403, 404, 405, 413, 429, 500, 503;
  other 4xx use 400, other 5xx use 500) with the status code kept; JSON clients and /healthz get a
  one-line JSON body. Neither ever contains the exception text, a path, SQL or a trace.
* "Does not exist" and "not allowed" are the same `NotFoundException`, so they render the
  same 404: never pass a distinguishing detail and expect it to be shown.
* Unexpected exceptions are logged (scrubbed by portal.kernel.logs) with no request data.
* `DatabaseUnavailable` (the database is down, restarting or overloaded) is 503 with
  Retry-After and the "temporarily unavailable, try again" page; portal.kernel.db.engine logs the
  outage once, so it is not logged per request here.
* `ServiceUnavailable` (Redis unreachable or refusing the password, the file store's disk
  full) is the same 503 page with Retry-After, never 429 or 500; `portal.kernel.outage` logs the
  outage once. An ENOSPC/EDQUOT `OSError` escaping a handler is treated as a full store.
* Security headers are added here too: errors raised before routing or inside Litestar's own
  middleware (CSRF, body size) do not pass through `SecurityHeadersMiddleware`.
* In development mode with PORTAL_DEBUG=1, unexpected exceptions show Litestar's debug page
  (Settings.validate refuses debug in production).
"""

from __future__ import annotations

import html
import logging
from collections.abc import Callable
from typing import Any

from litestar import MediaType, Request, Response
from litestar.exceptions import HTTPException
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR, HTTP_503_SERVICE_UNAVAILABLE
from litestar.utils.empty import value_or_default
from litestar.utils.scope.state import ScopeState

from portal.http.disconnect import client_gone
from portal.http.headers import security_headers
from portal.http.i18n import locale_of
from portal.kernel.db.engine import RETRY_AFTER_S, DatabaseUnavailable
from portal.kernel.outage import ServiceUnavailable, StorageFull, is_disk_full, note_outage
from portal.kernel.settings import Settings

__all__ = ["PAGES", "exception_handlers"]

logger = logging.getLogger("portal.errors")

PAGES = (400, 403, 404, 405, 413, 429, 500, 503)
_SHORT = {
    400: "bad request",
    403: "forbidden",
    404: "not found",
    405: "method not allowed",
    413: "request too large",
    429: "too many requests",
    500: "server error",
    503: "service unavailable",
}
_PLAIN_FALLBACK = (
    "<!doctype html><html><head><meta charset=utf-8><title>{code}</title>"
    '<link rel="stylesheet" href="/static/portal.css"></head>'
    "<body><main><h1>{code}</h1></main></body></html>"
)

Handler = Callable[[Request[Any, Any, Any], Exception], Response[Any]]


def _page_for(status: int) -> int:
    if status in PAGES:
        return status
    return 500 if status >= 500 else 400


def _wants_json(request: Request[Any, Any, Any]) -> bool:
    path = request.scope.get("path", "")
    if path in ("/healthz", "/readyz") or path.startswith(("/healthz/", "/readyz/")):
        return True
    accept = request.headers.get("accept", "")
    return "application/json" in accept and "text/html" not in accept


def _render_html(request: Request[Any, Any, Any], page: int, **context: Any) -> str:
    locale_of(request.scope)  # errors raised before routing have no locale yet
    try:
        engine = request.app.template_engine
        if engine is None:
            raise LookupError("no template engine")
        template = engine.get_template(f"errors/{page}.html")
        token = value_or_default(ScopeState.from_scope(request.scope).csrf_token, "")
        csrf_input = f'<input type="hidden" name="_csrf_token" value="{html.escape(token)}" />'
        rendered: str = template.render(
            request=request, csrf_input=csrf_input, status_code=page, **context
        )
        return rendered
    except Exception as exc:
        logger.error(
            "error page %s could not be rendered (%s)", page, type(exc).__name__, exc_info=exc
        )
        return _PLAIN_FALLBACK.format(code=html.escape(str(page)))


def _response(
    settings: Settings, request: Request[Any, Any, Any], status: int, **context: Any
) -> Response[Any]:
    page = _page_for(status)
    path = request.scope.get("path", "/")
    query = request.scope.get("query_string", b"")
    headers: dict[str, str]
    if _wants_json(request):
        headers = dict(security_headers(settings, path, "application/json", query))
        return Response(
            content={"error": _SHORT[page], "status": status},
            status_code=status,
            media_type=MediaType.JSON,
            headers=headers,
        )
    body = _render_html(request, page, **context)
    headers = dict(security_headers(settings, path, "text/html", query))
    return Response(
        content=body,
        status_code=status,
        media_type=MediaType.HTML,
        headers=headers,
    )


def _extra_headers(exc: HTTPException) -> dict[str, str]:
    """Headers an HTTP error legitimately carries (Allow on 405, Retry-After on 429)."""
    kept: dict[str, str] = {}
    for name, value in (exc.headers or {}).items():
        if name.lower() in ("allow", "retry-after"):
            kept[name] = value
    return kept


def exception_handlers(settings: Settings) -> dict[int | type[Exception], Handler]:
    """Handlers for `Litestar(exception_handlers=...)`."""

    def http_error(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
        assert isinstance(exc, HTTPException)
        status = exc.status_code
        if status >= 500 and client_gone(request.scope):
            # not our error: the client closed the connection mid-body (nobody reads this)
            logger.info("client disconnected before the request body was complete")
            return _response(settings, request, 400)
        if status >= 500:
            logger.error("HTTP %s raised (%s)", status, type(exc).__name__, exc_info=exc)
        response = _response(settings, request, status)
        for name, value in _extra_headers(exc).items():
            response.headers[name] = value
        return response

    def unavailable(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
        if isinstance(exc, ServiceUnavailable):
            component = exc.component
        elif isinstance(exc, DatabaseUnavailable):
            component = "database"
        else:
            component = StorageFull.component
        request.scope.setdefault("state", {})["portal_unavailable"] = component  # for metrics
        # a COMMIT cut off: what was sent may have been saved (portal.reporter.in_doubt)
        in_doubt = isinstance(exc, DatabaseUnavailable) and exc.in_doubt
        response = _response(settings, request, HTTP_503_SERVICE_UNAVAILABLE, in_doubt=in_doubt)
        response.headers["Retry-After"] = str(RETRY_AFTER_S)
        return response

    def unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
        if client_gone(request.scope):
            logger.info("client disconnected before the request body was complete")
            return _response(settings, request, 400)
        if is_disk_full(exc):
            note_outage(StorageFull.component, type(exc).__name__)
            return unavailable(request, exc)
        logger.error("unhandled exception (%s)", type(exc).__name__, exc_info=exc)
        return _response(settings, request, HTTP_500_INTERNAL_SERVER_ERROR)

    handlers: dict[int | type[Exception], Handler] = {
        HTTPException: http_error,
        DatabaseUnavailable: unavailable,
        ServiceUnavailable: unavailable,
    }
    if not (settings.debug and settings.mode == "development"):
        handlers[Exception] = unexpected
    return handlers
