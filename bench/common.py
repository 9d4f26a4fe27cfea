"""Helpers shared by the benchmark scripts (not a benchmark itself).

* `PortalServer`: `portal init` + `portal serve` in a subprocess on a free loopback port with a
  temporary data directory; stopped (and the directory removed) on exit, Ctrl-C or error.
* `ServerProcess`: any server command line, started and stopped the same way.
* `/proc` readers for a server's memory, percentiles, hidden form fields, and the markdown
  table every benchmark prints (`metric | value | target | met?`).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from types import FrameType
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
MIB = 1 << 20

Row = tuple[str, str, str, str]


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


# --- markdown tables ------------------------------------------------------------------------


def render_table(
    rows: Iterable[Sequence[str]], header: Sequence[str] = ("metric", "value", "target", "met?")
) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell.replace("|", "/") for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def parse_table(text: str) -> list[list[str]]:
    """The body rows of the first markdown table in `text` (header and rule skipped)."""
    rows: list[list[str]] = []
    started = False
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("|") and stripped.endswith("|"):
            cells = [c.strip() for c in stripped[1:-1].split("|")]
            if not started:
                started = True  # the header
                continue
            if all(set(c) <= set("-: ") for c in cells):
                continue
            rows.append(cells)
        elif started:
            break
    return rows


def met(ok: bool) -> str:
    return "yes" if ok else "NO"


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
    """`portal init` then `portal serve` with a temporary data dir (removed on stop)."""

    def __init__(self, extra_env: Mapping[str, str] | None = None, keep_dir: bool = False) -> None:
        self.data_dir = Path(tempfile.mkdtemp(prefix="portal-bench-"))
        self.keep_dir = keep_dir
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
        return Path(self.env["PORTAL_DATA_DIR"]) / "portal.kernel.db"

    def start(self, timeout_s: float = 60.0) -> PortalServer:
        try:
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
