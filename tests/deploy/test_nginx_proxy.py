"""The reverse proxy configuration, tested for real (issue 14, point 4).

Debian's nginx, configured from deploy/nginx/portal.conf.template (the file docker-compose
uses), terminates TLS on a free loopback port in front of TWO `portal serve` processes on
loopback sharing one installation (SQLite, or PostgreSQL with PORTAL_TEST_DATABASE_URL) and
Redis. Through the proxy: a reporter's form post works (Host and Origin agree), an upload at
the size limit is stored, an oversize upload is answered by the portal's own translated 413
page (not nginx's English one), slow clients are dropped within the timeout, the public port
never serves the workspace, and plain HTTP redirects to HTTPS.

nginx absent: skipped with the reason, except on CI (CI=true), where it is a failure.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import httpx
import pytest

from tests.conftest import _drop_everything, appoint_readers_cli
from tests.portal.scaleout_fixtures import free_port, redis_available
from tests.portal.test_reporter_journeys import form_tokens, receipt_of, report_fields, submit

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "deploy" / "nginx" / "portal.conf.template"
ENTRYPOINT = ROOT / "deploy" / "nginx" / "entrypoint.sh"
MAX_FILE_MB = 2
MAX_FILES = 1
# what deploy/nginx/entrypoint.sh must compute: the portal's request limit + 1 MB
BODY_LIMIT_MB = MAX_FILE_MB * MAX_FILES + 3
CLIENT_TIMEOUT_S = 2
MiB = 1024 * 1024
REDIS_URL = "redis://127.0.0.1:6379/11"


def nginx_binary() -> str:
    """nginx, plus envsubst and openssl for the proxy's entrypoint script."""
    found = shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if os.access(p, os.X_OK)), None
    )
    missing = [n for n in ("envsubst", "openssl") if shutil.which(n) is None]
    if found and not missing:
        return found
    reason = (
        f"{', '.join(([] if found else ['nginx']) + missing)} not installed "
        "(apt-get install nginx-light gettext-base openssl; `make test` does it as root)"
    )
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI: {reason}")
    pytest.skip(reason)


