"""Start-up failures an operator can act on (issue 14, point 6): `portal serve`, `portal migrate`
and `portal init` fail with one line on stderr naming the setting, host or file and the fix;
no traceback unless `--debug`; no password, SQL or SQL parameter in any of it. Each case runs
the real command in a subprocess."""

from __future__ import annotations

import os
import shutil
import socket
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from portal.kernel.db.engine import Database
from portal.kernel.db.migrate import head_revision
from tests.portal.test_cli import portal

PASSWORD = "pw-CANARY-7731"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    data = tmp_path / "data"
    e = {k: v for k, v in os.environ.items() if not k.startswith(("PORTAL_", "DATABASE_URL"))}
    e.update(
        PORTAL_DATA_DIR=str(data),
        PORTAL_MODE="test",
        PORTAL_ARGON2_PROFILE="test",
        DATABASE_URL=f"sqlite+aiosqlite:///{data / 'portal.db'}",
        PORTAL_PORT=str(_free_port()),
    )
    return e


@pytest.fixture
def initialised(env: dict[str, str]) -> Iterator[dict[str, str]]:
    done = portal(env, "init")
    assert done.returncode == 0, done.stderr
    yield env


def _one_line(done: subprocess.CompletedProcess[str], *needles: str) -> str:
    assert done.returncode == 2, (done.returncode, done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    line = lines[0]
    assert line.startswith("portal: error: "), line
    for needle in needles:
        assert needle in line, (needle, line)
    for leak in ("Traceback", PASSWORD, "SELECT", "parameters"):
        assert leak not in done.stderr + done.stdout, leak
    return line


def _closed_postgres(env: dict[str, str]) -> tuple[dict[str, str], int]:
    port = _free_port()
    url = f"postgresql+asyncpg://portal:{PASSWORD}@127.0.0.1:{port}/portal"
    return {**env, "DATABASE_URL": url}, port


@pytest.mark.parametrize("command", [["migrate"], ["init"], ["serve"]])
def test_a_database_that_cannot_be_reached(initialised: dict[str, str], command: list[str]) -> None:
    env, port = _closed_postgres(initialised)
    _one_line(
        portal(env, *command),
        f"cannot reach the database at 127.0.0.1:{port} (DATABASE_URL)",
        "connection refused",
        "start PostgreSQL or correct DATABASE_URL",
    )


def test_debug_shows_the_traceback(initialised: dict[str, str]) -> None:
    env, port = _closed_postgres(initialised)
    done = portal(env, "--debug", "migrate")
    assert done.returncode == 2
    assert "Traceback" in done.stderr
    assert (
        done.stderr.strip()
        .splitlines()[-1]
        .startswith(f"portal: error: cannot reach the database at 127.0.0.1:{port}")
    )


def test_a_database_without_schema(initialised: dict[str, str], tmp_path: Path) -> None:
    empty = tmp_path / "empty.db"
    sqlite3.connect(empty).close()
    env = {**initialised, "DATABASE_URL": f"sqlite+aiosqlite:///{empty}"}
    _one_line(portal(env, "serve"), "has no schema: run `portal migrate`")


def test_a_missing_sqlite_file(initialised: dict[str, str], tmp_path: Path) -> None:
    env = {**initialised, "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'nothing.db'}"}
    _one_line(portal(env, "serve"), str(tmp_path / "nothing.db"), "PORTAL_DATA_DIR", "portal init")


def test_an_older_schema(initialised: dict[str, str], tmp_path: Path) -> None:
    from alembic import command

    from portal.kernel.db.migrate import alembic_config

    older = tmp_path / "older.db"
    url = f"sqlite+aiosqlite:///{older}"
    command.upgrade(alembic_config(url), "0005")
    env = {**initialised, "DATABASE_URL": url}
    _one_line(
        portal(env, "serve"),
        f"older schema (0005; this version needs {head_revision()})",
        "run `portal migrate`",
    )
    migrated = portal(env, "migrate")
    assert migrated.returncode == 0, migrated.stderr


def test_an_unknown_newer_schema(initialised: dict[str, str]) -> None:
    path = Path(initialised["PORTAL_DATA_DIR"]) / "portal.db"
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE alembic_version SET version_num = '9999'")
    _one_line(portal(initialised, "serve"), "schema 9999", "install the matching portal version")


def test_a_port_in_use(initialised: dict[str, str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {**initialised, "PORTAL_PORT": str(port)}
        _one_line(
            portal(env, "serve"),
            f"cannot listen on 127.0.0.1:{port} (PORTAL_HOST/PORTAL_PORT)",
            "already in use",
        )


@pytest.mark.parametrize(
    ("name", "value", "needle"),
    [
        ("PORTAL_PORT", "eighty", "PORTAL_PORT must be a whole number"),
        ("PORTAL_MIN_FREE_MB", "-1", "PORTAL_MIN_FREE_MB must be between 0 and"),
        ("DATABASE_URL", "mysql://x", "DATABASE_URL must start with"),
    ],
)
def test_bad_settings(env: dict[str, str], name: str, value: str, needle: str) -> None:
    for command in ("serve", "migrate", "init"):
        _one_line(portal({**env, name: value}, command), needle)


def test_a_file_store_that_cannot_be_written(initialised: dict[str, str]) -> None:
    files = Path(initialised["PORTAL_DATA_DIR"]) / "files"
    shutil.rmtree(files, ignore_errors=True)
    files.write_text("a file where the folder should be")  # not writable as a folder, even by root
    _one_line(
        portal(initialised, "serve"), f"cannot write to the file store {files}", "PORTAL_DATA_DIR"
    )


def test_no_keyring(env: dict[str, str]) -> None:
    # nothing initialised: the first thing missing (the database, then the keyring) is named
    _one_line(portal(env, "serve"), "portal init")


async def test_sql_parameters_never_reach_an_error_text(tmp_path: Path) -> None:
    """SQLAlchemy puts the parameters in the error's text unless hide_parameters is set."""
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'p.db'}")
    try:
        with pytest.raises(Exception) as caught:
            async with db.write() as session:
                await session.execute(
                    text("INSERT INTO no_such_table (x) VALUES (:secret)"),
                    {"secret": "PARAM-CANARY-4242"},
                )
        assert "PARAM-CANARY-4242" not in str(caught.value)
        assert "no_such_table" in str(caught.value)  # it is the error we meant
    finally:
        await db.dispose()
