"""Investigator workspace at scale: GET /workspace/inbox and GET /workspace/cases/<id> with
100,000 cases (``--small``: 10,000), p95 under 100 ms, on SQLite and on PostgreSQL.

    .venv/bin/python bench/workspace_bench.py [--small] [--only sqlite|postgresql]
        [--cases N] [--requests 200] [--save]

Per engine: `portal init` + `portal serve` (bench/common.PortalServer: free loopback port,
temporary data dir, PORTAL_MODE=development so cookies travel over http,
PORTAL_ARGON2_PROFILE=test so the bench user's sign-in is cheap). An intake officer is created
with `portal user add`, signs in over HTTP (one-time password, TOTP enrolment with pyotp,
forced password change), ONE real report is submitted over HTTP (so one case is decryptable
by that officer), then synthetic cases (stage received/triage, random bytes as content: the
inbox never decrypts) are bulk-inserted straight into the database. After a warm-up, the two
pages are fetched alternately, `--requests` times each (sequential, one client). On
PostgreSQL (`BENCH_PG_SERVER`, default postgresql://postgres@127.0.0.1:5432) the bench creates
its own database, ``workspace_bench_<run id>``, and drops it (only it) at the end.

Prints one table (bench/table.py: metric | value | target | met?; the value is the p95, the
metric names p50 and max); with --save also writes it to bench/results/workspace.md.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import random
import re
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import httpx
import pyotp
from common import (
    ROOT,
    PortalServer,
    hidden_field,
    percentile,
    private_database,
    stop_on_sigterm,
)
from intake_bench import submit_report_sync
from table import Row, add_save_argument, check, render, save

TARGET_MS = 100.0
USERNAME = "bench_intake"
NEW_PASSWORD = "correct horse battery staple 42"  # a throwaway bench account
_SECRET = re.compile(r'<code class="secret">([A-Z2-7 ]+)</code>')
_OTP = re.compile(r"one-time password \(shown once\): (\S+)")


def log(*args: object) -> None:
    print(*args, file=sys.stderr, flush=True)


class BenchError(RuntimeError):
    pass


def add_officer(server: PortalServer) -> str:
    """`portal user add` with the server's environment; the one-time password."""
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "portal.app.cli",
            "user",
            "add",
            USERNAME,
            "--roles",
            "intake_officer",
        ],
        cwd=ROOT,
        env=server.env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    match = _OTP.search(out.stdout)
    if out.returncode != 0 or match is None:
        raise BenchError(f"portal user add failed: {out.stdout[-500:]} {out.stderr[-1500:]}")
    return match.group(1)


def sign_in(client: httpx.Client, one_time_password: str) -> None:
    """Password, TOTP enrolment, then the forced password change (answers the recovery key)."""
    page = client.get("/workspace/")
    r = client.post(
        "/workspace/signin",
        data={
            "_csrf_token": hidden_field(page.text, "_csrf_token"),
            "username": USERNAME,
            "password": one_time_password,
        },
    )
    if r.status_code != 303 or r.headers.get("location") != "/workspace/totp/enrol":
        raise BenchError(f"password step: HTTP {r.status_code} {r.headers.get('location')}")
    page = client.get("/workspace/totp/enrol")
    secret = _SECRET.search(page.text)
    if secret is None:
        raise BenchError("no TOTP secret on the enrolment page")
    r = client.post(
        "/workspace/totp/enrol",
        data={
            "_csrf_token": hidden_field(page.text, "_csrf_token"),
            "code": pyotp.TOTP(secret.group(1).replace(" ", "")).now(),
        },
    )
    if r.status_code != 303:
        raise BenchError(f"TOTP enrolment: HTTP {r.status_code}")
    page = client.get("/workspace/password")
    r = client.post(
        "/workspace/password",
        data={
            "_csrf_token": hidden_field(page.text, "_csrf_token"),
            "new_password": NEW_PASSWORD,
            "new_password_again": NEW_PASSWORD,
        },
    )
    if r.status_code != 200:
        raise BenchError(f"password change: HTTP {r.status_code}")
    if client.get("/workspace/inbox").status_code != 200:
        raise BenchError("the inbox does not answer 200 after sign-in")


async def only_case_id(url: str) -> str:
    from sqlalchemy import select
    from sqlalchemy.ext.asyncio import create_async_engine

    from portal.kernel.db.models import Case

    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            ids = (await conn.execute(select(Case.id))).scalars().all()
    finally:
        await engine.dispose()
    if len(ids) != 1:
        raise BenchError(f"expected exactly one real case, found {len(ids)}")
    return str(ids[0])


