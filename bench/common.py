"""Helpers shared by the benchmark scripts (not a benchmark itself).

* `PortalServer`: `portal init` + `portal serve` in a subprocess on a free loopback port with a
  temporary data directory; stopped (and the directory removed) on exit, Ctrl-C or error.
* `ServerProcess`: any server command line, started and stopped the same way.
* `/proc` readers for a server's memory, percentiles, hidden form fields.
* Names of this run: `RUN_ID`, `private_database()` (a PostgreSQL database created for this
  run and dropped at its end, never one that existed before) and `private_redis_prefix()`
  (PORTAL_REDIS_PREFIX for this run; only its keys are deleted at the end).
* `appoint_reader()`: the intake officer without whom the portal takes no report.

The table every benchmark prints is in bench/table.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from types import FrameType
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
MIB = 1 << 20

#: This run's own suffix for every database and Redis name it creates (two runs on one machine,
#: or a run and a test suite, never share one).
RUN_ID = f"{os.getpid()}_{secrets.token_hex(4)}"
#: A PostgreSQL server (no database part): `BENCH_PG_SERVER`.
PG_SERVER = os.environ.get("BENCH_PG_SERVER", "postgresql://postgres@127.0.0.1:5432").rstrip("/")
#: The Redis database the benchmarks use: `BENCH_REDIS_URL`.
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/7")


def cores() -> int:
    """CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def stop_on_sigterm() -> None:
    """Turn SIGTERM into SystemExit so `finally` blocks stop our servers (run_all's timeout)."""

    def handler(signum: int, _frame: FrameType | None) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, handler)


# --- /proc ----------------------------------------------------------------------------------


def proc_status_kib(pid: int, key: str) -> int:
    """A `kB` field of /proc/<pid>/status (VmRSS, VmHWM, ...); 0 when unreadable."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return 0
    return 0


def reset_peak_rss(pid: int) -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0, our own process); False if refused."""
    try:
        with open(f"/proc/{pid}/clear_refs", "w", encoding="ascii") as f:
            f.write("5")
        return True
    except OSError:
        return False


# --- statistics -----------------------------------------------------------------------------


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile (p99 of 200 samples is the 198th smallest)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * pct // 100))
    return ordered[min(len(ordered), int(rank)) - 1]


# --- HTML -----------------------------------------------------------------------------------


def hidden_field(html: str, name: str) -> str:
    """The value of `<input ... name="NAME" ... value="...">` (attribute order free)."""
    for tag in re.finditer(r"<input\b[^>]*>", html):
        text = tag.group(0)
        if re.search(rf'\bname="{re.escape(name)}"', text):
            value = re.search(r'\bvalue="([^"]*)"', text)
            if value:
                return value.group(1)
    raise LookupError(f"no hidden field {name!r} in the page")


_RECEIPT = re.compile(r'id="receipt-code"[^>]*>(.*?)</p>', re.S)


def receipt_code(html: str) -> str | None:
    """The 28-digit receipt code shown on the receipt page, formatted in groups of 4."""
    match = _RECEIPT.search(html)
    if match is None:
        return None
    digits = re.sub(r"\D", "", re.sub(r"<[^>]+>", " ", match.group(1)))
    if len(digits) != 28:
        return None
    return " ".join(digits[i : i + 4] for i in range(0, 28, 4))


# --- this run's own databases and Redis keys --------------------------------------------------


def _pg_admin(server: str) -> tuple[str, str]:
    """(asyncpg DSN of the `postgres` maintenance database, SQLAlchemy URL prefix)."""
    plain = server.replace("postgresql+asyncpg://", "postgresql://")
    return f"{plain}/postgres", plain.replace("postgresql://", "postgresql+asyncpg://")


