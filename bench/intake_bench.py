"""Benchmark of the reporter intake over HTTP (run by hand or through `make bench`).

    .venv/bin/python bench/intake_bench.py [--small] [--duration S] [--clients 8] [--save]

Measures both receipt parameter sets in one run: `LEGACY_RECEIPT_ARGON2` (what installations
set up before issue 17 keep, pinned in their keyring) and `RECEIPT_ARGON2` (new
installations). Starts three portals (`portal init` + `portal serve`, development mode,
temporary data dirs, free loopback ports, an intake officer appointed): a new installation,
the same with many cases, and one whose keyring was pinned to the old parameters before
`portal init`; plus a tiny discard server. Prints one table (bench/table.py); with --save also
writes it to bench/results/intake.md.

0. per parameter set: one derivation's wall and CPU time, and the ceiling: derivations per
   second with one thread per core, in-process, before any server runs;
1. intake with 8 concurrent clients (GET form + POST report), old and new parameters in
   alternating blocks: new / old >= 3x, new / the new ceiling >= 0.7;
2. receipt sign-in median on the new installation against one derivation timed between the
   sign-ins (<= 1.3x), and with many cases against few (<= 1.2); the old installation's
   receipts sign in (its median, for information);
3. a large evidence upload streamed from a generator: server memory above idle, and
   throughput against a server that receives and discards the same bytes;
4. landing-page p99 under the 8-client submission load against its idle p99 (<= 3x).
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import contextlib
import datetime as dt
import multiprocessing
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
    CpuMeter,
    PortalServer,
    ServerProcess,
    cores,
    free_port,
    hidden_field,
    percentile,
    proc_status_kib,
    receipt_code,
    reset_peak_rss,
    stop_on_sigterm,
)
from table import Row, add_save_argument, check, info, measured, render, row, save

from crypto.params import LEGACY_RECEIPT_ARGON2, RECEIPT_ARGON2, Argon2Params, derive_key
from portal.reporter.submission import DERIVATION_NICENESS

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


def argon2_seconds(params: Argon2Params, runs: int = 5) -> tuple[float, float]:
    """Median (wall seconds, CPU seconds of all threads) of `runs` derivations in-process."""
    walls, cpus = [], []
    for _ in range(runs):
        w, c = time.perf_counter(), time.process_time()
        derive_key(secrets.token_bytes(28), os.urandom(16), 32, params)
        walls.append(time.perf_counter() - w)
        cpus.append(time.process_time() - c)
    return statistics.median(walls), statistics.median(cpus)


def argon2_ceiling(params: Argon2Params, threads: int, seconds: float) -> float:
    """Derivations per second this machine does alone: `threads` threads deriving back to back
    for `seconds` (libargon2 releases the GIL), in-process, at the scheduling priority the
    portal gives its derivation threads (portal.reporter.submission.DERIVATION_NICENESS: on a
    machine shared with other work, a nicer thread gets less of it; on an idle one it changes
    nothing)."""
    stop = time.monotonic() + seconds
    done = [0] * threads

    def work(i: int) -> None:
        with contextlib.suppress(AttributeError, OSError):
            tid = threading.get_native_id()
            nice = os.getpriority(os.PRIO_PROCESS, tid) + DERIVATION_NICENESS
            os.setpriority(os.PRIO_PROCESS, tid, min(19, nice))
        while time.monotonic() < stop:
            derive_key(secrets.token_bytes(28), os.urandom(16), 32, params)
            done[i] += 1

    workers = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    start = time.perf_counter()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return sum(done) / (time.perf_counter() - start)


def pin_line(params: Argon2Params) -> str:
    """The keyring's receipt-parameters line for `params`."""
    return f"argon2id v=19 m={params.memory_kib} t={params.iterations} p={params.lanes}"


