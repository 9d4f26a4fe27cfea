"""The one composition root: `create_app(settings)` builds the whole ASGI application."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from litestar import Litestar, MediaType, Request, Response, Router, get
from litestar.datastructures import State
from litestar.middleware import DefineMiddleware
from litestar.static_files import create_static_files_router

from portal.app.wiring import build_services
from portal.http.csrf import OriginCheckMiddleware, csrf_config, csrf_middleware
from portal.http.disconnect import DisconnectMiddleware
from portal.http.errors import exception_handlers
from portal.http.headers import SecurityHeadersMiddleware
from portal.http.i18n import LocaleMiddleware, language_router
from portal.http.metrics import MetricsMiddleware, metrics_endpoint
from portal.http.sessions import session_middleware, session_stores
from portal.http.store_guard import guard_stores
from portal.http.templating import template_config
from portal.kernel.assets import static_dir
from portal.kernel.db.engine import RETRY_AFTER_S
from portal.kernel.i18n import require_compiled
from portal.kernel.logs import configure_logging
from portal.kernel.readiness import check_readiness
from portal.kernel.services import Services
from portal.kernel.settings import Settings

STATIC_DIR = static_dir()  # the package data when installed, else the checkout
# Evidence uploads stream past this limit on their own routes (see portal.http.upload).
DEFAULT_MAX_BODY = 1024 * 1024


@get("/healthz", opt={"skip_session": True}, include_in_schema=False)
async def healthz(request: Request[Any, Any, Any]) -> Response[dict[str, str]]:
    """Liveness: 200 when the database answers, 503 (with Retry-After) while it does not.
    `/readyz` checks every helper."""
    services: Services = request.app.state["services"]
    if await services.db.ping():
        return Response({"status": "ok"}, media_type=MediaType.JSON)
    return Response(
        {"status": "unavailable", "database": "unavailable"},
        status_code=503,
        media_type=MediaType.JSON,
        headers={"Retry-After": str(RETRY_AFTER_S)},
    )


@get("/readyz", opt={"skip_session": True, "exclude_from_csrf": True}, include_in_schema=False)
async def readyz(request: Request[Any, Any, Any]) -> Response[dict[str, object]]:
    """Readiness: 200 when the database, Redis (if configured), the file store and the keyring
    can all be used; else 503 with Retry-After and the failed components named."""
    services: Services = request.app.state["services"]
    readiness = await check_readiness(services)
    if readiness.ready:
        return Response(readiness.as_json(), media_type=MediaType.JSON)
    return Response(
        readiness.as_json(),
        status_code=503,
        media_type=MediaType.JSON,
        headers={"Retry-After": str(RETRY_AFTER_S)},
    )


def create_app(settings: Settings | None = None, services: Services | None = None) -> Litestar:
    settings = settings or Settings.from_env()
    services = services or build_services(settings)
    configure_logging(settings)
    require_compiled()  # translations are compiled at build time, never here

    route_handlers: list[object] = [
        healthz,
        readyz,
        language_router(),
        create_static_files_router(
            path="/static",
            directories=[STATIC_DIR],
            opt={"skip_session": True},
            include_in_schema=False,
        ),
    ]
    if settings.serve in ("both", "reporter"):
        from portal.web.router import reporter_router

        route_handlers.append(reporter_router(settings))
    if settings.serve in ("both", "workspace"):
        from investigator.web.routes import workspace_router

        route_handlers.append(workspace_router(settings))
    if settings.serve == "workspace":  # the internal listener: Prometheus scrapes it
        route_handlers.append(metrics_endpoint)

    async def on_startup(app: Litestar) -> None:
        from portal.kernel.binding import ensure_bound

        # C7: never serve with a keyring that is not this database's (`portal serve` checks
        # before this too, to say so in one line)
        await ensure_bound(services.db, services.keyring, settings.keyring_dir)
        from portal.kernel.audit import anchor_head

        await anchor_head(services.db, settings.data_dir)  # A5: the head, outside the database
        services.files.ensure() if hasattr(services.files, "ensure") else None
        await services.files.cleanup_incoming()
        from portal.reporter.submission import (
            purge_expired_nonces,
            sweep_nonces_forever,
            sweep_orphans,
        )

        await sweep_orphans(services)  # objects a crash left without a files row
        await purge_expired_nonces(services)  # no submission time kept past its window
        # ... and from now on a timer does it, never a submission's transaction
        app.state["nonce_timer"] = asyncio.ensure_future(sweep_nonces_forever(services))

    async def on_shutdown(app: Litestar) -> None:
        timer = app.state.get("nonce_timer")
        if timer is not None:
            timer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await timer
        await services.close()

    csrf = csrf_config(settings, services.keyring)
    return Litestar(
        route_handlers=route_handlers,  # type: ignore[arg-type]
        state=State({"services": services, "settings": settings, "csrf_config": csrf}),
        middleware=[
            MetricsMiddleware,
            DisconnectMiddleware,
            DefineMiddleware(SecurityHeadersMiddleware, settings=settings),
            OriginCheckMiddleware,
            LocaleMiddleware,
            session_middleware(settings),
            csrf_middleware(csrf),  # innermost, where Litestar puts its own
        ],
        stores=guard_stores(
            session_stores(settings, services.keyring), redis=settings.redis_url is not None
        ),
        template_config=template_config(settings),
        exception_handlers=exception_handlers(settings),
        openapi_config=None,
        logging_config=None,
        debug=settings.debug,
        request_max_body_size=DEFAULT_MAX_BODY,
        on_startup=[on_startup],
        on_shutdown=[on_shutdown],
    )


def services_of(app: Litestar) -> Services:
    services: Services = app.state["services"]
    return services


__all__ = ["Router", "create_app", "services_of"]
