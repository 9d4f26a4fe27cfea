"""Faults: PostgreSQL stops and starts again while reporters use the portal (issue 8, O4).

A private, throwaway PostgreSQL cluster (initdb as the `postgres` OS user, trust auth, a free
loopback port, its socket in its own temporary directory) serves `portal serve`, run as a
subprocess with PORTAL_MODE=test. The machine's shared PostgreSQL is never touched. Threads
keep submitting reports (with and without files), signing in with the receipt codes they got,
opening pages and trying staff sign-ins while the cluster is stopped twice - once with
`pg_ctl stop -m fast`, once with `-m immediate` (a crash: recovery runs at the next start) -
for a few seconds each, then started again on the same port. The portal is never restarted.

* While the database is down every answer is clean: pages that need no database still answer
  200; the others answer 503 with Retry-After and the portal's own "temporarily unavailable"
  page (or JSON on /healthz), never a 500, a trace or an exception text. The server process
  stays alive and keeps answering.
* After the start the portal serves again within RECOVERY_BOUND_S, with no restart.
* No report is lost: every receipt code that was shown signs in afterwards with the number of
  files sent. A submission that got an error is sent again with the same form token (what
  "try again" does), and gets either the receipt of a transaction that did commit or a new
  case: in the end the database holds exactly one case per distinct receipt code, every
  `files` row has its object and no object is left without a row (nothing half-stored).

Runs in the SQLite pass of `make test` (it brings its own PostgreSQL), skipped in the
PostgreSQL pass so that it does not run twice.
"""

from __future__ import annotations

import json
import os
import pwd
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.conftest import appoint_readers_cli
from tests.faults.test_kill_restart import _file_count
from tests.portal.test_reporter_journeys import (
    CSRF_RE,
    GROUP_RE,
    TOKEN_RE,
    multipart,
    report_fields,
)

ROOT = Path(__file__).resolve().parents[2]
RECOVERY_BOUND_S = 15.0
OUTAGE_S = 3.0
REPORTERS = 4
CATEGORY_RE = re.compile(r'<option value="([a-z_]+)"')
# what no answer may ever contain (besides a 500 status)
LEAKS = (
    "Traceback",
    'File "',
    "asyncpg",
    "sqlalchemy",
    "Error:",
    "Errno",
    "Refused",
    "postgres",
    "SELECT",
    "DBAPI",
)
UNAVAILABLE_TITLE = "Temporarily unavailable"
# paths that need the database; the others must keep answering 200 during the outage
NO_DB_PATHS = ("/", "/help", "/follow-up", "/workspace/")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        bool(os.environ.get("PORTAL_TEST_DATABASE_URL")),
        reason="brings its own PostgreSQL cluster: runs once, in the SQLite pass",
    ),
]


# --- a private PostgreSQL cluster -----------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _pg_bin() -> Path | None:
    def version(p: Path) -> int:
        name = p.parent.name
        return int(name) if name.isdigit() else 0

    found = [
        p
        for p in Path("/usr/lib/postgresql").glob("*/bin")
        if (p / "initdb").exists() and (p / "pg_ctl").exists() and (p / "psql").exists()
    ]
    return max(found, key=version) if found else None