async def insert_cases(url: str, how_many: int, deadline: float) -> int:
    """Synthetic intake-stage cases in batches of 5,000, then ANALYZE; stops at `deadline`."""
    from sqlalchemy import insert, text
    from sqlalchemy.ext.asyncio import create_async_engine

    from portal.kernel.db.models import Case, new_id

    rnd = random.Random(11)
    today = dt.date.today()
    engine = create_async_engine(url)
    done = 0
    try:
        while done < how_many and time.monotonic() < deadline:
            n = min(5000, how_many - done)
            rows = [
                {
                    "id": new_id(),
                    "number": f"S{i:09d}",
                    "kind": "report",
                    "channel": "web",
                    "category": "bribery",
                    "reporter_relation": "employee",
                    "anonymous": True,
                    "stage": rnd.choice(("received", "triage")),
                    "urgent": False,
                    "received_on": today - dt.timedelta(days=rnd.randint(1, 3650)),
                    "content": rnd.randbytes(200),
                    "suite": 1,
                }
                for i in range(done, done + n)
            ]
            async with engine.begin() as conn:
                await conn.execute(insert(Case), rows)
            done += n
        async with engine.begin() as conn:
            await conn.execute(text("ANALYZE"))
    finally:
        await engine.dispose()
    return done


def measure(client: httpx.Client, paths: dict[str, str], n: int, limit_s: float) -> dict:
    """Warm-up (10 each), then `n` alternating rounds; ms per request, bounded by `limit_s`."""
    times: dict[str, list[float]] = {name: [] for name in paths}
    for _ in range(10):
        for path in paths.values():
            client.get(path)
    deadline = time.monotonic() + limit_s
    for _ in range(n):
        if time.monotonic() > deadline:
            log("measurement time limit reached")
            break
        for name, path in paths.items():
            t0 = time.perf_counter()
            r = client.get(path)
            times[name].append((time.perf_counter() - t0) * 1000)
            if r.status_code != 200:
                raise BenchError(f"{path}: HTTP {r.status_code}")
    return times


def run_one(kind: str, n: int, requests: int) -> list[Row]:
    if kind == "postgresql":
        with private_database("workspace_bench") as url:
            return _run_on(kind, n, requests, url)
    return _run_on(kind, n, requests, None)


def _run_on(kind: str, n: int, requests: int, pg_url: str | None) -> list[Row]:
    env = {"PORTAL_ARGON2_PROFILE": "test"}
    if pg_url:
        env["DATABASE_URL"] = pg_url
    server = PortalServer(extra_env=env)
    try:
        server.start()
        url = pg_url or f"sqlite+aiosqlite:///{server.database_path}"
        otp = add_officer(server)
        with httpx.Client(base_url=server.base_url, timeout=60.0) as client:
            client.headers["accept-language"] = "en"
            sign_in(client, otp)
            with httpx.Client(base_url=server.base_url, timeout=60.0) as reporter:
                submit_report_sync(reporter)
            case_id = asyncio.run(only_case_id(url))
            t0 = time.perf_counter()
            inserted = asyncio.run(insert_cases(url, n, time.monotonic() + 600))
            log(f"{kind}: inserted {inserted:,} cases in {time.perf_counter() - t0:.1f} s")
            paths = {"inbox": "/workspace/inbox", "case page": f"/workspace/cases/{case_id}"}
            if client.get(paths["case page"]).status_code != 200:
                raise BenchError("the real case's page does not answer 200")
            shown = len(re.findall(r"S\d{9}", client.get(paths["inbox"]).text))
            if inserted and not shown:
                raise BenchError("the inbox lists none of the synthetic cases")
            log(f"{kind}: the inbox's first page shows {shown} synthetic case numbers")
            times = measure(client, paths, requests, 300.0)
    finally:
        server.stop()
    rows = []
    for name, values in times.items():
        page = "/workspace/inbox" if name == "inbox" else "/workspace/cases/<id>"
        rows.append(
            check(
                f"{kind}, {inserted + 1:,} cases: GET {page} p95 of {len(values)} "
                f"(p50 {percentile(values, 50):.1f} ms, max {max(values):.1f} ms)",
                percentile(values, 95),
                "<",
                TARGET_MS,
                " ms",
                digits=1,
            )
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--small", action="store_true", help="10,000 cases instead of 100,000")
    parser.add_argument("--cases", type=int, help="synthetic cases (overrides --small)")
    parser.add_argument("--requests", type=int, default=200, help="timed GETs per page (200)")
    parser.add_argument("--only", choices=("sqlite", "postgresql"))
    add_save_argument(parser)
    args = parser.parse_args(argv)
    stop_on_sigterm()
    n = args.cases if args.cases is not None else (10_000 if args.small else 100_000)
    n = max(0, min(n, 2_000_000))
    requests = max(1, min(args.requests, 5000))
    rows: list[Row] = []
    for kind in ("sqlite", "postgresql"):
        if args.only in (None, kind):
            log(f"{kind}: {n:,} synthetic cases")
            rows += run_one(kind, n, requests)
    table = render(rows)
    print(table)
    note = (
        f"Measured {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC by `bench/workspace_bench.py"
        f"{' --small' if args.small else ''}`: one server per engine (`portal serve`, "
        "PORTAL_MODE=development, PORTAL_ARGON2_PROFILE=test for the bench officer's sign-in), "
        f"one intake officer signed in over HTTP, {requests} sequential GETs per page after "
        "a warm-up, pages alternated; the case page is the one real (decryptable) case, "
        "the rest are synthetic intake-stage rows. Shared 2-core machine.\n\n"
    )
    save("workspace.md", "# Workspace pages at scale\n\n" + note + table + "\n", args.save)
    return 0


if __name__ == "__main__":
    sys.exit(main())