async def _pg_admin_execute(server: str, statement: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(_pg_admin(server)[0])
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


@contextlib.contextmanager
def private_database(label: str, server: str = PG_SERVER) -> Iterator[str]:
    """A new PostgreSQL database `<label>_<RUN_ID>` (CREATE fails rather than reuse one that
    exists); yields its SQLAlchemy URL and drops it, and only it, at the end."""
    if not re.fullmatch(r"[a-z][a-z0-9_]{0,30}", label):
        raise ValueError(f"bad database label {label!r}")
    name = f"{label}_{RUN_ID}"
    asyncio.run(_pg_admin_execute(server, f'CREATE DATABASE "{name}"'))
    try:
        yield f"{_pg_admin(server)[1]}/{name}"
    finally:
        asyncio.run(_pg_admin_execute(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@contextlib.contextmanager
def private_redis_prefix(label: str, url: str = REDIS_URL) -> Iterator[str]:
    """A PORTAL_REDIS_PREFIX of this run (`<label>_<RUN_ID>`); at the end the keys under it,
    and no others, are deleted."""
    prefix = f"{label}_{RUN_ID}"
    try:
        yield prefix
    finally:
        try:
            import redis

            client = redis.Redis.from_url(url, socket_timeout=5)
            try:
                for pattern in (f"{prefix}:*", f"{prefix}_sessions:*"):
                    for key in client.scan_iter(match=pattern):
                        client.delete(key)
            finally:
                client.close()
        except Exception as exc:  # Redis gone: nothing of ours is left there to delete
            print(f"Redis keys under {prefix} not deleted: {exc}", file=sys.stderr)


_PORTAL = (sys.executable, "-m", "portal.app.cli")


def appoint_reader(env: Mapping[str, str], username: str = "bench_reader") -> None:
    """`portal user add USERNAME --roles intake_officer`: the portal takes no report until an
    intake officer exists (an anonymous report needs no identity custodian)."""
    out = subprocess.run(
        [*_PORTAL, "user", "add", username, "--roles", "intake_officer"],
        cwd=ROOT,
        env=dict(env),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if out.returncode != 0:
        raise ServerError(f"portal user add failed: {out.stderr[-1500:]}")


# --- servers --------------------------------------------------------------------------------


class ServerError(RuntimeError):
    pass


class ServerProcess:
    """A server subprocess in its own process group; `stop()` is idempotent."""

    def __init__(
        self,
        argv: Sequence[str],
        *,
        port: int,
        env: Mapping[str, str] | None = None,
        ready_path: str = "/",
        log_path: Path | None = None,
    ) -> None:
        self.argv = list(argv)
        self.port = port
        self.env = dict(os.environ if env is None else env)
        self.ready_path = ready_path
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None
        self._log: Any = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self, timeout_s: float = 60.0) -> ServerProcess:
        self._log = open(self.log_path, "wb") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        self.proc = subprocess.Popen(
            self.argv,
            cwd=ROOT,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout_s
        with httpx.Client(timeout=2.0) as client:
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise ServerError(f"server exited with {self.proc.returncode}: {self.tail()}")
                try:
                    if client.get(self.base_url + self.ready_path).status_code < 500:
                        return self
                except httpx.TransportError:
                    pass
                time.sleep(0.1)
        self.stop()
        raise ServerError(f"server not ready after {timeout_s:.0f} s: {self.tail()}")

    def tail(self, n: int = 2000) -> str:
        if self.log_path and self.log_path.exists():
            return self.log_path.read_bytes()[-n:].decode("utf-8", "replace")
        return ""

    def stop(self, grace_s: float = 10.0) -> None:
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(grace_s)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)
        if self._log not in (None, subprocess.DEVNULL):
            self._log.close()
            self._log = None

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class PortalServer(ServerProcess):
    """`portal init` then `portal serve` with a temporary data dir (removed on stop).

    `reader`: appoint an intake officer after `portal init` (the portal takes no report
    without one). `receipt_pin`: a receipt-parameters line (`argon2id v=19 m=... t=... p=...`)
    placed in the keyring directory before `portal init`, as a release that pinned other
    parameters would have left it: the installation keeps it (checked on init's output)."""

    def __init__(
        self,
        extra_env: Mapping[str, str] | None = None,
        keep_dir: bool = False,
        *,
        reader: bool = False,
        receipt_pin: str | None = None,
    ) -> None:
        self.data_dir = Path(tempfile.mkdtemp(prefix="portal-bench-"))
        self.keep_dir = keep_dir
        self.reader = reader
        self.receipt_pin = receipt_pin
        self.init_output = ""
        port = free_port()
        env = {
            k: v
            for k, v in os.environ.items()
            if not (k.startswith("PORTAL_") or k in ("DATABASE_URL", "REDIS_URL"))
        }
        env.update(
            {
                "PORTAL_DATA_DIR": str(self.data_dir / "data"),
                "PORTAL_HOST": "127.0.0.1",
                "PORTAL_PORT": str(port),
                # cookies are Secure in production and httpx would not send them over http
                "PORTAL_MODE": "development",
                "TMPDIR": str(self.data_dir),
            }
        )
        env.update(extra_env or {})
        super().__init__(
            [sys.executable, "-m", "portal.app.cli", "serve"],
            port=port,
            env=env,
            ready_path="/healthz",
            log_path=self.data_dir / "server.log",
        )

    @property
    def database_path(self) -> Path:
        """The SQLite file the server uses (from its settings, as `portal serve` reads them)."""
        from portal.kernel.settings import Settings

        return Path(Settings.from_env(self.env).database_url.split("///", 1)[1])

    def _pin_receipt_params(self) -> None:
        secrets_dir = Path(self.env["PORTAL_DATA_DIR"]) / "secrets"
        secrets_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        pin = secrets_dir / "receipt-argon2"
        fd = os.open(pin, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as f:
            f.write(f"{self.receipt_pin}\n")

    def start(self, timeout_s: float = 60.0) -> PortalServer:
        try:
            if self.receipt_pin:
                self._pin_receipt_params()
            init = subprocess.run(
                [sys.executable, "-m", "portal.app.cli", "init"],
                cwd=ROOT,
                env=self.env,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=120,
                check=False,
            )
            if init.returncode != 0:
                raise ServerError(f"portal init failed: {init.stderr.decode()[-2000:]}")
            self.init_output = init.stdout.decode()
            if self.receipt_pin:
                pin = re.fullmatch(r"argon2id v=19 m=(\d+) t=(\d+) p=(\d+)", self.receipt_pin)
                if pin is None:
                    raise ServerError(f"not a receipt-parameters line: {self.receipt_pin!r}")
                m, t, p = pin.groups()
                expected = f"receipt codes: Argon2id m={m} KiB t={t} p={p} (pinned"
                if expected not in self.init_output:
                    raise ServerError(f"portal init did not keep {self.receipt_pin!r}")
            if self.reader:
                appoint_reader(self.env)
            super().start(timeout_s)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self, grace_s: float = 10.0) -> None:
        super().stop(grace_s)
        if not self.keep_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)


# --- CPU accounting -------------------------------------------------------------------------

_TICK = os.sysconf("SC_CLK_TCK")


def machine_cpu_seconds() -> tuple[float, float]:
    """(busy, total) CPU-seconds of the whole machine since boot, from /proc/stat."""
    with open("/proc/stat", encoding="ascii") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
    total = sum(values[:8])  # guest time is already counted in user
    return (total - idle) / _TICK, total / _TICK


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU-seconds of a process (all its threads), from /proc/<pid>/stat."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / _TICK
    except (OSError, ValueError, IndexError):
        return 0.0


class CpuMeter:
    """CPU used by a server, by this process and by everything else between start and stop."""

    def __init__(self, server_pid: int) -> None:
        self.server_pid = server_pid
        self.server = self.client = self.others = self.wall = 0.0

    def __enter__(self) -> CpuMeter:
        self._m0 = machine_cpu_seconds()[0]
        self._s0 = process_cpu_seconds(self.server_pid)
        self._c0 = process_cpu_seconds(os.getpid())
        self._t0 = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self._t0
        self.server = process_cpu_seconds(self.server_pid) - self._s0
        self.client = process_cpu_seconds(os.getpid()) - self._c0
        busy = machine_cpu_seconds()[0] - self._m0
        self.others = max(0.0, busy - self.server - self.client)

    def share(self, seconds: float) -> float:
        """`seconds` of CPU as a fraction of all the cores over the measured time."""
        return seconds / (cores() * self.wall) if self.wall else 0.0
