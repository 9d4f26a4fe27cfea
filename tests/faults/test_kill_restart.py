"""Faults: `portal serve` killed with SIGKILL in the middle of submissions, then restarted (R6, O4).

The real server runs as a subprocess on loopback (SQLite, local file store). Reporter threads
submit reports, some with several files, until the server is killed mid-flight. After a
restart:

* every submission whose receipt page was served signs in with its code and shows the number of
  files that were sent (R6: durable before the code is shown);
* nothing half-stored is visible: every `files` row has its object, no `incoming/*.part` is
  left (cleaned at start), and no object lacks a `files` row (swept at start,
  portal.reporter.submission.sweep_orphans).
"""

from __future__ import annotations

import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import appoint_readers_cli
from tests.portal.test_reporter_journeys import multipart, report_fields

pytestmark = pytest.mark.slow

CSRF_RE = re.compile(r'name="_csrf_token"\s+value="([^"]+)"')
TOKEN_RE = re.compile(r'name="submission_token" value="([^"]+)"')
CATEGORY_RE = re.compile(r'<option value="([a-z_]+)"')
GROUP_RE = re.compile(r'<span class="receipt-group">(\d{4})</span>')
ATTEMPTS_RE = re.compile(r'name="attempts" value="([^"]*)"')
FILES_RE = re.compile(r"Files you sent</dt>\s*<dd>(\d+)</dd>")
PORTAL = str(Path(sys.executable).with_name("portal"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _env(data_dir: Path, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PORTAL_")}
    env.update(
        PORTAL_DATA_DIR=str(data_dir),
        PORTAL_MODE="test",
        PORTAL_ARGON2_PROFILE="test",
        PORTAL_HOST="127.0.0.1",
        PORTAL_PORT=str(port),
        PORTAL_SERVE="reporter",
        PORTAL_RECEIPT_GLOBAL_PER_MINUTE="100000",
    )
    return env


def _start(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    out = open(log, "ab")  # noqa: SIM115 - handed to the child
    proc = subprocess.Popen([PORTAL, "serve"], env=env, stdout=out, stderr=out)
    base = f"http://127.0.0.1:{env['PORTAL_PORT']}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise AssertionError("server did not start: " + log.read_text()[-2000:])


def _submit(base: str, n_files: int, category: str) -> str:
    with httpx.Client(base_url=base, timeout=30, headers={"accept-language": "en"}) as c:
        page = c.get("/report/new")
        csrf = CSRF_RE.search(page.text)
        token = TOKEN_RE.search(page.text)
        assert csrf and token
        files = [
            (
                "evidence",
                (f"f{i}.bin", os.urandom(200_000 + i * 50_000), "application/octet-stream"),
            )
            for i in range(n_files)
        ]
        body, headers = multipart(
            [
                ("_csrf_token", csrf.group(1)),
                ("submission_token", token.group(1)),
                *report_fields(category=category),
                *files,
            ]
        )
        answer = c.post("/report", content=body, headers=headers)
        assert answer.status_code == 200, re.findall(r"class=\"error[^>]*>([^<]+)", answer.text)
        groups = GROUP_RE.findall(answer.text)
        assert len(groups) == 7
        return " ".join(groups)


def _file_count(base: str, code: str) -> int | None:
    with httpx.Client(
        base_url=base, timeout=30, headers={"accept-language": "en"}, follow_redirects=True
    ) as c:
        page = c.get("/follow-up")
        csrf, attempts = CSRF_RE.search(page.text), ATTEMPTS_RE.search(page.text)
        assert csrf and attempts
        signed = c.post(
            "/follow-up",
            data={"_csrf_token": csrf.group(1), "attempts": attempts.group(1), "code": code},
        )
        counts = FILES_RE.findall(signed.text)
        return sum(int(x) for x in counts) if counts else None


def test_sigkill_mid_submission_loses_nothing_served_and_leaves_nothing_half_stored(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    env = _env(data, _free_port())
    log = tmp_path / "server.log"
    subprocess.run([PORTAL, "init"], env=env, check=True, capture_output=True, timeout=120)
    appoint_readers_cli(env)  # reports are taken only once somebody can open them (C7)
    base = f"http://127.0.0.1:{env['PORTAL_PORT']}"
    server = _start(env, log)
    form = httpx.get(base + "/report/new").text
    category = CATEGORY_RE.findall(form.split('name="category"', 1)[1])[0]

    served: list[tuple[str, int]] = []
    errors: list[BaseException] = []
    stop = threading.Event()

    def reporter(worker: int) -> None:
        i = 0
        while not stop.is_set():
            n_files = (worker + i) % 4  # 0-3 files
            try:
                code = _submit(base, n_files, category)
            except (httpx.HTTPError, AssertionError) as exc:
                if not stop.is_set():
                    errors.append(exc)
                return
            served.append((code, n_files))
            i += 1

    threads = [threading.Thread(target=reporter, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 20
    while len(served) < 6 and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.15)  # so that some requests are mid-upload
    server.send_signal(signal.SIGKILL)
    stop.set()
    server.wait(timeout=10)
    for t in threads:
        t.join(timeout=30)
    assert errors == [], errors  # failures before the kill are real errors
    assert len(served) >= 6, "too few submissions before the kill"

    # what the kill left, plus one leftover of each kind planted, so that the start-up repair
    # is exercised even when the kill happened to fall between two requests
    files_dir = data / "files"
    left_parts = list(files_dir.rglob("*.part"))
    planted_object = files_dir / "objects" / "ab" / ("ab" + "0" * 38)
    planted_object.parent.mkdir(parents=True, exist_ok=True)
    planted_object.write_bytes(b"sealed bytes of an upload whose transaction never committed")
    planted_part = files_dir / "incoming" / ("cd" + "0" * 38 + ".part")
    planted_part.write_bytes(b"half an upload")
    print(f"kill left {len(left_parts)} partial uploads; {len(served)} receipts served")

    server = _start(env, log)
    try:
        assert not planted_object.exists() and not planted_part.exists()
        # served receipts: complete and readable
        for code, n_files in served:
            assert _file_count(base, code) == n_files, code
        # nothing half-stored
        assert not list(files_dir.rglob("*.part"))
        objects = {p.name for p in (files_dir / "objects").glob("*/*") if p.is_file()}
        with sqlite3.connect(data / "portal.db") as db:
            keys = {row[0] for row in db.execute("SELECT storage_key FROM files")}
            cases = db.execute("SELECT count(*) FROM cases").fetchone()[0]
        assert keys <= objects, "a files row without its object"
        assert objects <= keys, "an object without a files row"
        assert cases >= len(served)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=10)
