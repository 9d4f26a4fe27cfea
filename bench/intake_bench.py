"""Benchmark of the reporter intake over HTTP (run by hand or through `make bench`).

    .venv/bin/python bench/intake_bench.py [--small]

Starts `portal init` + `portal serve` (development mode, temporary data dir, free loopback
port) and a tiny discard server, measures, stops both, prints one markdown table
(metric | value | target | met?) and writes it to bench/results/intake.md.

1. intake throughput with 2 x cores concurrent clients, against the physical limit measured
   in the same run (cores / CPU-seconds of one Argon2id derivation at PRODUCTION_ARGON2);
2. receipt sign-in latency with few and with many cases stored (synthetic rows inserted
   directly into the database);
3. a large evidence upload streamed from a generator: server memory above idle, and
   throughput against a server that receives and discards the same bytes;
4. landing-page p99 under full submission load against its idle p99.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import secrets
import statistics
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import httpx
from common import (
    MIB,
    ROOT,
    CpuMeter,
    PortalServer,
    Row,
    ServerProcess,
    cores,
    free_port,
    hidden_field,
    met,
    percentile,
    proc_status_kib,
    receipt_code,
    render_table,
    reset_peak_rss,
    stop_on_sigterm,
)

from crypto.params import PRODUCTION_ARGON2, derive_key

RESULTS = ROOT / "bench" / "results" / "intake.md"
CHUNK = 256 * 1024  # bytes per piece of the generated upload body

# The fields of a minimal valid anonymous report, in the order the form sends them.
REPORT_FIELDS: list[tuple[str, str]] = [
    ("kind", "report"),
    ("identity_mode", "anonymous"),
    ("category", "bribery"),
    ("relation", "employee"),
    ("subject_name", "Benchmark Subject"),
    ("what", "A benchmark report: the supplier paid the buyer to win the tender."),
    ("declaration", "yes"),
]


# --- multipart bodies, generated on the fly -----------------------------------------------------


@dataclass
class FileSpec:
    name: str
    filename: str
    size: int
    content_type: str = "application/octet-stream"
    sent_at: list[float] = field(default_factory=list)  # perf_counter when the last byte left


def _part_header(boundary: str, name: str, filename: str | None, ctype: str | None) -> bytes:
    disp = f'Content-Disposition: form-data; name="{name}"'
    if filename is not None:
        disp += f'; filename="{filename}"'
    head = f"--{boundary}\r\n{disp}\r\n"
    if ctype:
        head += f"Content-Type: {ctype}\r\n"
    return (head + "\r\n").encode()


def multipart(
    fields: list[tuple[str, str]], file: FileSpec | None = None
) -> tuple[str, int, Iterator[bytes]]:
    """(content type, exact length, iterator of body pieces). The file content comes from one
    random 1 MiB block whose first 8 bytes change per piece: never held whole in memory."""
    boundary = "bench" + secrets.token_hex(16)
    head = b"".join(
        _part_header(boundary, name, None, None) + value.encode() + b"\r\n"
        for name, value in fields
    )
    tail = f"--{boundary}--\r\n".encode()
    file_head = b""
    if file is not None:
        file_head = _part_header(boundary, file.name, file.filename, file.content_type)
    size = file.size if file else 0
    length = len(head) + len(file_head) + size + (2 if file else 0) + len(tail)

    def pieces() -> Iterator[bytes]:
        yield head
        if file is not None:
            yield file_head
            block = bytearray(os.urandom(MIB))
            sent, n = 0, 0
            while sent < file.size:
                take = min(CHUNK, file.size - sent)
                offset = (n * CHUNK) % (MIB - CHUNK + 1)
                piece = bytearray(block[offset : offset + take])
                piece[:8] = n.to_bytes(8, "big")
                yield bytes(piece[:take])
                sent += take
                n += 1
            yield b"\r\n"
        yield tail
        if file is not None:
            file.sent_at.append(time.perf_counter())

    return f"multipart/form-data; boundary={boundary}", length, pieces()


def report_body(
    csrf: str, token: str, file: FileSpec | None = None
) -> tuple[str, int, Iterator[bytes]]:
    fields = [("_csrf_token", csrf), ("submission_token", token), *REPORT_FIELDS]
    return multipart(fields, file)


# --- flows -----------------------------------------------------------------------------------


class FlowError(RuntimeError):
    pass


def submit_report_sync(client: httpx.Client) -> str:
    page = client.get("/report/new")
    page.raise_for_status()
    ctype, length, body = report_body(
        hidden_field(page.text, "_csrf_token"), hidden_field(page.text, "submission_token")
    )
    r = client.post(
        "/report",
        content=b"".join(body),
        headers={"Content-Type": ctype, "Content-Length": str(length)},
    )
    code = receipt_code(r.text) if r.status_code == 200 else None
    if code is None:
        raise FlowError(f"submission failed: HTTP {r.status_code}")
    return code


async def submit_report_async(client: httpx.AsyncClient) -> bool:
    page = await client.get("/report/new")
    if page.status_code != 200:
        return False
    ctype, length, body = report_body(
        hidden_field(page.text, "_csrf_token"), hidden_field(page.text, "submission_token")
    )
    r = await client.post(
        "/report",
        content=b"".join(body),
        headers={"Content-Type": ctype, "Content-Length": str(length)},
    )
    return r.status_code == 200 and receipt_code(r.text) is not None


def sign_in_seconds(base_url: str, code: str) -> float:
    """Seconds for POST /follow-up with a right code (a fresh client: no session yet)."""
    with httpx.Client(base_url=base_url, timeout=60.0) as client:
        page = client.get("/follow-up")
        page.raise_for_status()
        form = {
            "_csrf_token": hidden_field(page.text, "_csrf_token"),
            "code": code,
            "attempts": hidden_field(page.text, "attempts"),
        }
        start = time.perf_counter()
        r = client.post("/follow-up", data=form)
        elapsed = time.perf_counter() - start
        if r.status_code != 303 or r.headers.get("location") != "/follow-up/case":
            raise FlowError(f"sign-in with a right code failed: HTTP {r.status_code}")
        return elapsed


# --- 0. the physical limit ---------------------------------------------------------------------


def argon2_seconds(runs: int = 5) -> tuple[float, float]:
    """Median (wall seconds, CPU seconds of all threads) of `runs` derivations in-process."""
    walls, cpus = [], []
    for _ in range(runs):
        w, c = time.perf_counter(), time.process_time()
        derive_key(secrets.token_bytes(28), os.urandom(16), 32, PRODUCTION_ARGON2)
        walls.append(time.perf_counter() - w)
        cpus.append(time.process_time() - c)
    return statistics.median(walls), statistics.median(cpus)


# --- 2. synthetic cases ----------------------------------------------------------------------


def count_cases(db_path: Path) -> int:
    from sqlalchemy import create_engine, func, select

    from portal.kernel.db.models import Case

    engine = create_engine(f"sqlite:///{db_path}")
    try:
        with engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(Case)).scalar_one())
    finally:
        engine.dispose()


def insert_synthetic_cases(db_path: Path, how_many: int, start: int, deadline: float) -> int:
    """Receipts with random 32-byte lookup tokens, one case and one receipt wrap each, inserted
    in batches straight into the server's SQLite file. Stops at `deadline`; returns the count."""
    from sqlalchemy import create_engine, event, insert

    from portal.kernel.db.models import Case, KeyWrap, Receipt, new_id

    engine = create_engine(f"sqlite:///{db_path}")

    @event.listens_for(engine, "connect")
    def _pragmas(conn: object, _record: object) -> None:
        cur = conn.cursor()  # type: ignore[attr-defined]
        cur.execute("PRAGMA busy_timeout=30000")
        cur.close()

    today = dt.date.today()
    done = 0
    batch = 5000
    try:
        while done < how_many and time.monotonic() < deadline:
            n = min(batch, how_many - done)
            receipts, cases, wraps = [], [], []
            for i in range(start + done, start + done + n):
                rid, cid = new_id(), new_id()
                receipts.append({"id": rid, "lookup_token": os.urandom(32), "created_on": today})
                cases.append(
                    {
                        "id": cid,
                        "number": f"S{i:09d}",
                        "kind": "report",
                        "channel": "web",
                        "category": "bribery",
                        "reporter_relation": "employee",
                        "anonymous": True,
                        "stage": "received",
                        "urgent": False,
                        "received_on": today,
                        "content": os.urandom(200),
                        "suite": 1,
                    }
                )
                wraps.append(
                    {
                        "id": new_id(),
                        "case_id": cid,
                        "scope": "case",
                        "receipt_id": rid,
                        "wrapped": os.urandom(63),
                    }
                )
            with engine.begin() as conn:
                conn.execute(insert(Receipt), receipts)
                conn.execute(insert(Case), cases)
                conn.execute(insert(KeyWrap), wraps)
            done += n
    finally:
        engine.dispose()
    return done


