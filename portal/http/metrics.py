"""The metrics middleware and the workspace listener's `/metrics` endpoint.

Where metrics are served (never on the reporter side):

* `PORTAL_SERVE=workspace` (the internal listener): `GET /metrics`, no sign-in, for the
  Prometheus scraper on the internal network;
* `PORTAL_SERVE=both`: `GET /workspace/metrics`, for a signed-in administrator only
  (investigator.web.metrics_routes); `/metrics` does not exist;
* `PORTAL_SERVE=reporter`: neither exists (404).

`MetricsMiddleware` counts every HTTP request by route *name* (the handler's `name=`, else its
function name; "unmatched" before routing), method and status, and times it. No path, query,
id, address or header becomes a label.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from litestar import Request, Response, get

from portal.kernel import metrics

if TYPE_CHECKING:
    from litestar.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["MetricsMiddleware", "metrics_endpoint", "metrics_response", "route_name"]

_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def route_name(scope: Scope) -> str:
    handler = scope.get("route_handler")
    if handler is None:
        return "unmatched"
    name = getattr(handler, "name", None) or getattr(handler, "handler_name", None)
    return str(name) if name else "unnamed"


class MetricsMiddleware:
    """Pure ASGI; place it first so that its timing covers the other middleware."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def counting_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, counting_send)
        finally:
            route = route_name(scope)
            method = str(scope.get("method", "GET")).upper()
            method = method if method in _METHODS else "OTHER"
            metrics.REQUESTS.labels(route, method, str(status)).inc()
            metrics.REQUEST_SECONDS.labels(route).observe(time.perf_counter() - started)
            if status == 503:
                component = scope.get("state", {}).get("portal_unavailable", "unknown")
                metrics.UNAVAILABLE.labels(str(component)).inc()


def metrics_response(request: Request[Any, Any, Any]) -> Response[bytes]:
    settings = request.app.state["settings"]
    return Response(
        metrics.render(settings.data_dir),
        media_type=metrics.CONTENT_TYPE,
        headers={"Cache-Control": "no-store"},
    )


@get(
    "/metrics",
    name="metrics",
    opt={"skip_session": True, "exclude_from_csrf": True},
    include_in_schema=False,
)
async def metrics_endpoint(request: Request[Any, Any, Any]) -> Response[bytes]:
    """Mounted only when PORTAL_SERVE=workspace (see `portal.app.create_app`)."""
    return metrics_response(request)
