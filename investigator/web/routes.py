"""Workspace routes, mounted under /workspace."""

from __future__ import annotations

from litestar import Router, get
from litestar.response import Template

from portal.settings import Settings


@get("/", name="workspace_home")
async def workspace_home() -> Template:
    return Template(template_name="investigator/signin.html")


def workspace_router(settings: Settings) -> Router:
    return Router(path="/workspace", route_handlers=[workspace_home])