def render_with_entrypoint(conf: Path, values: dict[str, str]) -> str:
    """The compose proxy's own start script, stopped before it starts nginx: it makes the
    self-signed certificate, the upstream lists and the body limit, and runs envsubst."""
    out = conf / "portal.conf"
    run = subprocess.run(
        ["sh", str(ENTRYPOINT), "render"],
        env={
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "PORTAL_PROXY_TEMPLATE": str(TEMPLATE),
            "PORTAL_PROXY_OUTPUT": str(out),
            "NGINX_CERT_DIR": str(conf / "certs"),
            **values,
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    text = out.read_text(encoding="utf-8")
    assert not re.findall(r"\$\{[A-Z_]+\}", text), "placeholders left without a value"
    assert f"client_max_body_size {BODY_LIMIT_MB}m;" in text
    return run.stdout


@dataclass
class Stack:
    public: str  # https://127.0.0.1:PORT
    workspace: str
    http_port: int
    public_port: int
    logs: Path

    def client(self, base: str | None = None) -> httpx.Client:
        base = base or self.public
        return httpx.Client(
            base_url=base,
            verify=False,
            timeout=30,
            headers={"Origin": base, "Sec-Fetch-Site": "same-origin"},
        )


def _wait_http(url: str, timeout: float, procs: list[subprocess.Popen[bytes]]) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for proc in procs:
            assert proc.poll() is None, f"a process ended early (exit {proc.returncode})"
        try:
            if httpx.get(url, timeout=2, verify=False).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{url} did not answer within {timeout}s")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    nginx = nginx_binary()
    if not redis_available():
        pytest.skip("no Redis on 127.0.0.1:6379 (two instances share their state there)")
    import redis

    redis.Redis.from_url(REDIS_URL).flushdb()
    base = tmp_path_factory.mktemp("proxy")
    data = base / "data"
    database_url = os.environ.get("PORTAL_TEST_DATABASE_URL") or (
        f"sqlite+aiosqlite:///{(data / 'portal.db').as_posix()}"
    )
    if not database_url.startswith("sqlite"):
        asyncio.run(_drop_everything(database_url))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PORTAL_", "DATABASE_URL"))}
    env.update(
        PORTAL_DATA_DIR=str(data),
        PORTAL_MODE="test",
        PORTAL_ARGON2_PROFILE="test",
        DATABASE_URL=database_url,
        REDIS_URL=REDIS_URL,
        PORTAL_MAX_FILE_MB=str(MAX_FILE_MB),
        PORTAL_MAX_FILES=str(MAX_FILES),
        PORTAL_HOST="127.0.0.1",
        PORTAL_TRUSTED_PROXIES="127.0.0.1",
    )
    init = subprocess.run(
        [sys.executable, "-m", "portal.app.cli", "init"],
        env=env,
        capture_output=True,
        timeout=180,
        check=False,
    )
    assert init.returncode == 0, init.stderr.decode()
    appoint_readers_cli(env)  # a report is taken only once somebody can open it (C7)

    procs: list[subprocess.Popen[bytes]] = []
    logs = base / "logs"
    logs.mkdir()
    try:
        ports = [free_port(), free_port()]
        for i, port in enumerate(ports):
            out = (logs / f"portal-{i}.log").open("wb")
            procs.append(
                subprocess.Popen(
                    [sys.executable, "-m", "portal.app.cli", "serve"],
                    env={**env, "PORTAL_PORT": str(port)},
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
            )
        for port in ports:
            _wait_http(f"http://127.0.0.1:{port}/healthz", 90, procs)

        conf = base / "nginx"
        conf.mkdir()
        http_port, public_port, workspace_port = free_port(), free_port(), free_port()
        upstreams = " ".join(f"127.0.0.1:{p}" for p in ports)
        said = render_with_entrypoint(
            conf,
            {
                "PORTAL_SERVER_NAME": "localhost",
                "NGINX_HTTP_LISTEN": f"127.0.0.1:{http_port}",
                "NGINX_PUBLIC_LISTEN": f"127.0.0.1:{public_port}",
                "NGINX_WORKSPACE_LISTEN": f"127.0.0.1:{workspace_port}",
                "NGINX_CLIENT_TIMEOUT": str(CLIENT_TIMEOUT_S),
                "PORTAL_MAX_FILE_MB": str(MAX_FILE_MB),
                "PORTAL_MAX_FILES": str(MAX_FILES),
                "PORTAL_UPSTREAMS": upstreams,
                "WORKSPACE_UPSTREAMS": upstreams,
            },
        )
        assert "creating a self-signed one for localhost" in said
        assert (conf / "certs" / "portal.key").stat().st_mode & 0o077 == 0
        temp = "\n".join(
            f"    {kind}_temp_path {conf / kind};"
            for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
        (conf / "nginx.conf").write_text(
            ("user root;\n" if os.geteuid() == 0 else "")
            + f"daemon off;\nworker_processes 1;\npid {conf / 'nginx.pid'};\n"
            f"error_log {logs / 'nginx-error.log'} warn;\n"
            "events { worker_connections 256; }\n"
            f"http {{\n    access_log off;\n{temp}\n    include {conf / 'portal.conf'};\n}}\n",
            encoding="utf-8",
        )
        args = [nginx, "-p", str(conf), "-c", str(conf / "nginx.conf"), "-e", str(logs / "e")]
        check = subprocess.run([*args, "-t"], capture_output=True, timeout=30, check=False)
        assert check.returncode == 0, check.stderr.decode()
        proxy = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(proxy)
        _wait_http(f"https://127.0.0.1:{public_port}/healthz", 30, procs)
        yield Stack(
            public=f"https://127.0.0.1:{public_port}",
            workspace=f"https://127.0.0.1:{workspace_port}",
            http_port=http_port,
            public_port=public_port,
            logs=logs,
        )
    finally:
        for proc in reversed(procs):
            if proc.poll() is None:
                proc.terminate()
        for proc in procs:
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


def evidence(size: int) -> list[tuple[str, tuple[str, bytes, str]]]:
    return [("evidence", ("scan.bin", os.urandom(size), "application/octet-stream"))]


def test_a_reporter_form_post_works_through_the_proxy(stack: Stack) -> None:
    """Host and X-Forwarded-Proto reach the portal: the Origin check passes, two instances
    behind one name, several submissions in a row (GET and POST land on either instance)."""
    with stack.client() as client:
        for _ in range(3):
            page = submit(cast(Any, client), report_fields())
            assert page.status_code == 200, page.text[:500]
            assert len(receipt_of(page).replace(" ", "")) == 28
        # a foreign Origin is still refused: the proxy does not turn the check off
        csrf, token = form_tokens(cast(Any, client))
        foreign = submit(
            cast(Any, client),
            report_fields(),
            tokens=(csrf, token),
            headers={"Origin": "https://evil.example"},
        )
        assert foreign.status_code == 403


def test_an_upload_at_the_size_limit_is_stored(stack: Stack) -> None:
    with stack.client() as client:
        page = submit(cast(Any, client), report_fields(), evidence(MAX_FILE_MB * MiB))
    assert page.status_code == 200, page.text[:500]
    receipt_of(page)


@pytest.mark.parametrize(
    ("size", "expected"),
    [
        # one byte over the file limit: the portal's upload check
        (MAX_FILE_MB * MiB + 1, "有文件超过了大小限制。"),
        # over the portal's whole-request limit, under nginx's: the portal's 413 page
        (int((MAX_FILE_MB * MAX_FILES + 2.5) * MiB), "内容过大"),
    ],
)
def test_an_oversize_upload_gets_the_portals_translated_413(
    stack: Stack, size: int, expected: str
) -> None:
    assert size < BODY_LIMIT_MB * MiB
    with stack.client() as client:
        page = submit(cast(Any, client), report_fields(), evidence(size))
    assert page.status_code == 413
    assert expected in page.text
    assert "nginx" not in page.text.lower()
    assert page.headers.get("content-type", "").startswith("text/html")


def _tls(port: int) -> ssl.SSLSocket:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    raw = socket.create_connection(("127.0.0.1", port), timeout=5)
    return ctx.wrap_socket(raw, server_hostname="localhost")


def _closed(sock: ssl.SSLSocket) -> bool:
    """True when the server has closed the connection (EOF, reset, or a 408 then EOF)."""
    sock.setblocking(False)
    try:
        data = sock.recv(4096)
    except (ssl.SSLWantReadError, BlockingIOError):
        return False
    except (ConnectionError, ssl.SSLError, OSError):
        return True
    finally:
        sock.setblocking(True)
    return data == b"" or data.startswith(b"HTTP/1.1 408")


def test_slow_clients_are_dropped_within_the_timeout(stack: Stack) -> None:
    """Ten clients sending their headers byte by byte, faster than the timeout between bytes
    but never finishing: nginx drops all of them within the header timeout (plus slack)."""
    request = b"GET /report/new HTTP/1.1\r\nHost: localhost\r\nUser-Agent: slow\r\nX-Pad: "
    request += b"a" * 200
    socks = [_tls(stack.public_port) for _ in range(10)]
    started = time.monotonic()
    dropped_at: dict[int, float] = {}
    try:
        for i in range(len(request)):  # bounded: one byte per round, 0.2 s apart
            for n, sock in enumerate(socks):
                if n in dropped_at:
                    continue
                if _closed(sock):
                    dropped_at[n] = time.monotonic() - started
                    continue
                try:
                    sock.sendall(request[i : i + 1])
                except (ConnectionError, ssl.SSLError, OSError):
                    dropped_at[n] = time.monotonic() - started
            if len(dropped_at) == len(socks) or time.monotonic() - started > 4 * CLIENT_TIMEOUT_S:
                break
            time.sleep(0.2)
    finally:
        for sock in socks:
            sock.close()
    assert len(dropped_at) == len(socks), f"still connected after {4 * CLIENT_TIMEOUT_S}s"
    assert max(dropped_at.values()) <= CLIENT_TIMEOUT_S + 1.5, dropped_at


def test_a_stalled_upload_body_is_dropped(stack: Stack) -> None:
    sock = _tls(stack.public_port)
    try:
        sock.sendall(
            b"POST /report HTTP/1.1\r\nHost: localhost\r\n"
            b"Content-Type: multipart/form-data; boundary=x\r\nContent-Length: 100000\r\n\r\n--x"
        )
        started = time.monotonic()
        sock.settimeout(4 * CLIENT_TIMEOUT_S)
        try:
            while sock.recv(4096):
                pass
        except (ConnectionError, ssl.SSLError):
            pass
        except TimeoutError:
            pytest.fail("a client that stopped sending its body was kept")
        assert time.monotonic() - started <= CLIENT_TIMEOUT_S + 1.5
    finally:
        sock.close()


def test_the_public_port_never_serves_the_workspace(stack: Stack) -> None:
    with stack.client() as client:
        assert client.get("/workspace/").status_code == 404
        assert client.get("/workspace").status_code == 404
    with stack.client(stack.workspace) as staff:
        page = staff.get("/workspace/", follow_redirects=True)
        assert page.status_code == 200
        assert 'name="password"' in page.text


def test_plain_http_redirects_to_https_and_no_server_version(stack: Stack) -> None:
    answer = httpx.get(f"http://127.0.0.1:{stack.http_port}/report/new", timeout=10)
    assert answer.status_code == 301
    assert answer.headers["location"].startswith("https://127.0.0.1")
    with stack.client() as client:
        page = client.get("/")
    assert page.status_code == 200
    assert page.headers.get("server", "nginx") == "nginx"  # no version number
