# ruff: noqa: F811 - the `env` fixture is imported from test_cli
"""C7: the keyring is bound to its database. `portal init` records a one-way fingerprint of the
keyring; every command (real `portal ...` processes) and the app at start-up refuse a keyring
that is not the database's with one line naming the fix, and `portal init` never creates new
secrets over a database that already belongs to a keyring."""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from litestar.testing import TestClient

from portal.kernel.settings import Settings
from tests.conftest import BASE_URL
from tests.portal.scaleout_fixtures import pg_databases  # noqa: F401  (new PostgreSQL databases)
from tests.portal.test_cli import env, portal  # noqa: F401  (env: a data directory for the CLI)

# the commands that use the database and the keyring
COMMANDS = (
    ("serve",),
    ("migrate",),
    ("user", "list"),
    ("user", "add", "wu", "--roles", "investigator"),
    ("retention", "run", "--dry-run"),
    ("notify", "run"),
)


def _secrets(env: dict[str, str]) -> Path:
    return Path(env["PORTAL_DATA_DIR"]) / "secrets"


def _one_line_refusal(out: object, *needles: str) -> None:
    assert out.returncode == 2, (out.stdout, out.stderr)  # type: ignore[attr-defined]
    err = out.stderr  # type: ignore[attr-defined]
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    for needle in needles:
        assert needle in lines[0], lines[0]


def _fingerprint_row(settings: Settings) -> str | None:
    from portal.kernel.binding import recorded_fingerprint
    from portal.kernel.db.engine import Database

    async def run() -> str | None:
        db = Database(settings.database_url)
        try:
            return await recorded_fingerprint(db)
        finally:
            await db.dispose()

    return asyncio.run(run())


def _app_start(settings: Settings) -> None:
    """Start the real app (its lifespan) with this data directory's keyring."""
    from portal.app import create_app
    from portal.app.wiring import build_services

    services = build_services(settings)
    with TestClient(create_app(settings, services), base_url=BASE_URL) as client:
        assert client.get("/healthz").status_code == 200


def _refused_at_start(settings: Settings, needle: str) -> None:
    """The app's start-up fails with the BindingError (Litestar wraps it in a group)."""
    from portal.kernel.binding import BindingError

    with pytest.raises(BaseException) as info:
        _app_start(settings)
    found: list[BaseException] = []
    pending: list[BaseException] = [info.value]
    while pending:
        error = pending.pop()
        if isinstance(error, BaseExceptionGroup):
            pending.extend(error.exceptions)
        elif isinstance(error, BindingError):
            found.append(error)
    assert found and needle in str(found[0]), info.value


def test_init_records_a_one_way_fingerprint(env: dict[str, str]) -> None:
    from crypto.keyring import keyring_fingerprint, load_keyring

    out = portal(env, "init")
    assert out.returncode == 0, out.stderr
    assert "keyring fingerprint: recorded" in out.stdout
    settings = Settings.from_env(env)
    keyring = load_keyring(settings.keyring_dir)
    recorded = _fingerprint_row(settings)
    assert recorded == keyring_fingerprint(keyring)
    # nothing of the secrets themselves is in it
    assert recorded is not None and len(recorded) == 64
    for secret in (keyring.server_key, keyring.pepper):
        assert secret.hex() not in recorded and secret.hex()[:16] not in recorded
    again = portal(env, "init")
    assert again.returncode == 0 and "keyring fingerprint: matches" in again.stdout
    for args in COMMANDS[1:]:
        ok = portal(env, *args)
        assert ok.returncode in (0, 1), (args, ok.stderr)  # notify: 1 without a mail server
        assert "do not belong" not in ok.stderr


def test_missing_secrets_are_never_replaced_over_a_bound_database(env: dict[str, str]) -> None:
    assert portal(env, "init").returncode == 0
    secrets = _secrets(env)
    shutil.move(secrets, secrets.with_name("secrets-lost"))

    out = portal(env, "init")
    _one_line_refusal(out, "missing", "portal restore --secrets")
    assert not secrets.exists() or not any(secrets.iterdir())  # no new keyring
    for args in COMMANDS:
        _one_line_refusal(portal(env, *args), "portal restore --secrets")

    # the right secrets back in place: everything works again
    shutil.move(secrets.with_name("secrets-lost"), secrets)
    assert portal(env, "user", "list").returncode == 0
    _app_start(Settings.from_env(env))


def test_init_refuses_new_secrets_over_cases_without_a_fingerprint(
    env: dict[str, str], settings: Settings
) -> None:
    """An installation set up before the binding existed (no fingerprint) that lost its
    secrets: `portal init` sees the cases and accounts and refuses all the same."""
    assert portal(env, "init").returncode == 0
    installed = Settings.from_env(env)
    _delete_fingerprint(installed)
    shutil.rmtree(_secrets(env))
    out = portal(env, "init")
    _one_line_refusal(out, "missing", "portal restore --secrets")
    assert not _secrets(env).exists() or not any(_secrets(env).iterdir())


def _delete_fingerprint(settings: Settings) -> None:
    from sqlalchemy import delete

    from portal.kernel.db.engine import Database
    from portal.kernel.db.models import KeyringBinding

    async def run() -> None:
        db = Database(settings.database_url)
        try:
            async with db.write() as s:
                await s.execute(delete(KeyringBinding))
        finally:
            await db.dispose()

    asyncio.run(run())


