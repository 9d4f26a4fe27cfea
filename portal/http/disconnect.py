"""Clients that go away in the middle of a request body.

Litestar turns the ASGI `http.disconnect` message that arrives while a body is read into an
`InternalServerException` ("client disconnected prematurely"): a 500 and an ERROR traceback
that any stranger could produce at will by closing connections. `DisconnectMiddleware` notes
the disconnect in the scope; the error handlers (`portal.http.errors`) then log one INFO line
(the route name only) instead, and answer 400 to nobody.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from litestar.types import ASGIApp, Receive, ReceiveMessage, Scope, Send

__all__ = ["DisconnectMiddleware", "client_gone"]

_FLAG = "portal_client_gone"


def client_gone(scope: Any) -> bool:
    """True when the client disconnected before the request body was complete."""
    state = scope.get("state") if isinstance(scope, dict) else None
    return bool(state and state.get(_FLAG))


class DisconnectMiddleware:
    """Pure ASGI: watches `receive` for `http.disconnect` before the body ended."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        body_done = False

        async def watching_receive() -> ReceiveMessage:
            nonlocal body_done
            message = await receive()
            if message["type"] == "http.request" and not message.get("more_body", False):
                body_done = True
            elif message["type"] == "http.disconnect" and not body_done:
                scope.setdefault("state", {})[_FLAG] = True
            return message

        await self.app(scope, watching_receive, send)