def signin_medians(
    url_a: str, codes_a: list[str], url_b: str, codes_b: list[str], runs: int, deadline: float
) -> tuple[float, float]:
    """Median sign-in seconds on server a and on server b, `runs` each, alternating a/b and
    b/a so that neither always goes first. One warm-up each, not counted."""
    sign_in_seconds(url_a, codes_a[0])
    sign_in_seconds(url_b, codes_b[0])
    times_a: list[float] = []
    times_b: list[float] = []
    for i in range(runs):
        if time.monotonic() > deadline:
            break
        pair = [(url_a, codes_a, times_a), (url_b, codes_b, times_b)]
        for url, codes, times in pair if i % 2 == 0 else pair[::-1]:
            times.append(sign_in_seconds(url, codes[i % len(codes)]))
    if not times_a:
        raise FlowError("no sign-in finished in time")
    return statistics.median(times_a), statistics.median(times_b)


# --- 1 and 4. load ----------------------------------------------------------------------------


@dataclass
class Load:
    done: int = 0
    failed: int = 0
    elapsed: float = 0.0


async def submission_load(
    base_url: str, clients: int, stop: asyncio.Event, deadline: float, max_reports: int
) -> Load:
    """`clients` loops of GET form + POST report until `stop` is set, `deadline` (monotonic)
    passes or `max_reports` were attempted. A request in flight at the end is waited for and
    counted: the rate is completions over the whole time."""
    load = Load()
    attempts = 0

    async def one_client() -> None:
        nonlocal attempts
        async with httpx.AsyncClient(base_url=base_url, timeout=120.0) as client:
            while not stop.is_set() and time.monotonic() < deadline and attempts < max_reports:
                attempts += 1
                try:
                    ok = await submit_report_async(client)
                except (httpx.HTTPError, LookupError):
                    ok = False
                if ok:
                    load.done += 1
                else:
                    load.failed += 1

    start = time.perf_counter()
    await asyncio.gather(*(one_client() for _ in range(clients)))
    load.elapsed = time.perf_counter() - start
    return load


