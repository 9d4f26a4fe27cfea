"""Operational metrics in the Prometheus text format (prometheus-client), for operators only.

What is counted, and nothing else (R9: nothing identifies a reporter):

* ``portal_http_requests_total{route, method, status}`` and
  ``portal_http_request_duration_seconds{route}``: per route *name* (the handler's name, e.g.
  ``followup_signin_post``), never the path, so no case number, id or token becomes a label;
* ``portal_submissions_total``: reports accepted (no category, no time finer than the scrape);
* ``portal_receipt_queue_wait_seconds``: how long receipt sign-ins waited for the shared budget;
* ``portal_service_unavailable_total{component}``: requests answered 503 because the database,
  Redis or the file store could not be used;
* ``portal_job_runs_total{job, outcome}``, ``portal_job_last_success_timestamp_seconds{job}``
  and ``portal_job_last_duration_seconds{job}``: the scheduled jobs (`portal notify run`,
  `portal retention run`) run in their own processes; each run records its outcome in
  ``PORTAL_DATA_DIR/jobs/JOB.json`` (written atomically) and the serving process reads those
  files at scrape time, so the scheduler and the portal must share the data directory.

One registry per process (`REGISTRY`), separate from prometheus-client's global one. The web
layer serves it only on the workspace side (see `portal.http.metrics`).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

__all__ = [
    "CONTENT_TYPE",
    "JOBS",
    "RECEIPT_QUEUE_WAIT",
    "REGISTRY",
    "REQUESTS",
    "REQUEST_SECONDS",
    "SUBMISSIONS",
    "UNAVAILABLE",
    "record_job_run",
    "render",
]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
JOBS = ("notify", "retention")

REGISTRY = CollectorRegistry(auto_describe=True)

REQUESTS = Counter(
    "portal_http_requests",
    "HTTP requests answered, by route name, method and status code",
    ["route", "method", "status"],
    registry=REGISTRY,
)
REQUEST_SECONDS = Histogram(
    "portal_http_request_duration_seconds",
    "Time to answer an HTTP request, by route name",
    ["route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
    registry=REGISTRY,
)
SUBMISSIONS = Counter("portal_submissions", "Reports accepted", registry=REGISTRY)
RECEIPT_QUEUE_WAIT = Histogram(
    "portal_receipt_queue_wait_seconds",
    "Time receipt sign-ins waited for the shared receipt budget",
    buckets=(0.001, 0.01, 0.1, 0.5, 1, 2, 5, 10, 20),
    registry=REGISTRY,
)
UNAVAILABLE = Counter(
    "portal_service_unavailable",
    "Requests answered 503 because a helper was unavailable, by component",
    ["component"],
    registry=REGISTRY,
)


def _job_file(data_dir: Path, job: str) -> Path:
    return data_dir / "jobs" / f"{job}.json"


def _read(path: Path) -> dict[str, float]:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(raw, dict):
        return {}
    return {k: float(v) for k, v in raw.items() if isinstance(v, int | float)}


def record_job_run(data_dir: Path, job: str, *, ok: bool, duration_s: float) -> None:
    """Count one run of ``job`` in its state file (tmp file + rename: never half-written)."""
    if job not in JOBS:
        raise ValueError(f"unknown job {job!r}")
    path = _job_file(data_dir, job)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    state = _read(path)
    state["ok"] = state.get("ok", 0.0) + (1 if ok else 0)
    state["failed"] = state.get("failed", 0.0) + (0 if ok else 1)
    state["last_duration_s"] = round(duration_s, 3)
    if ok:
        state["last_success"] = time.time()
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(state), encoding="utf-8")
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


class _JobCollector(Collector):
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        runs = CounterMetricFamily(
            "portal_job_runs", "Runs of the scheduled jobs, by outcome", labels=["job", "outcome"]
        )
        success = GaugeMetricFamily(
            "portal_job_last_success_timestamp_seconds",
            "When each job last finished successfully (Unix time)",
            labels=["job"],
        )
        duration = GaugeMetricFamily(
            "portal_job_last_duration_seconds", "How long each job's last run took", labels=["job"]
        )
        for job in JOBS:
            state = _read(_job_file(self.data_dir, job))
            runs.add_metric([job, "ok"], state.get("ok", 0.0))
            runs.add_metric([job, "failed"], state.get("failed", 0.0))
            if "last_success" in state:
                success.add_metric([job], state["last_success"])
            if "last_duration_s" in state:
                duration.add_metric([job], state["last_duration_s"])
        yield runs
        yield success
        yield duration


def render(data_dir: Path) -> bytes:
    """The whole exposition: this process's metrics, then the jobs' recorded in ``data_dir``."""
    jobs = CollectorRegistry(auto_describe=True)
    jobs.register(_JobCollector(data_dir))
    return generate_latest(REGISTRY) + generate_latest(jobs)
