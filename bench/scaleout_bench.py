"""Scale-out benchmark (O2): one instance against two, and the S3 upload path against local.

    .venv/bin/python bench/scaleout_bench.py [--small]

Needs PostgreSQL (`BENCH_PG_SERVER`, default postgresql://postgres@127.0.0.1:5432) and Redis
(`BENCH_REDIS_URL`, default redis://127.0.0.1:6379/7). It creates its own database,
``scaleout_bench_<run id>``, and its own Redis key prefix (PORTAL_REDIS_PREFIX
``scaleout_bench_<run id>``), and at the end drops that database and deletes the keys under
that prefix, nothing else. It starts everything it measures as subprocesses on free loopback
ports: `portal serve` once or twice (one data directory, one database, one Redis; an intake
officer appointed after `portal init`), and moto's S3 server for the upload path. Prints one
table (bench/table.py); with --save also writes it to bench/results/scaleout.md
(scaleout-small.md with --small).

1. intake throughput (GET form + POST report, 2 x cores concurrent clients) with one and with
   two instances; the ratio, next to the physical limit: two instances on one machine with
   `cores` CPUs give at most min(2, cores / CPUs one instance used) times one, and less when
   PostgreSQL, Redis, the clients (and whatever else runs there) already saturate it;
2. receipt sign-in latency (p50/p95) with one and with two instances;
3. a large ciphertext stream written through the S3 store (moto) and through the local store:
   MB/s each, and this process's peak memory growth during the S3 write (constant memory:
   bounded by the 8 MiB part, whatever the size).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import httpx  # noqa: E402
from common import REDIS_URL, appoint_reader, private_database, private_redis_prefix  # noqa: E402
from table import Row, add_save_argument, check, info, render, row, save  # noqa: E402

CSRF_RE = re.compile(r'name="_csrf_token"\s+value="([^"]+)"')
TOKEN_RE = re.compile(r'name="submission_token" value="([^"]+)"')
ATTEMPTS_RE = re.compile(r'name="attempts" value="([^"]*)"')
GROUP_RE = re.compile(r'<span class="receipt-group">(\d{4})</span>')
MIB = 1 << 20


def cores() -> int:
    return len(os.sched_getaffinity(0))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_kib(pid: int, key: str = "VmRSS") -> int:
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat", encoding="ascii") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_ticks() -> tuple[int, int]:
    """(busy, total) jiffies of the whole machine, from /proc/stat."""
    with open("/proc/stat", encoding="ascii") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)


def wait_for(url: str, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{url}: the server exited with {proc.returncode}")
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not come up")


# --- the installation -----------------------------------------------------------------------


class Installation:
    def __init__(self, small: bool) -> None:
        self.small = small
        self.dir = Path(tempfile.mkdtemp(prefix="scaleout-bench-"))
        self.env: dict[str, str] = {}
        self._names = ExitStack()

    def __enter__(self) -> Installation:
        try:
            url = self._names.enter_context(private_database("scaleout_bench"))
            prefix = self._names.enter_context(private_redis_prefix("scaleout_bench"))
            self.env = {
                **{k: v for k, v in os.environ.items() if not k.startswith("PORTAL_")},
                "PORTAL_DATA_DIR": str(self.dir),
                "PORTAL_MODE": "development",
                "PORTAL_ARGON2_PROFILE": "test" if self.small else "production",
                "DATABASE_URL": url,
                "REDIS_URL": REDIS_URL,
                "PORTAL_REDIS_PREFIX": prefix,
                "PORTAL_RECEIPT_GLOBAL_PER_MINUTE": "100000",
                "PORTAL_SERVE": "reporter",
            }
            done = subprocess.run(
                [sys.executable, "-m", "portal.app.cli", "init"],
                env=self.env,
                capture_output=True,
                text=True,
                check=False,
            )
            if done.returncode:
                raise RuntimeError(done.stderr)
            appoint_reader(self.env)
        except BaseException:
            self.__exit__()
            raise
        return self

    @contextmanager
    def instances(self, n: int) -> Iterator[list[tuple[str, int]]]:
        started: list[tuple[str, subprocess.Popen[bytes]]] = []
        try:
            for _ in range(n):
                port = free_port()
                proc = subprocess.Popen(
                    [sys.executable, "-m", "portal.app.cli", "serve"],
                    env={**self.env, "PORTAL_PORT": str(port)},
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
                started.append((f"http://127.0.0.1:{port}", proc))
            for url, proc in started:
                wait_for(f"{url}/healthz", proc)
            yield [(url, proc.pid) for url, proc in started]
        finally:
            for _, proc in started:
                proc.terminate()
            for _, proc in started:
                try:
                    proc.wait(20)
                except subprocess.TimeoutExpired:
                    proc.kill()

    def __exit__(self, *exc: object) -> None:
        try:
            self._names.close()  # drops this run's database, deletes this run's Redis keys
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)


# --- reporter traffic -------------------------------------------------------------------------


def report_body(csrf: str, token: str) -> tuple[bytes, dict[str, str]]:
    fields = [
        ("_csrf_token", csrf),
        ("submission_token", token),
        ("identity_mode", "anonymous"),
        ("kind", "report"),
        ("category", "other"),
        ("relation", "employee"),
        ("subject_name", "Wang Wu"),
        ("subject_department", "Purchasing"),
        ("subject_position", "Buyer"),
        ("what", "The buyer asked a supplier for a kickback on every order."),
        ("when", "March 2025"),
        ("where", "Head office"),
        ("how_known", "I saw the messages."),
        ("declaration", "yes"),
    ]
    boundary = f"----bench-{secrets.token_hex(8)}"
    out = bytearray()
    for name, value in fields:
        out += f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
        out += value.encode() + b"\r\n"
    out += f"--{boundary}--\r\n".encode()
    return bytes(out), {"content-type": f"multipart/form-data; boundary={boundary}"}


def submit_one(client: httpx.Client, base: str) -> str:
    page = client.get(f"{base}/report/new")
    csrf, token = CSRF_RE.search(page.text), TOKEN_RE.search(page.text)
    if not (csrf and token):
        raise RuntimeError(f"form: {page.status_code}")
    body, headers = report_body(csrf.group(1), token.group(1))
    done = client.post(f"{base}/report", content=body, headers=headers)
    groups = GROUP_RE.findall(done.text)
    if done.status_code != 200 or len(groups) != 7:
        raise RuntimeError(f"submit: {done.status_code}")
    return " ".join(groups)


def intake(
    bases: list[str], pids: list[int], seconds: float
) -> tuple[float, float, float, list[str], int]:
    """(reports per second, CPUs the servers used, CPUs the whole machine used (servers,
    PostgreSQL, Redis and these clients), receipt codes, failed submissions)."""
    clients = 2 * cores()
    stop = time.monotonic() + seconds
    codes: list[str] = []
    errors: list[str] = []
    lock = threading.Lock()

    def worker(i: int) -> None:
        base = bases[i % len(bases)]
        with httpx.Client(timeout=120) as client:
            while time.monotonic() < stop:
                try:
                    code = submit_one(client, base)
                except Exception as exc:
                    with lock:
                        errors.append(str(exc))
                    continue
                with lock:
                    codes.append(code)

    cpu0 = sum(cpu_seconds(p) for p in pids)
    busy0, total0 = machine_ticks()
    t0 = time.monotonic()
    threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.monotonic() - t0
    cpu = sum(cpu_seconds(p) for p in pids) - cpu0
    busy1, total1 = machine_ticks()
    machine = cores() * (busy1 - busy0) / max(1, total1 - total0)
    if errors and not codes:
        raise RuntimeError(errors[0])
    return len(codes) / wall, cpu / wall, machine, codes, len(errors)


def sign_in_latency(bases: list[str], codes: list[str], n: int) -> tuple[float, float]:
    times: list[float] = []
    for i in range(n):
        base = bases[i % len(bases)]
        with httpx.Client(timeout=60) as client:
            page = client.get(f"{base}/follow-up")
            csrf, attempts = CSRF_RE.search(page.text), ATTEMPTS_RE.search(page.text)
            assert csrf and attempts
            t0 = time.perf_counter()
            done = client.post(
                f"{base}/follow-up",
                data={
                    "_csrf_token": csrf.group(1),
                    "attempts": attempts.group(1),
                    "code": codes[i % len(codes)],
                },
                follow_redirects=False,
            )
            times.append(time.perf_counter() - t0)
            if done.status_code != 303:
                raise RuntimeError(f"sign-in: {done.status_code}")
    times.sort()
    return statistics.median(times) * 1000, times[int(0.95 * (len(times) - 1))] * 1000


# --- the S3 upload path ------------------------------------------------------------------------


async def stream_to(store: object, size: int) -> float:
    from portal.kernel.storage import new_storage_key

    block = os.urandom(MIB)
    writer = await store.writer(new_storage_key())  # type: ignore[attr-defined]
    t0 = time.perf_counter()
    for _ in range(size // MIB):
        await writer.write(block)
    await writer.commit()
    return size / MIB / (time.perf_counter() - t0)


def upload_path(size: int) -> tuple[float, float, float]:
    """(S3 MB/s, local MB/s, peak RSS growth in MiB during the S3 write)."""
    from portal.kernel.s3store import S3Config, S3FileStore
    from portal.kernel.storage import LocalFileStore

    port = free_port()
    moto = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    tmp = Path(tempfile.mkdtemp(prefix="scaleout-local-"))
    try:
        wait_for(f"http://127.0.0.1:{port}/", moto)
        s3 = S3FileStore(
            S3Config(
                bucket="bench-bucket",
                endpoint=f"http://127.0.0.1:{port}",
                access_key="bench",
                secret_key="bench",
            )
        )
        s3.ensure()
        local = LocalFileStore(tmp)
        local.ensure()
        asyncio.run(stream_to(s3, 16 * MIB))  # warm-up: connections, thread pool
        before = rss_kib(os.getpid())
        with open(f"/proc/{os.getpid()}/clear_refs", "w", encoding="ascii") as f:
            f.write("5")  # reset the peak to the current RSS
        s3_rate = asyncio.run(stream_to(s3, size))
        peak = rss_kib(os.getpid(), "VmHWM")
        local_rate = asyncio.run(stream_to(local, size))
        return s3_rate, local_rate, (peak - before) / 1024
    finally:
        moto.terminate()
        moto.wait(20)
        shutil.rmtree(tmp, ignore_errors=True)


# --- main -------------------------------------------------------------------------------------


def main() -> int:
    def on_term(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)  # run the finally blocks: stop servers, drop the DB

    signal.signal(signal.SIGTERM, on_term)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--small", action="store_true", help="short run, test Argon2 profile")
    add_save_argument(parser)
    args = parser.parse_args()
    seconds = 4.0 if args.small else 20.0
    upload = (64 if args.small else 1024) * MIB
    rows: list[Row] = []

    with Installation(args.small) as inst:
        results: dict[int, tuple[float, float, float, float, float]] = {}
        failed = 0
        for n in (1, 2):
            with inst.instances(n) as servers:
                bases = [u for u, _ in servers]
                pids = [p for _, p in servers]
                with httpx.Client(timeout=60) as warm:
                    submit_one(warm, bases[0])  # warm-up
                rate, cpu, machine, codes, errors = intake(bases, pids, seconds)
                failed += errors
                p50, p95 = sign_in_latency(bases, codes, 10 if args.small else 40)
                results[n] = (rate, cpu, p50, p95, machine)
        one, two = results[1], results[2]
        ratio = two[0] / one[0] if one[0] else 0.0
        # The most two instances can give on this machine: twice one, unless one instance's
        # servers already use cores / 2 CPUs or more. The machine figure also counts
        # PostgreSQL, Redis, these clients and anything else running on the box.
        limit = min(2.0, cores() / one[1]) if one[1] else float("nan")
        rows += [
            row(
                f"intake, 1 instance (servers {one[1]:.2f} CPUs, machine {one[4]:.2f} of "
                f"{cores()} CPUs busy)",
                f"{one[0]:.1f} reports/s",
            ),
            row(
                f"intake, 2 instances (servers {two[1]:.2f} CPUs, machine {two[4]:.2f} of "
                f"{cores()} CPUs busy)",
                f"{two[0]:.1f} reports/s",
            ),
            info(
                f"ratio 2 / 1 (physical limit on {cores()} cores: {limit:.2f}x = min(2, cores / "
                "CPUs one instance used); a saturated machine is the real ceiling)",
                f"{ratio:.2f}x",
            ),
            check("failed submissions, both runs", failed, "=", 0, digits=0),
            row("receipt sign-in, 1 instance", f"p50 {one[2]:.0f} ms, p95 {one[3]:.0f} ms"),
            row("receipt sign-in, 2 instances", f"p50 {two[2]:.0f} ms, p95 {two[3]:.0f} ms"),
        ]
    s3_rate, local_rate, growth = upload_path(upload)
    rows += [
        row(f"upload {upload // MIB} MiB to S3 (moto, 8 MiB parts)", f"{s3_rate:.0f} MB/s"),
        row(f"upload {upload // MIB} MiB to the local store", f"{local_rate:.0f} MB/s"),
        info("peak memory growth during the S3 upload (bounded by parts)", f"{growth:.0f} MiB"),
    ]
    load = os.getloadavg()[1]  # 5-minute load average: other work on the box skews the ratio
    mode = "small" if args.small else "full"
    argon = "test" if args.small else "production"
    title = (
        f"Scale-out benchmark ({mode} run, Argon2 profile {argon}, {cores()} cores, "
        f"PostgreSQL + Redis shared; 5-min load average at the end {load:.1f})"
    )
    text = f"{title}\n\n{render(rows)}"
    print(text)
    save("scaleout-small.md" if args.small else "scaleout.md", text, args.save)
    return 0


if __name__ == "__main__":
    sys.exit(main())