async def landing_latencies(
    base_url: str, count: int, deadline: float, gap_s: float = 0.02
) -> list[float]:
    times: list[float] = []
    async with httpx.AsyncClient(base_url=base_url, timeout=60.0) as client:
        for _ in range(5):  # warm-up
            await client.get("/")
        for _ in range(count):
            if time.monotonic() > deadline:
                break
            start = time.perf_counter()
            r = await client.get("/")
            times.append(time.perf_counter() - start)
            if r.status_code != 200:
                raise FlowError(f"landing page: HTTP {r.status_code}")
            await asyncio.sleep(gap_s)
    return times


async def landing_under_load(
    base_url: str, clients: int, count: int, time_cap: float
) -> tuple[list[float], Load]:
    stop = asyncio.Event()
    deadline = time.monotonic() + time_cap
    load_task = asyncio.create_task(
        submission_load(base_url, clients, stop, deadline, max_reports=10_000)
    )
    await asyncio.sleep(2.0)  # let every client reach its Argon2id derivation
    try:
        times = await landing_latencies(base_url, count, deadline)
    finally:
        stop.set()
    return times, await load_task


async def landing_rounds(
    base_url: str, clients: int, count: int, rounds: int, time_cap: float
) -> tuple[list[float], list[float], Load]:
    """`count` idle and `count` loaded GETs, alternating in `rounds` blocks so that noise from
    other processes falls on both sides alike. Returns (idle, loaded, the loads summed)."""
    idle: list[float] = []
    busy: list[float] = []
    total = Load()
    per = max(1, count // rounds)
    end = time.monotonic() + time_cap
    for _ in range(rounds):
        if time.monotonic() > end:
            break
        idle += await landing_latencies(base_url, per, end)
        times, load = await landing_under_load(base_url, clients, per, end - time.monotonic())
        busy += times
        total.done += load.done
        total.failed += load.failed
        total.elapsed += load.elapsed
    return idle, busy, total


# --- 3. upload --------------------------------------------------------------------------------


class RssSampler(threading.Thread):
    """Samples VmRSS of a process every `interval` seconds until stopped (bounded by `limit_s`)."""

    def __init__(self, pid: int, interval: float = 0.01, limit_s: float = 600.0) -> None:
        super().__init__(daemon=True)
        self.pid, self.interval, self.limit_s = pid, interval, limit_s
        self.samples: list[tuple[float, int]] = []
        self._halt = threading.Event()

    def run(self) -> None:
        end = time.monotonic() + self.limit_s
        while not self._halt.is_set() and time.monotonic() < end:
            self.samples.append((time.perf_counter(), proc_status_kib(self.pid, "VmRSS")))
            self._halt.wait(self.interval)

    def stop(self) -> None:
        self._halt.set()
        self.join(5)

    def peak_kib(self, until: float | None = None) -> int:
        values = [kib for t, kib in self.samples if until is None or t <= until]
        return max(values, default=0)


@dataclass
class UploadRun:
    seconds_sent: float  # until the generator gave its last byte to the socket
    seconds_total: float  # until the response arrived
    idle_kib: int = 0
    peak_sent_kib: int = 0
    peak_total_kib: int = 0
    hwm_kib: int = 0
    client_over_kib: int = -1  # this process's peak RSS above its RSS before the upload


def upload(
    server: ServerProcess, path: str, size: int, *, portal_form: bool, timeout_s: float
) -> UploadRun:
    with httpx.Client(base_url=server.base_url, timeout=timeout_s) as client:
        fields: list[tuple[str, str]] = []
        if portal_form:
            page = client.get("/report/new")
            page.raise_for_status()
            fields = [
                ("_csrf_token", hidden_field(page.text, "_csrf_token")),
                ("submission_token", hidden_field(page.text, "submission_token")),
                *REPORT_FIELDS,
            ]
        spec = FileSpec("evidence", "evidence.bin", size)
        ctype, length, body = multipart(fields, spec)
        pid = server.pid
        time.sleep(0.5)
        hwm_reset = reset_peak_rss(pid)
        idle = proc_status_kib(pid, "VmRSS")
        me = os.getpid()
        own_reset = reset_peak_rss(me)
        own_before = proc_status_kib(me, "VmRSS")
        sampler = RssSampler(pid, limit_s=timeout_s)
        sampler.start()
        start = time.perf_counter()
        try:
            r = client.post(
                path, content=body, headers={"Content-Type": ctype, "Content-Length": str(length)}
            )
            end = time.perf_counter()
        finally:
            sampler.stop()
        hwm = proc_status_kib(pid, "VmHWM") if hwm_reset else 0
        own_over = proc_status_kib(me, "VmHWM") - own_before if own_reset else -1
    if r.status_code != 200 or (portal_form and receipt_code(r.text) is None):
        raise FlowError(f"upload to {path} failed: HTTP {r.status_code}")
    if not portal_form and r.text.strip() != str(length):
        raise FlowError(f"discard server counted {r.text.strip()} bytes, sent {length}")
    sent = spec.sent_at[0] if spec.sent_at else end
    return UploadRun(
        seconds_sent=sent - start,
        seconds_total=end - start,
        idle_kib=idle,
        peak_sent_kib=sampler.peak_kib(until=sent),
        peak_total_kib=sampler.peak_kib(),
        hwm_kib=hwm,
        client_over_kib=own_over,
    )


def serve_discard(port: int) -> None:
    """The baseline: a Litestar app that reads the request body and drops it, served by uvicorn
    with the options `portal serve` uses."""
    import uvicorn
    from litestar import Litestar, Request, post

    @post("/discard", request_max_body_size=None, status_code=200)
    async def discard(request: Request) -> str:
        n = 0
        async for chunk in request.stream():
            n += len(chunk)
        return str(n)

    app = Litestar(route_handlers=[discard], openapi_config=None, logging_config=None)
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=port,
        server_header=False,
        date_header=False,
        access_log=False,
        proxy_headers=False,
        log_config=None,
    )


