"""A burst like a company announcement (issue 17, item 5), run by hand.

    .venv/bin/python bench/burst_bench.py [--small] [--duration S] [--reporters N]
                                          [--setup sqlite|pg|both] [--save]

2,000 reporters arrive over 10 minutes (arrival times drawn uniformly at random, seeded),
each a new browser: GET /report/new, then POST /report (an anonymous report, no file), timed
from its arrival to the receipt page. Once on one instance (SQLite) and once on two instances
sharing PostgreSQL and Redis (the reporters alternate between them, as behind a load
balancer). Afterwards every receipt signs in (POST /follow-up, on the *other* instance when
there are two). `--duration S` scales the number of reporters with it (2,000 per 600 s) unless
`--reporters` is given; `--small` is `--duration 60`.

The target for p95 is set from the ceiling measured in the same run, before the burst: one
reporter at a time (idle) gives the time to the receipt page `t1` and the servers' CPU per
report; the ceiling is `cores / CPU per report` reports/s, the burst's load `rho` is its
arrival rate divided by that ceiling, and the target is the p95 time in a single queue at that
load, `3 x t1 / (1 - rho)` (an M/M/1 queue's 95th percentile: ln 20 ~ 3); two cores and
arrivals more regular than Poisson only make it easier.

Also printed: the statements one submission sends to the database (SQLAlchemy
`before_cursor_execute` on the app's engines, in-process, SQLite; transaction control left
out), in its write transaction and in all.

PostgreSQL and Redis are needed for the second setup (BENCH_PG_SERVER, BENCH_REDIS_URL; see
bench/common.py): the run creates its own database `burst_bench_<run id>` and drops only it,
and keeps its Redis keys under its own prefix, deleting only those. Prints one markdown table;
with --save also bench/results/burst.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import httpx
from common import (
    PortalServer,
    ServerProcess,
    appoint_reader,
    cores,
    hidden_field,
    percentile,
    process_cpu_seconds,
    receipt_code,
    stop_on_sigterm,
)
from intake_bench import report_body
from staffed import PgRedis, portal_init
from table import Row, add_save_argument, check, info, measured, render, save

REPORTERS_PER_10_MIN = 2000
ENV = {
    # the global receipt budget (120/min by default) would queue the sign-ins checked here
    "PORTAL_RECEIPT_GLOBAL_PER_MINUTE": "100000",
}


def progress(msg: str) -> None:
    print(f"[burst bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# --- one reporter --------------------------------------------------------------------------


async def submit(base: str) -> str:
    """A new browser: the form, then the report; the receipt code (raises on any failure)."""
    async with httpx.AsyncClient(base_url=base, timeout=300.0) as client:
        page = await client.get("/report/new")
        if page.status_code != 200:
            raise RuntimeError(f"form: HTTP {page.status_code}")
        ctype, length, body = report_body(
            hidden_field(page.text, "_csrf_token"), hidden_field(page.text, "submission_token")
        )
        r = await client.post(
            "/report",
            content=b"".join(body),
            headers={"Content-Type": ctype, "Content-Length": str(length)},
        )
        code = receipt_code(r.text) if r.status_code == 200 else None
        if code is None:
            raise RuntimeError(f"report: HTTP {r.status_code}")
        return code


async def sign_in(base: str, code: str) -> None:
    async with httpx.AsyncClient(base_url=base, timeout=300.0) as client:
        page = await client.get("/follow-up")
        if page.status_code != 200:
            raise RuntimeError(f"sign-in form: HTTP {page.status_code}")
        form = {
            "_csrf_token": hidden_field(page.text, "_csrf_token"),
            "code": code,
            "attempts": hidden_field(page.text, "attempts"),
        }
        r = await client.post("/follow-up", data=form)
        if r.status_code != 303 or r.headers.get("location") != "/follow-up/case":
            raise RuntimeError(f"sign-in: HTTP {r.status_code}")


# --- one setup -----------------------------------------------------------------------------


@dataclass
class Burst:
    name: str
    instances: int
    reporters: int
    duration: float
    t1: float = 0.0  # idle time to the receipt page, median
    cpu_per_report: float = 0.0  # the servers' CPU-seconds per report, idle
    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    codes: list[tuple[int, str]] = field(default_factory=list)  # (instance, code)
    signed_in: int = 0
    signin_errors: list[str] = field(default_factory=list)
    elapsed: float = 0.0

    @property
    def ceiling(self) -> float:
        return cores() / self.cpu_per_report if self.cpu_per_report else float("inf")

    @property
    def rho(self) -> float:
        return (self.reporters / self.duration) / self.ceiling

    @property
    def target_p95(self) -> float:
        return 3 * self.t1 / (1 - self.rho) if self.rho < 1 else float("inf")


async def idle_baseline(burst: Burst, bases: Sequence[str], pids: Sequence[int], n: int) -> None:
    await submit(bases[0])  # warm: caches, lazy imports
    times: list[float] = []
    cpu0 = sum(process_cpu_seconds(p) for p in pids)
    for i in range(n):
        start = time.perf_counter()
        await submit(bases[i % len(bases)])
        times.append(time.perf_counter() - start)
    burst.cpu_per_report = (sum(process_cpu_seconds(p) for p in pids) - cpu0) / n
    burst.t1 = statistics.median(times)


async def run_burst(burst: Burst, bases: Sequence[str], seed: int = 17) -> None:
    rng = random.Random(seed)
    arrivals = sorted(rng.uniform(0, burst.duration) for _ in range(burst.reporters))
    start = time.perf_counter()

    async def reporter(i: int, at: float) -> None:
        await asyncio.sleep(max(0.0, start + at - time.perf_counter()))
        arrived = time.perf_counter()
        instance = i % len(bases)
        try:
            code = await submit(bases[instance])
        except Exception as exc:
            burst.errors.append(f"{type(exc).__name__}: {exc}")
            return
        burst.latencies.append(time.perf_counter() - arrived)
        burst.codes.append((instance, code))

    async def report_progress() -> None:
        while True:
            await asyncio.sleep(30)
            progress(f"  {len(burst.codes)} receipts, {len(burst.errors)} errors")

    ticker = asyncio.ensure_future(report_progress())
    try:
        await asyncio.gather(*(reporter(i, at) for i, at in enumerate(arrivals)))
    finally:
        ticker.cancel()
    burst.elapsed = time.perf_counter() - start


async def sign_in_all(burst: Burst, bases: Sequence[str]) -> None:
    """Every receipt signs in, on another instance than the one that issued it (if any)."""
    queue = list(burst.codes)
    lock = asyncio.Lock()

    async def worker() -> None:
        while True:
            async with lock:
                if not queue:
                    return
                instance, code = queue.pop()
            try:
                await sign_in(bases[(instance + 1) % len(bases)], code)
            except Exception as exc:
                burst.signin_errors.append(f"{type(exc).__name__}: {exc}")
            else:
                burst.signed_in += 1

    await asyncio.gather(*(worker() for _ in range(2 * cores())))


def measure(burst: Burst, servers: Sequence[ServerProcess], idle_n: int) -> None:
    bases = [s.base_url for s in servers]
    pids = [s.pid for s in servers]
    asyncio.run(idle_baseline(burst, bases, pids, idle_n))
    progress(
        f"{burst.name}: idle {burst.t1 * 1000:.0f} ms, {burst.cpu_per_report * 1000:.0f} ms CPU "
        f"per report; {burst.reporters} reporters over {burst.duration:.0f} s"
    )
    asyncio.run(run_burst(burst, bases))
    progress(f"{burst.name}: signing in {len(burst.codes)} receipts")
    asyncio.run(sign_in_all(burst, bases))


def sqlite_setup(burst: Burst, idle_n: int) -> None:
    server = PortalServer(ENV, reader=True)
    try:
        server.start()
        measure(burst, [server], idle_n)
    except Exception:
        print("--- server log (tail) ---\n" + server.tail(), file=sys.stderr)
        raise
    finally:
        server.stop()


def pg_setup(burst: Burst, idle_n: int) -> None:
    with PgRedis("burst_bench", ENV) as installation:
        measure(burst, installation.serve(burst.instances), idle_n)


# --- statements per request ------------------------------------------------------------------


@contextlib.contextmanager
def _environ(env: dict[str, str]) -> Iterator[None]:
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def statements_per_request(n: int = 10) -> tuple[float, float, int]:
    """(median write-transaction statements, median statements in all, max write) per POST
    /report, in-process on SQLite with warm caches."""
    from litestar.testing import TestClient
    from sqlalchemy import event

    from portal.app import create_app
    from portal.kernel.settings import Settings

    control = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE")
    with tempfile.TemporaryDirectory(prefix="portal-bench-stmts-") as tmp:
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("PORTAL_")},
            "PORTAL_DATA_DIR": str(Path(tmp) / "data"),
            "PORTAL_MODE": "development",
            "TMPDIR": tmp,
            **ENV,
        }
        env.pop("DATABASE_URL", None)
        env.pop("REDIS_URL", None)
        portal_init(env)
        appoint_reader(env)
        with _environ(env):
            app = create_app(Settings.from_env(env))
        writes: list[int] = []
        totals: list[int] = []
        with TestClient(app, base_url="http://127.0.0.1") as client:
            services = app.state["services"]
            engines = {id(e): e for e in (services.db.engine, services.db.read_engine)}
            # statements grouped by the transaction that sent them: the submission's write
            # transaction is the one that inserts the case (the nonce timer's are not counted)
            current: dict[int, list[str]] = {}
            done: list[list[str]] = []

            def on_statement(conn: Any, _cur: Any, statement: str, *_a: Any) -> None:
                if not statement.lstrip().upper().startswith(control):
                    current.setdefault(id(conn), []).append(statement)

            def on_end(conn: Any) -> None:
                done.append(current.pop(id(conn), []))

            hooks = [
                (engine.sync_engine, name, fn)
                for engine in engines.values()
                for name, fn in (
                    ("before_cursor_execute", on_statement),
                    ("commit", on_end),
                    ("rollback", on_end),
                )
            ]
            for target, name, fn in hooks:
                event.listen(target, name, fn)
            try:
                for i in range(n + 1):
                    page = client.get("/report/new")
                    ctype, length, body = report_body(
                        hidden_field(page.text, "_csrf_token"),
                        hidden_field(page.text, "submission_token"),
                    )
                    done.clear()
                    r = client.post(
                        "/report",
                        content=b"".join(body),
                        headers={"Content-Type": ctype, "Content-Length": str(length)},
                    )
                    if r.status_code != 200:
                        raise RuntimeError(f"in-process report: HTTP {r.status_code}")
                    if i:  # the first one fills the caches
                        mine = [tx for tx in done if any("INSERT INTO cases " in s for s in tx)]
                        writes.append(len(mine[0]) if mine else -1)
                        if mine and len(mine[0]) > 8 and os.environ.get("BURST_DEBUG"):
                            print("\n".join(s[:100] for s in mine[0]), file=sys.stderr)
                        totals.append(
                            sum(
                                len(tx)
                                for tx in done
                                if not any("submission_nonces SET" in s for s in tx)
                            )
                        )
            finally:
                for target, name, fn in hooks:
                    event.remove(target, name, fn)
    return statistics.median(writes), statistics.median(totals), max(writes)


# --- the table -------------------------------------------------------------------------------


def rows_for(burst: Burst) -> list[Row]:
    p50 = percentile(burst.latencies, 50)
    p95 = percentile(burst.latencies, 95)
    worst = max(burst.latencies, default=float("nan"))
    issued = len(burst.codes)
    n = burst.name
    return [
        check(
            f"5. {n}: {burst.reporters:,} reporters over {burst.duration:.0f} s "
            f"({burst.reporters / burst.duration:.2f}/s), errors",
            len(burst.errors), "=", 0, "", 0,
        ),
        check(
            f"   {n}: receipts that sign in afterwards"
            + (" (on the other instance)" if burst.instances > 1 else "")
            + f", of {issued:,} issued",
            burst.signed_in, "=", burst.reporters, "", 0,
        ),
        measured(
            f"   {n}: idle time to the receipt page t1 (median) / server CPU per report",
            f"{burst.t1 * 1000:.0f} ms / {burst.cpu_per_report * 1000:.0f} ms",
        ),
        measured(
            f"   {n}: ceiling {cores()} cores / CPU per report; load rho = arrivals / ceiling",
            f"{burst.ceiling:.2f} reports/s; rho {burst.rho:.2f}",
        ),
        info(
            f"   {n}: time to the receipt page p50 / max",
            f"{p50 * 1000:.0f} / {worst * 1000:.0f} ms",
        ),
        check(
            f"  {n}: time to the receipt page p95 (target 3 t1 / (1 - rho))",
            p95 * 1000, "<=", round(min(burst.target_p95, 1e6) * 1000), " ms", 0,
        ),
    ]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--small", action="store_true", help="= --duration 60")
    parser.add_argument("--duration", type=float, help="seconds of arrivals (600)")
    parser.add_argument("--reporters", type=int, help="reporters (2,000 per 600 s)")
    parser.add_argument("--setup", choices=("sqlite", "pg", "both"), default="both")
    parser.add_argument("--idle", type=int, default=5, help="idle submissions for t1 (5)")
    add_save_argument(parser)
    args = parser.parse_args()
    stop_on_sigterm()
    duration = args.duration or (60.0 if args.small else 600.0)
    reporters = args.reporters or max(1, round(REPORTERS_PER_10_MIN * duration / 600))
    rows: list[Row] = []
    progress("statements per request (in-process)")
    write_median, all_median, write_max = statements_per_request()
    rows += [
        info(
            "   statements per POST /report in its write transaction (median)",
            f"{write_median:.0f}",
        ),
        check(
            "4. statements per POST /report in its write transaction (max)",
            write_max, "<=", 8, "", 0,
        ),
        info("   statements per POST /report in all (median)", f"{all_median:.0f}"),
    ]  # fmt: skip
    bursts: list[Burst] = []
    if args.setup in ("sqlite", "both"):
        bursts.append(Burst("one instance, SQLite", 1, reporters, duration))
        progress("one instance, SQLite")
        sqlite_setup(bursts[-1], args.idle)
        rows += rows_for(bursts[-1])
    if args.setup in ("pg", "both"):
        bursts.append(Burst("two instances, PostgreSQL + Redis", 2, reporters, duration))
        progress("two instances, PostgreSQL + Redis")
        pg_setup(bursts[-1], args.idle)
        rows += rows_for(bursts[-1])
    for burst in bursts:
        for err in sorted(set(burst.errors + burst.signin_errors))[:5]:
            progress(f"{burst.name}: {err}")
    header = (
        f"burst bench{' --small' if args.small else ''}: {cores()} CPUs, "
        f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC, portal in development mode"
    )
    table = render(rows)
    print(header)
    print()
    print(table)
    save("burst.md", f"{header}\n\n{table}\n", args.save)


if __name__ == "__main__":
    main()
