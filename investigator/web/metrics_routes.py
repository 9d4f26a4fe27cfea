"""`/workspace/metrics` for a signed-in administrator (when both sides share one listener)."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get

from investigator.web.case_common import staff_who_can
from portal.http.metrics import metrics_response


@get("/metrics", name="workspace_metrics", include_in_schema=False)
async def workspace_metrics(request: Request[Any, Any, Any]) -> Response[bytes]:
    await staff_who_can(request, "manage_settings")
    return metrics_response(request)


metrics_handlers = [workspace_metrics]