# --- main ------------------------------------------------------------------------------------


@dataclass
class Config:
    small: bool
    duration: float
    upload_mib: int
    few_cases: int
    many_cases: int
    signins: int = 20
    landing_gets: int = 200


def progress(msg: str) -> None:
    print(f"[intake bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def run(cfg: Config) -> tuple[list[Row], str]:
    ncores = cores()
    clients = 2 * ncores
    rows: list[Row] = []

    # 0. the physical limit, measured before any server runs
    argon_wall, argon_cpu = argon2_seconds(5)
    limit = ncores / argon_cpu
    limit_wall = ncores / argon_wall

    env = {
        "PORTAL_MAX_FILE_MB": str(cfg.upload_mib + 16),
        # the global receipt budget would make sign-ins queue: not what is measured here
        "PORTAL_RECEIPT_GLOBAL_PER_MINUTE": "100000",
    }
    server = PortalServer(env)  # many cases; then every other measurement
    small_server = PortalServer(env)  # few cases, for the sign-in comparison only
    discard = ServerProcess(
        [
            sys.executable,
            str(Path(__file__).resolve()),
            "--discard-server",
            str(port := free_port()),
        ],
        port=port,
        env={**os.environ, "TMPDIR": str(server.data_dir)},
    )
    try:
        progress("Argon2id measured; starting two portals")
        server.start()
        small_server.start()
        base = server.base_url

        # 2. receipt sign-in latency, few vs many cases: two servers, timed alternately so
        # that noise from other processes falls on both alike
        codes: dict[str, list[str]] = {}
        for srv in (small_server, server):
            with httpx.Client(base_url=srv.base_url, timeout=60.0) as client:
                codes[srv.base_url] = [submit_report_sync(client) for _ in range(5)]
        progress("5 reports submitted to each; inserting synthetic cases")
        have = count_cases(small_server.database_path)
        insert_synthetic_cases(
            small_server.database_path, cfg.few_cases - have, 0, time.monotonic() + 60
        )
        few = count_cases(small_server.database_path)
        t0 = time.monotonic()
        inserted = insert_synthetic_cases(
            server.database_path, cfg.many_cases - count_cases(server.database_path), 0, t0 + 300
        )
        insert_s = time.monotonic() - t0
        many = count_cases(server.database_path)
        progress(f"{few:,} and {many:,} cases; timing sign-ins")
        t_few, t_many = signin_medians(
            small_server.base_url,
            codes[small_server.base_url],
            base,
            codes[base],
            cfg.signins,
            time.monotonic() + 240,
        )
        small_server.stop()

        # 1. intake throughput
        progress("submission load")
        with CpuMeter(server.pid) as cpu:
            load = asyncio.run(
                submission_load(
                    base,
                    clients,
                    asyncio.Event(),
                    time.monotonic() + cfg.duration,
                    max_reports=int(cfg.duration * 100),
                )
            )
        rate = load.done / load.elapsed

        # 4. landing page, idle and under load, alternating
        progress("landing page, idle and under load")
        idle_times, busy_times, busy_load = asyncio.run(
            landing_rounds(base, clients, cfg.landing_gets, rounds=4, time_cap=180)
        )

        # 3. large upload: the portal, then the discard baseline
        progress("uploads")
        size = cfg.upload_mib * MIB
        timeout = max(120.0, cfg.upload_mib / 5)
        discard.start()
        # discard, portal, discard: the baseline brackets the measurement
        base_before = upload(discard, "/discard", size, portal_form=False, timeout_s=timeout)
        up = upload(server, "/report", size, portal_form=True, timeout_s=timeout)
        base_after = upload(discard, "/discard", size, portal_form=False, timeout_s=timeout)
    except Exception:
        tail = server.tail()
        if tail:
            print("--- server log (tail) ---\n" + tail, file=sys.stderr)
        raise
    finally:
        discard.stop()
        small_server.stop()
        server.stop()

    ratio = rate / limit
    rows += [
        (
            "Argon2id PRODUCTION_ARGON2 "
            f"({PRODUCTION_ARGON2.memory_kib // 1024} MiB, t={PRODUCTION_ARGON2.iterations}, "
            f"p={PRODUCTION_ARGON2.lanes}), median of 5",
            f"{argon_wall * 1000:.0f} ms wall, {argon_cpu * 1000:.0f} ms CPU",
            "(measured)",
            "",
        ),
        (
            f"physical limit: {ncores} cores / CPU-seconds per derivation",
            f"{limit:.2f} reports/s",
            "(measured)",
            "",
        ),
        (
            "  (cores / wall-seconds per derivation)",
            f"{limit_wall:.2f} reports/s",
            "(info)",
            "",
        ),
        (
            f"1. intake throughput, {clients} clients, {cfg.duration:.0f} s "
            f"({load.done} reports, {load.failed} failed)",
            f"{rate:.2f} reports/s",
            "",
            "",
        ),
        ("  ratio to the physical limit", f"{ratio:.2f}", ">= 0.7", met(ratio >= 0.7)),
        (
            f"   server CPU per report (one derivation: {argon_cpu * 1000:.0f} ms)",
            f"{cpu.server / max(1, load.done) * 1000:.0f} ms",
            "(info)",
            "",
        ),
        (
            "   one derivation's CPU / server CPU per report (1.0 = no other server work)",
            f"{argon_cpu / max(1e-9, cpu.server / max(1, load.done)):.2f}",
            "(info)",
            "",
        ),
        (
            "   CPU during the load: server / bench client / other processes",
            f"{cpu.share(cpu.server):.0%} / {cpu.share(cpu.client):.0%} / "
            f"{cpu.share(cpu.others):.0%}",
            "(info)",
            "",
        ),
        (
            "   ratio to the limit scaled to the CPU other processes left free",
            f"{rate / (limit * max(0.01, 1 - cpu.share(cpu.others))):.2f}",
            "(info)",
            "",
        ),
    ]
    sig_ratio = t_many / t_few
    rows += [
        (
            f"2. receipt sign-in, median of {cfg.signins}, {few:,} cases",
            f"{t_few * 1000:.0f} ms",
            "",
            "",
        ),
        (
            f"   receipt sign-in, median of {cfg.signins}, {many:,} cases "
            f"({inserted:,} synthetic, inserted in {insert_s:.1f} s; another server, "
            "timed alternately)",
            f"{t_many * 1000:.0f} ms",
            "",
            "",
        ),
        ("  ratio many / few", f"{sig_ratio:.2f}", "<= 1.2", met(sig_ratio <= 1.2)),
    ]
    mib = size / MIB
    over_sent = (up.peak_sent_kib - up.idle_kib) / 1024
    over_total = (up.peak_total_kib - up.idle_kib) / 1024
    over_hwm = (up.hwm_kib - up.idle_kib) / 1024 if up.hwm_kib else float("nan")
    rate_sent = mib / up.seconds_sent
    rate_total = mib / up.seconds_total
    base_rates = (mib / base_before.seconds_total, mib / base_after.seconds_total)
    base_rate = statistics.mean(base_rates)
    rows += [
        (
            f"3. {mib:,.0f} MiB evidence upload: server RSS above idle "
            f"({up.idle_kib / 1024:.0f} MiB) while the body streams",
            f"{over_sent:.1f} MiB",
            "<= 100 MiB",
            met(over_sent <= 100),
        ),
        (
            "   server RSS above idle, whole request (sampled; includes the receipt's "
            "Argon2id derivation)",
            f"{over_total:.1f} MiB",
            "(info)",
            "",
        ),
        ("   server VmHWM above idle, whole request", f"{over_hwm:.1f} MiB", "(info)", ""),
        (
            "   discard server (reads request.stream(), drops it), mean of before and after",
            f"{base_rate:.0f} MiB/s ({base_rates[0]:.0f}, {base_rates[1]:.0f})",
            "",
            "",
        ),
        ("   portal, body streamed in", f"{rate_sent:.0f} MiB/s", "", ""),
        (
            "  ratio to the discard server (body streamed in)",
            f"{rate_sent / base_rate:.2f}",
            ">= 0.7",
            met(rate_sent / base_rate >= 0.7),
        ),
        (
            f"   portal, until the receipt page ({up.seconds_total - up.seconds_sent:.2f} s after "
            "the last byte)",
            f"{rate_total:.0f} MiB/s",
            "(info)",
            "",
        ),
        (
            "  ratio to the discard server (until the receipt)",
            f"{rate_total / base_rate:.2f}",
            "(info)",
            "",
        ),
    ]
    p99_idle = percentile(idle_times, 99)
    p99_busy = percentile(busy_times, 99)
    rows += [
        (
            f"4. landing page p99, idle ({len(idle_times)} GETs)",
            f"{p99_idle * 1000:.1f} ms",
            "",
            "",
        ),
        (
            f"   landing page p99 under submission load ({len(busy_times)} GETs, "
            f"{clients} clients, {busy_load.done / busy_load.elapsed:.2f} reports/s)",
            f"{p99_busy * 1000:.1f} ms",
            "",
            "",
        ),
        (
            "  ratio load / idle",
            f"{p99_busy / p99_idle:.1f}x",
            "<= 5x",
            met(p99_busy <= 5 * p99_idle),
        ),
    ]
    client_over = up.client_over_kib / 1024 if up.client_over_kib >= 0 else float("nan")
    rows.append(
        (
            "bench client RSS above its own idle during the upload (body generated on the fly)",
            f"{client_over:.1f} MiB",
            "(info)",
            "",
        )
    )
    header = (
        f"intake bench{' --small' if cfg.small else ''}: {ncores} CPUs, "
        f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC, portal in development mode "
        "(plain-http cookies), SQLite"
    )
    return rows, header


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--small", action="store_true", help="5 s load, 10,000 cases, 128 MiB")
    parser.add_argument("--duration", type=float, help="seconds of submission load (20; 5)")
    parser.add_argument("--upload-mib", type=int, help="evidence upload size (1024; 128)")
    parser.add_argument("--many-cases", type=int, help="cases for the large index (100000; 10000)")
    parser.add_argument("--discard-server", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.discard_server:
        serve_discard(args.discard_server)
        return
    stop_on_sigterm()
    cfg = Config(
        small=args.small,
        duration=min(300.0, args.duration or (5.0 if args.small else 20.0)),
        upload_mib=args.upload_mib or (128 if args.small else 1024),
        few_cases=100,
        many_cases=args.many_cases or (10_000 if args.small else 100_000),
    )
    rows, header = run(cfg)
    table = render_table(rows)
    print(header)
    print()
    print(table)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(f"{header}\n\n{table}\n", encoding="utf-8")


if __name__ == "__main__":
    main()
