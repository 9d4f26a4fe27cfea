"""Real-browser fixtures: the real app served by uvicorn, Debian's Chromium through Playwright.

* `portal_server` - session: `portal init` then `portal serve` as subprocesses on a free loopback
                    port with a temporary data dir (PORTAL_MODE=test); yields the base URL.
* `portal_env`    - session: the environment `portal_server` runs with (data dir, database URL),
                    for running `portal.app.cli` commands such as `user add` against the live
                    server.
* `browser_type_launch_args` - overrides pytest-playwright's: Debian's /usr/bin/chromium.
* `js`            - parametrized: every test that uses `page` runs with JavaScript on and off.
* `page`          - a fresh context (locale zh-CN, so the default catalogue is zh_CN) and page;
                    records every URL navigated to or requested, console errors and page errors
                    in `page_log`; on failure saves a screenshot in tests/browser/artifacts/.

The whole directory is skipped when /usr/bin/chromium is missing (`make test` installs it).
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import appoint_readers_cli

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).parent / "artifacts"
ROOT = Path(__file__).resolve().parents[2]
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
START_TIMEOUT_S = 30.0
FAVICON = "/favicon.ico"
# base URL -> the environment its server runs with (filled by `_serve`, read by `portal_env`)
_SERVER_ENV: dict[str, dict[str, str]] = {}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if CHROMIUM.exists():
        return
    here = Path(__file__).parent
    skip = pytest.mark.skip(
        reason=f"{CHROMIUM} is missing: apt-get install chromium (`make test` does it)"
    )
    for item in items:
        if here in item.path.parents:
            item.add_marker(skip)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


# --- the server ----------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_healthy(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"portal serve exited ({proc.returncode}):\n{log.read_text()}")
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"portal serve did not answer /healthz in {START_TIMEOUT_S}s")


def _serve(tmp_path_factory: pytest.TempPathFactory, *, readers: bool = True) -> Iterator[str]:
    """A portal server; ``readers``: an intake officer and a custodian exist (C7)."""
    data = tmp_path_factory.mktemp("browser-portal")
    port = _free_port()
    env = {
        **os.environ,
        "PORTAL_DATA_DIR": str(data),
        "PORTAL_MODE": "test",
        "PORTAL_ARGON2_PROFILE": "test",
        "DATABASE_URL": f"sqlite+aiosqlite:///{(data / 'portal.db').as_posix()}",
        "PORTAL_HOST": "127.0.0.1",
        "PORTAL_PORT": str(port),
    }
    init = subprocess.run(
        [sys.executable, "-m", "portal.app.cli", "init"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert init.returncode == 0, f"portal init failed:\n{init.stdout}\n{init.stderr}"
    if readers:
        appoint_readers_cli(env)  # reports are taken only once somebody can open them (C7)
    log = data / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "portal.app.cli", "serve"],
            env=env,
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    _SERVER_ENV[url] = env
    try:
        _wait_healthy(url, proc, log)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


@pytest.fixture(scope="session")
def portal_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from _serve(tmp_path_factory)


@pytest.fixture(scope="session")
def portal_env(portal_server: str) -> dict[str, str]:
    """The environment of the running server: `portal.app.cli` commands run with it act on its
    data."""
    return dict(_SERVER_ENV[portal_server])


# --- the browser ---------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    return {**browser_type_launch_args, "executable_path": str(CHROMIUM), "args": CHROMIUM_ARGS}


@dataclass
class PageLog:
    """What a page did: URLs it navigated to or requested, console and page errors."""

    urls: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    csp_messages: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)


@pytest.fixture(params=[True, False], ids=["js", "nojs"])
def js(request: pytest.FixtureRequest) -> bool:
    return bool(request.param)


@pytest.fixture
def page_log() -> PageLog:
    return PageLog()


def _safe_name(nodeid: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", nodeid.split("::", 1)[-1])[:120]


@pytest.fixture
def page(
    browser: Any, portal_server: str, js: bool, page_log: PageLog, request: pytest.FixtureRequest
) -> Iterator[Any]:
    context = browser.new_context(
        base_url=portal_server,
        java_script_enabled=js,
        locale="zh-CN",
        accept_downloads=True,
    )
    context.set_default_timeout(10_000)
    page = context.new_page()
    page.on("framenavigated", lambda frame: page_log.urls.append(frame.url))
    page.on("request", lambda req: page_log.urls.append(req.url))

    def on_console(message: Any) -> None:
        text = message.text
        if "Content Security Policy" in text:
            page_log.csp_messages.append(text)
        # Chromium asks for /favicon.ico on its own (no page asks for it): not a page error
        if message.type == "error" and not message.location.get("url", "").endswith(FAVICON):
            page_log.console_errors.append(f"{text} ({message.location.get('url', '')})")

    page.on("console", on_console)
    page.on("pageerror", lambda exc: page_log.page_errors.append(str(exc)))
    try:
        yield page
    finally:
        call = getattr(request.node, "rep_call", None)
        if call is not None and call.failed:
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            try:
                page.screenshot(
                    path=str(ARTIFACTS / f"failed-{_safe_name(request.node.nodeid)}.png"),
                    full_page=True,
                )
            except Exception as exc:  # the page may be gone; the failure itself matters more
                print(f"screenshot failed: {exc}", file=sys.stderr)
        context.close()
