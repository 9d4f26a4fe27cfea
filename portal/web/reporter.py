"""Reporter routes (landing, new report, receipt, follow-up)."""

from __future__ import annotations

from litestar import Router, get
from litestar.response import Template

from portal.settings import Settings


@get("/", name="landing")
async def landing() -> Template:
    return Template(template_name="portal/landing.html")


def reporter_router(settings: Settings) -> Router:
    return Router(path="/", route_handlers=[landing])
