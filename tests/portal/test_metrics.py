"""Prometheus metrics (issue 14, point 2): on the workspace side only, labelled by route name
(never a path with ids), counting submissions, receipt-queue waits and job runs, with nothing
that identifies a reporter.

* PORTAL_SERVE=workspace: `/metrics`, open (the internal listener);
* PORTAL_SERVE=both: `/workspace/metrics` for a signed-in administrator, no `/metrics`;
* PORTAL_SERVE=reporter: neither."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from litestar import Litestar
from litestar.testing import TestClient

from portal.app import create_app
from portal.kernel.metrics import record_job_run
from portal.kernel.settings import Settings
from tests.conftest import BASE_URL
from tests.investigator.ws_helpers import Desk
from tests.portal.test_reporter_journeys import (
    form_tokens,
    receipt_of,
    report_fields,
    sign_in,
    submit,
)


def _client_for(settings: Settings, services: object, serve: str) -> TestClient[Litestar]:
    app = create_app(dataclasses.replace(settings, serve=serve), services)  # type: ignore[arg-type]
    return TestClient(app, base_url=BASE_URL)


def _value(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name):
            continue
        head, _, value = line.rpartition(" ")
        if head.split("{", 1)[0] != name:
            continue
        if all(f'{k}="{v}"' in head for k, v in labels.items()):
            total += float(value)
    return total


@pytest.fixture
def workspace(settings: Settings, services: object) -> Iterator[TestClient[Litestar]]:
    with _client_for(settings, services, "workspace") as client:
        yield client


def test_the_workspace_listener_serves_metrics_by_route_name(
    workspace: TestClient[Litestar], settings: Settings
) -> None:
    case_id = "f" * 32
    before = workspace.get("/metrics").text  # counters are per process: compare with before
    workspace.get(f"/workspace/cases/{case_id}")  # a route with an id in its path
    workspace.get("/workspace/")
    record_job_run(settings.data_dir, "notify", ok=True, duration_s=1.5)
    record_job_run(settings.data_dir, "notify", ok=False, duration_s=0.2)
    record_job_run(settings.data_dir, "retention", ok=True, duration_s=3.0)
    answer = workspace.get("/metrics")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain; version=0.0.4")
    text = answer.text
    # the case page (not signed in: 303) is counted under its route name, not its path
    case = {"route": "workspace_case", "status": "303"}
    assert (
        _value(text, "portal_http_requests_total", **case)
        - _value(before, "portal_http_requests_total", **case)
        == 1
    )
    assert _value(text, "portal_http_requests_total", route="metrics", method="GET") >= 1
    assert case_id not in text  # no path, no id became a label
    assert "/workspace/cases" not in text
    assert re.search(r'portal_http_request_duration_seconds_bucket\{le="[^"]+",route="', text)
    assert _value(text, "portal_job_runs_total", job="notify", outcome="ok") == 1
    assert _value(text, "portal_job_runs_total", job="notify", outcome="failed") == 1
    assert _value(text, "portal_job_runs_total", job="retention", outcome="ok") == 1
    assert _value(text, "portal_job_last_duration_seconds", job="retention") == 3.0
    assert 'portal_job_last_success_timestamp_seconds{job="notify"}' in text
    for name in ("portal_submissions_total", "portal_receipt_queue_wait_seconds_count"):
        assert name in text
    # the routes are named (Litestar names the static router "static", "static/head"): every
    # route label is a fixed name, never a requested path
    routes = set(re.findall(r'route="([^"]*)"', text))
    assert routes and all(re.fullmatch(r"[A-Za-z_][A-Za-z0-9_./]*", r) for r in routes), [
        r for r in routes if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_./]*", r)
    ]


@pytest.mark.parametrize("serve", ["reporter", "both"])
def test_no_metrics_on_the_reporter_side(settings: Settings, services: object, serve: str) -> None:
    with _client_for(settings, services, serve) as client:
        assert client.get("/metrics").status_code == 404
        assert "portal_http_requests_total" not in client.get("/metrics").text
        workspace = client.get("/workspace/metrics", follow_redirects=False)
        if serve == "reporter":
            assert workspace.status_code == 404
        else:  # not signed in: to the sign-in page, no metrics
            assert workspace.status_code in (303, 404)
            assert "portal_" not in workspace.text


def test_administrators_read_metrics_when_both_sides_share_a_listener(
    client: TestClient[Litestar], services: object, settings: Settings
) -> None:
    client.headers["accept-language"] = "en"
    receipt = receipt_of(submit(client, report_fields(), tokens=form_tokens(client)))
    assert sign_in(client, receipt).status_code == 303  # one receipt sign-in waited its turn
    client.cookies.clear()
    desk = Desk(client, services)  # type: ignore[arg-type]
    desk.add("admin1", "administrator")
    desk.add("officer1", "intake_officer")
    desk.use("officer1")
    assert client.get("/workspace/metrics").status_code == 404  # not for other staff
    desk.use("admin1")
    answer = client.get("/workspace/metrics")
    assert answer.status_code == 200
    text = answer.text
    assert _value(text, "portal_submissions_total") >= 1
    assert _value(text, "portal_receipt_queue_wait_seconds_count") >= 1
    assert _value(text, "portal_http_requests_total", route="report_submit", status="200") >= 1
    assert receipt.replace(" ", "") not in text.replace(" ", "")
    assert Path(settings.data_dir).is_dir()