def describe(params: Argon2Params) -> str:
    return f"{params.memory_kib // 1024} MiB, t={params.iterations}, p={params.lanes}"


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
    url_a: str,
    codes_a: list[str],
    url_b: str,
    codes_b: list[str],
    runs: int,
    deadline: float,
    params: Argon2Params,
) -> tuple[float, float, float]:
    """Median sign-in seconds on server a and on server b, `runs` each, alternating a/b and
    b/a so that neither always goes first, and the median wall time of one in-process
    derivation at `params` timed between them (the same noise falls on all three). One warm-up
    each, not counted."""
    sign_in_seconds(url_a, codes_a[0])
    sign_in_seconds(url_b, codes_b[0])
    times_a: list[float] = []
    times_b: list[float] = []
    derivations: list[float] = []
    for i in range(runs):
        if time.monotonic() > deadline:
            break
        pair = [(url_a, codes_a, times_a), (url_b, codes_b, times_b)]
        for url, codes, times in pair if i % 2 == 0 else pair[::-1]:
            times.append(sign_in_seconds(url, codes[i % len(codes)]))
        derivations.append(argon2_seconds(params, 1)[0])
    if not times_a:
        raise FlowError("no sign-in finished in time")
    return statistics.median(times_a), statistics.median(times_b), statistics.median(derivations)


def signin_median(url: str, codes: list[str], runs: int) -> float:
    sign_in_seconds(url, codes[0])
    return statistics.median(sign_in_seconds(url, codes[i % len(codes)]) for i in range(runs))


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


def probe_landing(base_url: str, count: int, seconds: float, gap_s: float = 0.02) -> list[float]:
    """Up to ``count`` timed GETs of the landing page within ``seconds`` (after a warm-up).
    Runs in a process of its own (``landing_probe``): timed from the event loop that also
    drives the submission load, a GET would wait for that loop too, and the latency measured
    would be partly the bench's own."""
    times: list[float] = []
    deadline = time.monotonic() + seconds
    with httpx.Client(base_url=base_url, timeout=60.0) as client:
        for _ in range(5):  # warm-up
            client.get("/")
        for _ in range(count):
            if time.monotonic() > deadline:
                break
            start = time.perf_counter()
            r = client.get("/")
            times.append(time.perf_counter() - start)
            if r.status_code != 200:
                raise FlowError(f"landing page: HTTP {r.status_code}")
            time.sleep(gap_s)
    return times


@contextlib.contextmanager
def landing_probe() -> Iterator[concurrent.futures.ProcessPoolExecutor]:
    """One process (spawned: nothing of this one's loop or threads) that times the GETs."""
    ctx = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(1, mp_context=ctx) as pool:
        yield pool


async def landing_latencies(
    probe: concurrent.futures.ProcessPoolExecutor, base_url: str, count: int, deadline: float
) -> list[float]:
    seconds = max(0.0, deadline - time.monotonic())
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(probe, probe_landing, base_url, count, seconds)


