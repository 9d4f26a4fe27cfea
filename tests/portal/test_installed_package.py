"""The product as an operator installs it (issue 14, point 1): the wheel is built (with build
isolation, as `pip install .` in the Dockerfile does), installed into a fresh virtual
environment (not editable, no access to the checkout), made read-only, and then `portal init`
and `portal serve` must serve the pages, a static file and the Chinese translations.

Slow (about a minute: the dependencies are installed from the configured package index)."""

from __future__ import annotations

import os
import shutil
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from markupsafe import escape

from portal.kernel.i18n import translations
from tests.portal.scaleout_fixtures import free_port

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
# What the build needs, as the Dockerfile copies it; never the checkout's .mo or build output.
SOURCES = (
    "pyproject.toml",
    "setup.py",
    "MANIFEST.in",
    "README.md",
    "babel.cfg",
    "crypto",
    "portal",
    "investigator",
    "templates",
    "static",
)
IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", "*.mo", "*.egg-info", "_data")


def _run(args: list[str], **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # type: ignore[call-overload, no-any-return]
        args, capture_output=True, text=True, check=False, **kw
    )


def _tree(path: Path) -> dict[str, tuple[int, float]]:
    return {
        str(p.relative_to(path)): (p.stat().st_size, p.stat().st_mtime)
        for p in path.rglob("*")
        if p.is_file()
    }


def _set_writable(path: Path, writable: bool) -> None:
    for p in [path, *path.rglob("*")]:
        if p.is_symlink():
            continue
        mode = p.stat().st_mode
        mode = (
            mode | stat.S_IWUSR
            if writable
            else mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)
        )
        p.chmod(mode)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A fresh venv holding the wheel and its dependencies; yields its bin directory."""
    base = tmp_path_factory.mktemp("installed")
    src = base / "src"
    src.mkdir()
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, src / name, ignore=IGNORE)
        else:
            shutil.copy2(ROOT / name, src / name)
    pip = [sys.executable, "-m", "pip"]
    built = _run([*pip, "wheel", "--no-deps", "-w", str(base / "dist"), str(src)], timeout=300)
    assert built.returncode == 0, built.stdout + built.stderr
    # point 8: no deprecation warnings from the build backend (e.g. the license field)
    assert "Deprecat" not in built.stdout + built.stderr
    assert "SetuptoolsWarning" not in built.stdout + built.stderr
    (wheel,) = (base / "dist").glob("whistle_portal-*.whl")

    venv = base / "venv"
    made = _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], timeout=120)
    assert made.returncode == 0, made.stderr
    python = venv / "bin" / "python"
    done = _run(
        [*pip, "--python", str(python), "install", "--no-compile", "-q", str(wheel)],
        timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    site = Path(
        _run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]
        ).stdout.strip()
    )
    assert site.is_relative_to(venv)
    _set_writable(site, False)
    try:
        yield venv / "bin"
    finally:
        _set_writable(site, True)


def _env(data: Path, port: int) -> dict[str, str]:
    keep = ("PATH", "LANG", "LC_ALL", "TMPDIR", "HOME")
    env = {k: v for k, v in os.environ.items() if k in keep}
    env.update(
        PORTAL_MODE="production",
        PORTAL_DATA_DIR=str(data),
        PORTAL_HOST="127.0.0.1",
        PORTAL_PORT=str(port),
        PYTHONDONTWRITEBYTECODE="1",
    )
    return env


def _wait_until_serving(url: str, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert proc.poll() is None, "portal serve exited early"
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.3)
    raise AssertionError("portal serve did not answer within 60 s")


def test_the_installed_wheel_serves_read_only(installed: Path, tmp_path: Path) -> None:
    bindir = installed
    venv = bindir.parent
    python = bindir / "python"
    port = free_port()
    env = _env(tmp_path / "data", port)
    cwd = tmp_path / "elsewhere"  # not the checkout: nothing may come from it
    cwd.mkdir()

    where = _run(
        [
            str(python),
            "-c",
            "import portal, portal.kernel.assets as a; print(portal.__file__); "
            "print(a.templates_dir()); print(a.static_dir())",
        ],
        env=env,
        cwd=cwd,
    )
    assert where.returncode == 0, where.stderr
    for line in where.stdout.split():
        assert Path(line).is_relative_to(venv), line
        assert not Path(line).is_relative_to(ROOT), line

    site_before = _tree(venv / "lib")
    init = _run([str(bindir / "portal"), "init"], env=env, cwd=cwd, timeout=300)
    assert init.returncode == 0, init.stdout + init.stderr
    assert "One-time password" in init.stdout
    # the report form opens only once somebody could read a report (C7)
    for name, role in (("olga", "intake_officer"), ("ivan", "identity_custodian")):
        added = _run(
            [str(bindir / "portal"), "user", "add", name, "--roles", role],
            env=env,
            cwd=cwd,
            timeout=300,
        )
        assert added.returncode == 0, added.stdout + added.stderr

    proc = subprocess.Popen(
        [str(bindir / "portal"), "serve"],
        env=env,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    zh = translations("zh_CN")
    try:
        _wait_until_serving(f"{base}/healthz", proc)
        with httpx.Client(base_url=base, timeout=30, follow_redirects=True) as client:
            pages = {
                "/": "Report misconduct safely",
                "/report/new": "Make a report",
                "/follow-up": "Follow up on your report",
                "/workspace/": "Workspace sign-in",
            }
            for path, msgid in pages.items():
                answer = client.get(path)
                assert answer.status_code == 200, (path, answer.status_code)
                title = str(escape(zh.gettext(msgid)))
                assert title != msgid  # the page is in Chinese: the installed .mo was read
                assert title in answer.text, path
            css = client.get("/static/portal.css")
            assert css.status_code == 200
            assert css.content == (ROOT / "static" / "portal.css").read_bytes()
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            out, _ = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
    assert "Traceback" not in out, out
    # nothing was compiled or written into the installation at run time
    assert _tree(venv / "lib") == site_before