@dataclass
class PrivatePostgres:
    """A throwaway cluster owned by the `postgres` OS user (initdb refuses to run as root)."""

    bin: Path
    root: Path
    port: int
    as_postgres: list[str]

    @property
    def data(self) -> Path:
        return self.root / "data"

    def _run(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*self.as_postgres, *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            cwd=self.root,
        )

    def init(self) -> None:
        done = self._run(
            str(self.bin / "initdb"),
            "-D",
            str(self.data),
            "-A",
            "trust",
            "-U",
            "postgres",
            "-E",
            "UTF8",
            "--no-locale",
            "--no-sync",
        )
        assert done.returncode == 0, done.stdout + done.stderr

    def start(self) -> None:
        # fsync=off: no OS crash is simulated (WAL still reaches the OS before COMMIT returns,
        # which is what survives `-m immediate`); it keeps the test fast on a busy machine
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 "
            "-c fsync=off -c max_connections=60"
        )
        done = self._run(
            str(self.bin / "pg_ctl"),
            "-D",
            str(self.data),
            "-l",
            str(self.root / "postgres.log"),
            "-w",
            "-t",
            "60",
            "-o",
            options,
            "start",
        )
        assert done.returncode == 0, done.stdout + done.stderr + self.log()

    def stop(self, mode: str) -> None:
        done = self._run(
            str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop"
        )
        assert done.returncode == 0, done.stdout + done.stderr

    def is_running(self) -> bool:
        return self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "status").returncode == 0

    def sql(self, query: str, database: str = "postgres") -> str:
        done = subprocess.run(
            [
                str(self.bin / "psql"),
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-U",
                "postgres",
                "-d",
                database,
                "-v",
                "ON_ERROR_STOP=1",
                "-Atc",
                query,
            ],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    def log(self) -> str:
        path = self.root / "postgres.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""


@pytest.fixture
def private_postgres() -> Iterator[PrivatePostgres]:
    bin_dir = _pg_bin()
    if bin_dir is None:
        pytest.skip("no PostgreSQL server binaries in /usr/lib/postgresql/*/bin (initdb, pg_ctl)")
    as_postgres: list[str] = []
    owner: pwd.struct_passwd | None = None
    if os.geteuid() == 0:  # initdb refuses root: run the cluster as the postgres OS user
        try:
            owner = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and there is no `postgres` OS user to own the cluster")
        runuser = shutil.which("runuser")
        if runuser is None:
            pytest.skip("running as root and `runuser` is missing")
        as_postgres = [runuser, "-u", "postgres", "--"]
    root = Path(tempfile.mkdtemp(prefix="portal-pgrestart-"))
    if owner is not None:
        os.chown(root, owner.pw_uid, owner.pw_gid)
    cluster = PrivatePostgres(bin_dir, root, _free_port(), as_postgres)
    try:
        cluster.init()
        cluster.start()
        yield cluster
    finally:
        if (cluster.data / "postmaster.pid").exists():
            cluster._run(
                str(bin_dir / "pg_ctl"), "-D", str(cluster.data), "-m", "immediate", "stop"
            )
        shutil.rmtree(root, ignore_errors=True)


# --- the portal ----------------------------------------------------------------------------------


def _portal_env(data: Path, port: int, database_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PORTAL_")}
    env.update(
        PORTAL_DATA_DIR=str(data),
        PORTAL_MODE="test",
        PORTAL_ARGON2_PROFILE="test",
        PORTAL_HOST="127.0.0.1",
        PORTAL_PORT=str(port),
        PORTAL_SERVE="both",
        PORTAL_RECEIPT_GLOBAL_PER_MINUTE="100000",
        DATABASE_URL=database_url,
    )
    env.pop("REDIS_URL", None)
    return env


def _start_portal(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "portal.app.cli", "serve"],
            env=env,
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{env['PORTAL_PORT']}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert proc.poll() is None, "portal serve exited:\n" + log.read_text()[-3000:]
        try:
            if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    proc.kill()
    raise AssertionError("portal serve did not start:\n" + log.read_text()[-3000:])


# --- traffic -------------------------------------------------------------------------------------


@dataclass
class Seen:
    """One answer: when it was asked and answered, and what was wrong with it (if anything)."""

    path: str
    sent: float
    done: float
    status: int | None
    problem: str = ""


@dataclass
class Submission:
    body: bytes
    headers: dict[str, str]
    n_files: int
    cookies: dict[str, str]  # the CSRF cookie the form token belongs to
    code: str | None = None
    errored: bool = False


@dataclass
class Traffic:
    base: str
    category: str
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    seen: list[Seen] = field(default_factory=list)
    submissions: list[Submission] = field(default_factory=list)

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.base, timeout=30, headers={"accept-language": "en"})

    def record(
        self, path: str, sent: float, response: httpx.Response | None, error: str = ""
    ) -> None:
        problem = error or (_problem(path, response) if response is not None else "no answer")
        item = Seen(
            path, sent, time.monotonic(), response.status_code if response else None, problem
        )
        with self.lock:
            self.seen.append(item)

    def call(
        self, client: httpx.Client, method: str, path: str, **kw: object
    ) -> httpx.Response | None:
        sent = time.monotonic()
        try:
            response = client.request(method, path, **kw)  # type: ignore[arg-type]
        except httpx.HTTPError as exc:  # the server must always answer
            self.record(path, sent, None, f"{type(exc).__name__}: {exc}")
            return None
        self.record(path, sent, response)
        return response

    # the workers

    def reporter(self, worker: int) -> None:
        """Loads the form and submits it. When the form does not load (database down), it
        submits the form it loaded last (its CSRF token is still good) with a new form token,
        like a reporter who filled the form in before the outage."""
        i = 0
        csrf = ""
        with self.client() as c:
            while not self.stop.is_set():
                i += 1
                form = self.call(c, "GET", "/report/new")
                if form is not None and form.status_code == 200:
                    csrf_match, token_match = CSRF_RE.search(form.text), TOKEN_RE.search(form.text)
                    assert csrf_match and token_match
                    csrf, token = csrf_match.group(1), token_match.group(1)
                elif csrf:
                    token = secrets.token_urlsafe(32)  # what the form would have carried
                else:
                    time.sleep(0.1)
                    continue
                n_files = (worker + i) % 3
                files = [
                    (
                        "evidence",
                        (f"f{k}.bin", os.urandom(20_000 + k * 5_000), "application/octet-stream"),
                    )
                    for k in range(n_files)
                ]
                body, headers = multipart(
                    [
                        ("_csrf_token", csrf),
                        ("submission_token", token),
                        *report_fields(category=self.category),
                        *files,
                    ]
                )
                sub = Submission(body, headers, n_files, dict(c.cookies))
                answer = self.call(c, "POST", "/report", content=body, headers=headers)
                if answer is not None and answer.status_code == 200:
                    sub.code = _receipt(answer)
                else:
                    sub.errored = True
                    time.sleep(1.0)  # a person reads the page before trying again
                with self.lock:
                    self.submissions.append(sub)
                # the reporter signs in with the code just shown, then signs out
                if sub.code is not None:
                    self.sign_in(c, sub.code)

    def sign_in(self, c: httpx.Client, code: str) -> None:
        page = self.call(c, "GET", "/follow-up")
        if page is None or page.status_code != 200:
            return
        csrf, attempts = (
            CSRF_RE.search(page.text),
            re.search(r'name="attempts" value="([^"]*)"', page.text),
        )
        assert csrf and attempts
        signed = self.call(
            c,
            "POST",
            "/follow-up",
            data={"_csrf_token": csrf.group(1), "attempts": attempts.group(1), "code": code},
        )
        if signed is not None and signed.status_code == 303:
            case = self.call(c, "GET", "/follow-up/case")
            match = CSRF_RE.search(case.text) if case is not None else None
            if match:  # the sign-out form's token
                self.call(c, "POST", "/follow-up/sign-out", data={"_csrf_token": match.group(1)})

    def browser(self) -> None:
        n = 0
        while not self.stop.is_set():
            n += 1
            with self.client() as c:
                for path in ("/", "/healthz", "/help", "/follow-up"):
                    self.call(c, "GET", path)
                page = self.call(c, "GET", "/workspace/")
                match = CSRF_RE.search(page.text) if page is not None else None
                if match:  # a staff sign-in with an unknown name: needs the database
                    self.call(
                        c,
                        "POST",
                        "/workspace/signin",
                        data={
                            "_csrf_token": match.group(1),
                            "username": f"nobody{n}x{time.monotonic_ns()}",
                            "password": "wrong password",
                        },
                    )
            time.sleep(0.02)


def _receipt(page: httpx.Response) -> str:
    groups = GROUP_RE.findall(page.text)
    assert len(groups) == 7, page.text[:500]
    return " ".join(groups)


def _problem(path: str, response: httpx.Response) -> str:
    """What is wrong with this answer ("" if it is clean)."""
    status = response.status_code
    text = response.text
    for leak in LEAKS:
        if leak in text:
            return f"{status} shows {leak!r}"
    if status == 503:
        if "retry-after" not in response.headers:
            return "503 without Retry-After"
        if path == "/healthz":
            if response.json().get("status") != "unavailable":
                return f"503 healthz body {text[:100]!r}"
            return ""
        if not response.headers.get("content-type", "").startswith("text/html"):
            return "503 not HTML"
        if UNAVAILABLE_TITLE not in text or 'class="error-page"' not in text:
            return "503 is not the portal's unavailable page"
        return ""
    allowed = {200, 303} | ({400} if path == "/workspace/signin" else set())
    if status not in allowed:
        return f"unexpected {status}"
    return ""


def _wait_until_cut_off_commits_settle(log: Path, timeout_s: float = 30.0) -> None:
    """A submission whose COMMIT the outage cut off keeps its files until the database says
    whether it was filed (portal.reporter.in_doubt): wait until each such one is settled."""
    deadline = time.monotonic() + timeout_s
    while True:
        text = log.read_text()
        cut, settled = text.count("commit was cut off"), text.count("cut-off commit settled")
        if settled >= cut:
            return
        assert time.monotonic() < deadline, f"{cut - settled} cut-off commits never settled"
        time.sleep(0.2)


def _assert_files_consistent(cluster: PrivatePostgres, data: Path) -> None:
    """Every `files` row has its object, no object lacks a row, no upload is left half-written."""
    keys = set(cluster.sql("SELECT storage_key FROM files", "portal").split())
    objects = {p.name for p in (data / "files" / "objects").glob("*/*") if p.is_file()}
    assert keys <= objects, "a files row without its object"
    assert objects <= keys, "an object without a files row"
    assert not list((data / "files").rglob("*.part"))


# --- the test ------------------------------------------------------------------------------------


def _outage(
    cluster: PrivatePostgres, server: subprocess.Popen[bytes], traffic: Traffic, mode: str
) -> dict[str, float]:
    """Stop PostgreSQL for OUTAGE_S under load, start it, wait until the portal serves again."""
    before = len(traffic.seen)
    stop_begin = time.monotonic()
    cluster.stop(mode)
    stopped = time.monotonic()
    time.sleep(OUTAGE_S)
    assert server.poll() is None, "the portal died while the database was down"
    with traffic.lock:
        down = [s for s in traffic.seen[before:] if s.sent >= stopped]
    start_begin = time.monotonic()
    assert not cluster.is_running()
    cluster.start()
    started = time.monotonic()
    # the portal serves again without a restart: a page that needs the database answers 200
    recovered: float | None = None
    with traffic.client() as c:
        while time.monotonic() - started < RECOVERY_BOUND_S:
            if c.get("/healthz").status_code == 200 and c.get("/report/new").status_code == 200:
                recovered = time.monotonic()
                break
            time.sleep(0.05)
    assert recovered is not None, f"not serving {RECOVERY_BOUND_S}s after the database started"
    assert server.poll() is None
    refused = [s for s in down if s.status == 503]
    served_no_db = [s for s in down if s.path in NO_DB_PATHS and s.status == 200]
    # the outage was exercised: requests that need the database were refused while it was down
    assert len(refused) >= 5, [(s.path, s.status) for s in down]
    # the health check says so, and submissions are refused (the report form itself may still
    # be shown for a few seconds from the read-mostly cache of categories and readers)
    assert {s.path for s in refused} >= {"/healthz", "/report"}, {(s.path, s.status) for s in down}
    assert served_no_db, "pages without the database stopped answering"
    assert all(s.status == 200 for s in down if s.path in NO_DB_PATHS)
    return {
        "stop_s": stopped - stop_begin,
        "start_s": started - start_begin,
        "recovered_after_start_s": recovered - started,
        "refused": len(refused),
        "answered_while_down": len(down),
        "slowest_answer_while_down_s": max((s.done - s.sent for s in down), default=0.0),
        "stop_begin": stop_begin,
        "recovered_at": recovered,
    }


def test_postgres_restart_under_load(private_postgres: PrivatePostgres, tmp_path: Path) -> None:
    cluster = private_postgres
    cluster.sql("CREATE DATABASE portal")
    data = tmp_path / "data"
    env = _portal_env(
        data, _free_port(), f"postgresql+asyncpg://postgres@127.0.0.1:{cluster.port}/portal"
    )
    init = subprocess.run(
        [sys.executable, "-m", "portal.app.cli", "init"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert init.returncode == 0, init.stdout + init.stderr
    appoint_readers_cli(env)  # reports are taken only once somebody can open them (C7)
    log = tmp_path / "serve.log"
    server = _start_portal(env, log)
    base = f"http://127.0.0.1:{env['PORTAL_PORT']}"
    try:
        form = httpx.get(base + "/report/new").text
        category = CATEGORY_RE.findall(form.split('name="category"', 1)[1])[0]
        traffic = Traffic(base, category)
        threads = [threading.Thread(target=traffic.reporter, args=(w,)) for w in range(REPORTERS)]
        threads.append(threading.Thread(target=traffic.browser))
        for t in threads:
            t.start()
        try:
            time.sleep(2.0)  # warm: pooled connections exist when the database goes away
            measured = {}
            for mode in ("fast", "immediate"):
                measured[mode] = _outage(cluster, server, traffic, mode)
                time.sleep(1.5)  # load after the recovery
            end = time.monotonic()
        finally:
            traffic.stop.set()
            for t in threads:
                t.join(timeout=60)
        assert server.poll() is None
        for t in threads:
            assert not t.is_alive()

        # every answer, before, during and after the outages, was clean
        problems = [(s.path, s.status, s.problem) for s in traffic.seen if s.problem]
        assert problems == [], problems[:20]
        # once serving again, everything succeeded (pooled connections the restart killed were
        # replaced, not handed out), up to the next outage
        windows = [
            (measured["fast"]["recovered_at"], measured["immediate"]["stop_begin"]),
            (measured["immediate"]["recovered_at"], end),
        ]
        for since, until in windows:
            late = [(s.path, s.status) for s in traffic.seen if since <= s.sent and s.done <= until]
            assert len(late) >= 5, "too little traffic after the recovery"
            assert all(status in (200, 303) for _, status in late), late

        # nothing half-stored by the refused submissions: files rows and objects agree, and
        # there is at most one case per refused submission (one whose COMMIT was cut off may
        # have committed: the retry below tells)
        shown = [s for s in traffic.submissions if s.code]
        refused = [s for s in traffic.submissions if s.errored]
        assert len(shown) >= 10, "too few receipts shown"
        assert len(refused) >= 3, "too few submissions refused during the outages"
        _wait_until_cut_off_commits_settle(log)
        _assert_files_consistent(cluster, data)
        cases_before = int(cluster.sql("SELECT count(*) FROM cases", "portal"))
        assert len(shown) <= cases_before <= len(shown) + len(refused)

        # "try again": every refused submission is sent again with the same form token; it gets
        # the receipt of a transaction that did commit, or is stored now
        def again(sub: Submission) -> None:
            with traffic.client() as c:
                c.cookies.update(sub.cookies)
                answer = c.post("/report", content=sub.body, headers=sub.headers)
            assert answer.status_code == 200, answer.status_code
            sub.code = _receipt(answer)

        with ThreadPoolExecutor(REPORTERS) as pool:
            list(pool.map(again, refused))
        codes = {s.code for s in traffic.submissions}
        assert None not in codes
        # one case per submission, each with its own code: nothing doubled, nothing stray
        assert len(codes) == len(traffic.submissions)
        cases = int(cluster.sql("SELECT count(*) FROM cases", "portal"))
        assert cases == len(codes)
        _assert_files_consistent(cluster, data)
        committed_anyway = len(refused) - (cases - cases_before)

        # no report lost: every receipt code signs in and shows the files that were sent
        def files_shown(sub: Submission) -> tuple[str | None, int | None, int]:
            assert sub.code is not None
            return sub.code, _file_count(base, sub.code), sub.n_files

        with ThreadPoolExecutor(REPORTERS) as pool:
            for code, count, sent in pool.map(files_shown, traffic.submissions):
                assert count == sent, code

    finally:
        server.terminate()
        server.wait(timeout=15)

    # the outage is logged as an operational event: once per outage, type names only
    lines = [json.loads(x) for x in log.read_text().splitlines() if x.startswith("{")]
    db_events = [x["msg"] for x in lines if x.get("logger") == "portal.db"]
    assert any(m.startswith("database unavailable (") for m in db_events), db_events
    assert any(m.startswith("database reachable again after") for m in db_events), db_events
    assert len(db_events) <= 12, db_events  # not one line per refused request
    text = log.read_text()
    for secret in ("unhandled exception", "Traceback", "postgresql+asyncpg", f":{cluster.port}"):
        assert secret not in text, secret
    print(
        f"\nreceipts shown {len(shown)}, submissions refused {len(refused)} (committed anyway: "
        f"{committed_anyway}; commits cut off: {text.count('commit was cut off')}), cases "
        f"{cases}, answers {len(traffic.seen)}"
    )
    for mode, m in measured.items():
        print(
            f"{mode}: stop {m['stop_s']:.2f}s, start {m['start_s']:.2f}s, serving again "
            f"{m['recovered_after_start_s']:.2f}s after start, {m['refused']} of "
            f"{m['answered_while_down']} answers 503 while down, slowest answer "
            f"{m['slowest_answer_while_down_s']:.2f}s"
        )