async def landing_under_load(
    probe: concurrent.futures.ProcessPoolExecutor,
    base_url: str,
    clients: int,
    count: int,
    time_cap: float,
) -> tuple[list[float], Load]:
    stop = asyncio.Event()
    deadline = time.monotonic() + time_cap
    load_task = asyncio.create_task(
        submission_load(base_url, clients, stop, deadline, max_reports=10_000)
    )
    await asyncio.sleep(2.0)  # let every client reach its Argon2id derivation
    try:
        times = await landing_latencies(probe, base_url, count, deadline)
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
    with landing_probe() as probe:
        for _ in range(rounds):
            if time.monotonic() > end:
                break
            idle += await landing_latencies(probe, base_url, per, end)
            times, load = await landing_under_load(
                probe, base_url, clients, per, end - time.monotonic()
            )
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
    server_cpu_s: float = 0.0  # CPU of the server (all threads) during the POST
    client_cpu_s: float = 0.0  # CPU of this process (the client) during the POST


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
            with CpuMeter(pid) as cpu:
                r = client.post(
                    path,
                    content=body,
                    headers={"Content-Type": ctype, "Content-Length": str(length)},
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
        server_cpu_s=cpu.server,
        client_cpu_s=cpu.client,
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
    duration: float  # seconds of submission load per parameter set
    upload_mib: int
    few_cases: int
    many_cases: int
    clients: int = 8
    rounds: int = 2  # load blocks per parameter set, old and new alternating
    signins: int = 20
    landing_gets: int = 200
    save: bool = False


def progress(msg: str) -> None:
    print(f"[intake bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


@dataclass
class Measured:
    """Load measured on one server over several blocks."""

    load: Load = field(default_factory=Load)
    server_cpu: float = 0.0
    client_cpu: float = 0.0
    others_cpu: float = 0.0
    wall: float = 0.0

    def add(self, load: Load, cpu: CpuMeter) -> None:
        self.load.done += load.done
        self.load.failed += load.failed
        self.load.elapsed += load.elapsed
        self.server_cpu += cpu.server
        self.client_cpu += cpu.client
        self.others_cpu += cpu.others
        self.wall += cpu.wall

    @property
    def rate(self) -> float:
        return self.load.done / self.load.elapsed if self.load.elapsed else 0.0

    def share(self, seconds: float) -> float:
        return seconds / (cores() * self.wall) if self.wall else 0.0


def measure_load(server: PortalServer, cfg: Config, seconds: float, into: Measured) -> None:
    with CpuMeter(server.pid) as cpu:
        load = asyncio.run(
            submission_load(
                server.base_url,
                cfg.clients,
                asyncio.Event(),
                time.monotonic() + seconds,
                max_reports=int(seconds * 200),
            )
        )
    into.add(load, cpu)


def run(cfg: Config) -> tuple[list[Row], str]:
    ncores = cores()
    old_params, new_params = LEGACY_RECEIPT_ARGON2, RECEIPT_ARGON2

    # 0. what one derivation costs, before any server runs; the ceilings are measured between
    # the load blocks (servers idle), so that the noise of a shared machine hits both sides
    progress("Argon2id alone, both parameter sets")
    cost = {p: argon2_seconds(p, 5) for p in (old_params, new_params)}
    ceiling_s = 1.5 if cfg.small else 3.0
    ceilings: dict[Argon2Params, list[float]] = {old_params: [], new_params: []}

    env = {
        "PORTAL_MAX_FILE_MB": str(cfg.upload_mib + 16),
        # the global receipt budget would make sign-ins queue: not what is measured here
        "PORTAL_RECEIPT_GLOBAL_PER_MINUTE": "100000",
    }
    # new: a new installation (receipts at RECEIPT_ARGON2), few cases: intake, sign-in,
    # landing page, upload. many: the same parameters with many cases, for the index check.
    # old: an installation set up under the old parameters, pinned in its keyring.
    new = PortalServer(env, reader=True)
    many = PortalServer(env, reader=True)
    old = PortalServer(env, reader=True, receipt_pin=pin_line(old_params))
    discard = ServerProcess(
        [
            sys.executable,
            str(Path(__file__).resolve()),
            "--discard-server",
            str(port := free_port()),
        ],
        port=port,
        env={**os.environ, "TMPDIR": str(new.data_dir)},
    )
    try:
        progress("starting three portals")
        for srv in (new, many, old):
            srv.start()
        if f"m={new_params.memory_kib} KiB t={new_params.iterations}" not in new.init_output:
            raise FlowError("a new installation did not pin RECEIPT_ARGON2")

        # 2. receipt sign-in: few vs many cases (same parameters), against one derivation
        codes: dict[str, list[str]] = {}
        for srv in (new, many, old):
            with httpx.Client(base_url=srv.base_url, timeout=60.0) as client:
                codes[srv.base_url] = [submit_report_sync(client) for _ in range(5)]
        progress("5 reports submitted to each; inserting synthetic cases")
        have = count_cases(new.database_path)
        insert_synthetic_cases(new.database_path, cfg.few_cases - have, 0, time.monotonic() + 60)
        few_n = count_cases(new.database_path)
        t0 = time.monotonic()
        inserted = insert_synthetic_cases(
            many.database_path, cfg.many_cases - count_cases(many.database_path), 0, t0 + 300
        )
        insert_s = time.monotonic() - t0
        many_n = count_cases(many.database_path)
        progress(f"{few_n:,} and {many_n:,} cases; timing sign-ins")
        t_few, t_many, t_derive = signin_medians(
            new.base_url,
            codes[new.base_url],
            many.base_url,
            codes[many.base_url],
            cfg.signins,
            time.monotonic() + 240,
            new_params,
        )
        many.stop()
        t_old = signin_median(old.base_url, codes[old.base_url], max(5, cfg.signins // 2))

        # 1. intake with `clients` clients, old and new parameters in alternating blocks
        progress(f"submission load, {cfg.clients} clients, old and new parameters alternating")
        loads = {old_params: Measured(), new_params: Measured()}
        block = cfg.duration / cfg.rounds
        for _ in range(cfg.rounds):
            for params, srv in ((old_params, old), (new_params, new)):
                ceilings[params].append(argon2_ceiling(params, ncores, ceiling_s))
                measure_load(srv, cfg, block, loads[params])
        old.stop()
        ceiling = {p: statistics.mean(values) for p, values in ceilings.items()}

        # 4. landing page, idle and under load, alternating
        progress("landing page, idle and under load")
        idle_times, busy_times, busy_load = asyncio.run(
            landing_rounds(new.base_url, cfg.clients, cfg.landing_gets, rounds=4, time_cap=180)
        )

        # 3. large upload: the portal, then the discard baseline
        progress("uploads")
        size = cfg.upload_mib * MIB
        timeout = max(120.0, cfg.upload_mib / 5)
        discard.start()
        # discard, portal, discard: the baseline brackets the measurement
        base_before = upload(discard, "/discard", size, portal_form=False, timeout_s=timeout)
        up = upload(new, "/report", size, portal_form=True, timeout_s=timeout)
        base_after = upload(discard, "/discard", size, portal_form=False, timeout_s=timeout)
    except Exception:
        for srv in (new, many, old):
            tail = srv.tail()
            if tail:
                print("--- server log (tail) ---\n" + tail, file=sys.stderr)
        raise
    finally:
        discard.stop()
        for srv in (many, old, new):
            srv.stop()

    rows: list[Row] = []
    for label, params in (("old", old_params), ("new", new_params)):
        wall, cpu = cost[params]
        rows += [
            measured(
                f"Argon2id, {label} receipt parameters ({describe(params)}), median of 5",
                f"{wall * 1000:.0f} ms wall, {cpu * 1000:.0f} ms CPU",
            ),
            measured(
                f"  ceiling: derivations/s with {ncores} threads in-process, mean of "
                f"{len(ceilings[params])} x {ceiling_s:.1f} s, each just before a load block "
                "(servers idle)",
                f"{ceiling[params]:.2f} /s",
            ),
        ]
    lo, ln = loads[old_params], loads[new_params]
    new_cpu = cost[new_params][1]
    rows += [
        row(
            f"1. intake, {cfg.clients} clients, old parameters, {cfg.rounds} x {block:.0f} s "
            f"({lo.load.done} reports, {lo.load.failed} failed)",
            f"{lo.rate:.2f} reports/s",
        ),
        info("   ratio to the old parameters' ceiling", f"{lo.rate / ceiling[old_params]:.2f}"),
        row(
            f"   intake, {cfg.clients} clients, new parameters, {cfg.rounds} x {block:.0f} s "
            f"({ln.load.done} reports, {ln.load.failed} failed; blocks alternate with the old)",
            f"{ln.rate:.2f} reports/s",
        ),
        check("  ratio new / old parameters", ln.rate / max(1e-9, lo.rate), ">=", 3, "x"),
        check("  ratio to the new parameters' ceiling", ln.rate / ceiling[new_params], ">=", 0.7),
        check(
            "  failed submissions (both parameter sets)",
            lo.load.failed + ln.load.failed,
            "=",
            0,
            digits=0,
        ),
        info(
            f"   server CPU per report, new parameters (one derivation: {new_cpu * 1000:.0f} ms)",
            f"{ln.server_cpu / max(1, ln.load.done) * 1000:.0f} ms",
        ),
        info(
            "   CPU during the new-parameter load: server / bench client / other processes",
            f"{ln.share(ln.server_cpu):.0%} / {ln.share(ln.client_cpu):.0%} / "
            f"{ln.share(ln.others_cpu):.0%}",
        ),
        info(
            "   ratio to the new ceiling scaled to the CPU other processes left free",
            f"{ln.rate / (ceiling[new_params] * max(0.01, 1 - ln.share(ln.others_cpu))):.2f}",
        ),
    ]
    rows += [
        row(
            f"2. receipt sign-in, new parameters, median of {cfg.signins}, {few_n:,} cases",
            f"{t_few * 1000:.1f} ms",
        ),
        row(
            "   one derivation at the new parameters, in-process, timed between the sign-ins",
            f"{t_derive * 1000:.1f} ms",
        ),
        check("  ratio sign-in / one derivation", t_few / t_derive, "<=", 1.3, "x"),
        row(
            f"   receipt sign-in, median of {cfg.signins}, {many_n:,} cases "
            f"({inserted:,} synthetic, inserted in {insert_s:.1f} s; another server, "
            "timed alternately)",
            f"{t_many * 1000:.1f} ms",
        ),
        check("  ratio many / few cases", t_many / t_few, "<=", 1.2),
        info(
            "   receipt sign-in on the installation pinned to the old parameters "
            "(its receipts still sign in), median",
            f"{t_old * 1000:.0f} ms",
        ),
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
        check(
            f"3. {mib:,.0f} MiB evidence upload: server RSS above idle "
            f"({up.idle_kib / 1024:.0f} MiB) while the body streams",
            over_sent,
            "<=",
            100,
            " MiB",
            digits=1,
        ),
        info(
            "   server RSS above idle, whole request (sampled; includes the receipt's "
            "Argon2id derivation)",
            f"{over_total:.1f} MiB",
        ),
        info("   server VmHWM above idle, whole request", f"{over_hwm:.1f} MiB"),
        row(
            "   discard server (reads request.stream(), drops it), mean of before and after",
            f"{base_rate:.0f} MiB/s ({base_rates[0]:.0f}, {base_rates[1]:.0f})",
        ),
        row("   portal, body streamed in", f"{rate_sent:.0f} MiB/s"),
        check("  ratio to the discard server (body streamed in)", rate_sent / base_rate, ">=", 0.7),
        info(
            f"   portal, until the receipt page ({up.seconds_total - up.seconds_sent:.2f} s after "
            "the last byte)",
            f"{rate_total:.0f} MiB/s",
        ),
        info("  ratio to the discard server (until the receipt)", f"{rate_total / base_rate:.2f}"),
    ]
    p99_idle = percentile(idle_times, 99)
    p99_busy = percentile(busy_times, 99)
    rows += [
        row(f"4. landing page p99, idle ({len(idle_times)} GETs)", f"{p99_idle * 1000:.1f} ms"),
        row(
            f"   landing page p99 under submission load, new parameters ({len(busy_times)} "
            f"GETs, {cfg.clients} clients, {busy_load.done / busy_load.elapsed:.2f} reports/s)",
            f"{p99_busy * 1000:.1f} ms",
        ),
        check("  ratio load / idle", p99_busy / p99_idle, "<=", 3, "x", digits=1),
    ]
    client_over = up.client_over_kib / 1024 if up.client_over_kib >= 0 else float("nan")
    rows.append(
        info(
            "bench client RSS above its own idle during the upload (body generated on the fly)",
            f"{client_over:.1f} MiB",
        )
    )
    header = (
        f"intake bench{' --small' if cfg.small else ''}: {ncores} CPUs, "
        f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC, portal in development mode "
        "(plain-http cookies), SQLite; old receipt parameters "
        f"{describe(old_params)}, new {describe(new_params)}"
    )
    return rows, header


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--small", action="store_true", help="5 s load, 10,000 cases, 128 MiB")
    parser.add_argument(
        "--duration", type=float, help="seconds of submission load per parameter set (20; 6)"
    )
    parser.add_argument("--clients", type=int, default=8, help="concurrent reporters (8)")
    parser.add_argument("--upload-mib", type=int, help="evidence upload size (1024; 128)")
    parser.add_argument("--many-cases", type=int, help="cases for the large index (100000; 10000)")
    parser.add_argument("--discard-server", type=int, metavar="PORT", help=argparse.SUPPRESS)
    add_save_argument(parser)
    args = parser.parse_args()
    if args.discard_server:
        serve_discard(args.discard_server)
        return
    stop_on_sigterm()
    cfg = Config(
        small=args.small,
        duration=min(300.0, args.duration or (6.0 if args.small else 20.0)),
        upload_mib=args.upload_mib or (128 if args.small else 1024),
        few_cases=100,
        many_cases=args.many_cases or (10_000 if args.small else 100_000),
        clients=max(1, min(args.clients, 64)),
        save=args.save,
    )
    rows, header = run(cfg)
    table = render(rows)
    print(header)
    print()
    print(table)
    save("intake.md", f"{header}\n\n{table}\n", cfg.save)


if __name__ == "__main__":
    main()