def test_a_swapped_server_key_is_refused_everywhere(env: dict[str, str]) -> None:
    assert portal(env, "init").returncode == 0
    key = _secrets(env) / "server.key"
    original = key.read_bytes()
    key.write_bytes(os.urandom(32))
    os.chmod(key, 0o600)
    for args in COMMANDS:
        _one_line_refusal(
            portal(env, *args), "do not belong to this database", "portal restore --secrets"
        )
    # the app itself refuses to start
    _refused_at_start(Settings.from_env(env), "do not belong to this database")
    # `portal init` neither accepts nor replaces it
    _one_line_refusal(portal(env, "init"), "do not belong to this database")
    key.write_bytes(original)
    assert portal(env, "migrate").returncode == 0
    _app_start(Settings.from_env(env))


def test_a_second_instance_with_other_secrets_is_refused(
    env: dict[str, str], tmp_path: Path
) -> None:
    """Instance B, set up with its own secrets (on its own new database), is pointed at
    instance A's database: every command and the app refuse."""
    assert portal(env, "init").returncode == 0
    other_db = f"sqlite+aiosqlite:///{(tmp_path / 'b.db').as_posix()}"
    b_env = {**env, "PORTAL_DATA_DIR": str(tmp_path / "b"), "DATABASE_URL": other_db}
    assert portal(b_env, "init").returncode == 0
    b_env["DATABASE_URL"] = env["DATABASE_URL"]  # now at A's database
    for args in COMMANDS:
        _one_line_refusal(portal(b_env, *args), "do not belong to this database")
    _refused_at_start(Settings.from_env(b_env), "do not belong to this database")
    assert portal(env, "user", "list").returncode == 0  # A is unaffected


def test_an_installation_without_fingerprint_gets_one_at_migrate(env: dict[str, str]) -> None:
    from crypto.keyring import keyring_fingerprint, load_keyring

    assert portal(env, "init").returncode == 0
    settings = Settings.from_env(env)
    _delete_fingerprint(settings)  # as if set up before the binding existed
    _refused_at_start(settings, "portal migrate")  # holds an account: start-up asks
    _one_line_refusal(portal(env, "serve"), "portal migrate")
    out = portal(env, "migrate")
    assert out.returncode == 0, out.stderr
    assert "keyring fingerprint: recorded" in out.stdout
    assert _fingerprint_row(settings) == keyring_fingerprint(load_keyring(settings.keyring_dir))
    _app_start(settings)


def test_restore_keeps_the_binding(
    env: dict[str, str], tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """A restored installation with its restored secrets starts; other secrets are refused,
    whichever of the two is restored first. On PostgreSQL each restore gets a new database."""
    new_database: Callable[[], str] | None = (
        None
        if env["DATABASE_URL"].startswith("sqlite")
        else request.getfixturevalue("pg_databases")
    )
    assert portal(env, "init").returncode == 0
    assert portal(env, "backup", str(tmp_path / "bak")).returncode == 0
    assert portal(env, "backup", "--secrets", str(tmp_path / "sec")).returncode == 0
    other = {
        **env,
        "PORTAL_DATA_DIR": str(tmp_path / "other"),
        "DATABASE_URL": f"sqlite+aiosqlite:///{(tmp_path / 'other.db').as_posix()}",
    }
    assert portal(other, "init").returncode == 0
    assert portal(other, "backup", "--secrets", str(tmp_path / "other-sec")).returncode == 0

    def fresh(name: str) -> dict[str, str]:
        return {
            **env,
            "PORTAL_DATA_DIR": str(tmp_path / name),
            "DATABASE_URL": new_database()
            if new_database is not None
            else f"sqlite+aiosqlite:///{(tmp_path / name / 'portal.db').as_posix()}",
        }

    # the right secrets first (the backup manifest's MAC is keyed from them), then the data
    one = fresh("r1")
    right = portal(one, "restore", "--secrets", str(tmp_path / "sec"))
    assert right.returncode == 0, right.stderr
    restored = portal(one, "restore", str(tmp_path / "bak"))
    assert restored.returncode == 0, restored.stderr
    assert portal(one, "user", "list").returncode == 0
    _app_start(Settings.from_env(one))

    # the wrong secrets first, then the database: the restore refuses it, nothing serves
    two = fresh("r2")
    assert portal(two, "restore", "--secrets", str(tmp_path / "other-sec")).returncode == 0
    out = portal(two, "restore", str(tmp_path / "bak"))
    assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert portal(two, "serve").returncode != 0


def test_a_missing_or_empty_database_is_refused_in_one_line(
    env: dict[str, str], tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """Secrets in place but the database missing (SQLite) or empty (PostgreSQL): the commands
    say what to run instead of serving a database that belongs to nothing."""
    assert portal(env, "init").returncode == 0
    if env["DATABASE_URL"].startswith("sqlite"):
        gone = {**env, "DATABASE_URL": f"sqlite+aiosqlite:///{(tmp_path / 'gone.db').as_posix()}"}
        _one_line_refusal(portal(gone, "serve"), "does not exist", "portal init")
        assert not (tmp_path / "gone.db").exists()
    else:
        empty = {**env, "DATABASE_URL": request.getfixturevalue("pg_databases")()}
        _one_line_refusal(portal(empty, "serve"), "portal migrate")
        _one_line_refusal(portal(empty, "user", "list"), "portal migrate")
