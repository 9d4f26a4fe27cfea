"""`portal check` and `portal --version` (issue 14, point 7), run as real processes against a
real installation: a good one passes; a missing migration, an unwritable file store, an
unreachable Redis (and the other readiness gaps) each fail with their own line and exit 1."""

from __future__ import annotations

import asyncio
import shutil
from importlib.metadata import version
from pathlib import Path

import pytest
from alembic import command

from investigator.domain.calendar import package_years
from investigator.domain.calendar_years import confirm_year, parse_schedule
from investigator.domain.duty_roster import set_on_duty
from investigator.domain.staff import list_users
from portal.kernel import clock
from portal.kernel.db.engine import Database
from portal.kernel.db.migrate import alembic_config, current_revision, head_revision
from tests.investigator.ws_helpers import year_schedule
from tests.portal.test_cli import env, portal  # noqa: F401 - the env fixture

REDIS = "redis://127.0.0.1:6379/15"


def _lines(out: str) -> dict[str, str]:
    """check name -> its whole line."""
    found = {}
    for line in out.splitlines():
        if line.startswith(("OK   ", "FAIL ")):
            found[line[5:].split(":", 1)[0]] = line
    return found


def _url(environ: dict[str, str]) -> str:
    return environ["DATABASE_URL"]


async def _ready_staff_and_calendar(url: str) -> None:
    """What an administrator does on the first day: the duty roster, next year's calendar."""
    db = Database(url)
    try:
        users = {u.username: u for u in await list_users(db)}
        async with db.write() as s:
            admin = users["admin"].id
            await set_on_duty(s, admin, [users["olga"].id])
            for year in (clock.today().year, clock.today().year + 1):
                if year not in package_years():
                    schedule = parse_schedule(year, *year_schedule(year))
                    await confirm_year(s, schedule, admin)
    finally:
        await db.dispose()


@pytest.fixture
def ready(env: dict[str, str]) -> dict[str, str]:  # noqa: F811
    assert portal(env, "init").returncode == 0
    for name, roles in (("olga", "intake_officer"), ("ivan", "identity_custodian")):
        out = portal(env, "user", "add", name, "--roles", roles)
        assert out.returncode == 0, out.stderr
    asyncio.run(_ready_staff_and_calendar(_url(env)))
    return env


async def _revision(url: str) -> str | None:
    db = Database(url)
    try:
        return await current_revision(db)
    finally:
        await db.dispose()


def test_version(env: dict[str, str]) -> None:  # noqa: F811
    out = portal(env, "--version")
    assert out.returncode == 0
    assert out.stdout.strip() == f"portal {version('whistle-portal')}"


def test_a_ready_installation_passes_every_check(ready: dict[str, str]) -> None:
    out = portal({**ready, "REDIS_URL": REDIS}, "check")
    assert out.returncode == 0, out.stdout + out.stderr
    lines = _lines(out.stdout)
    assert set(lines) >= {
        "settings",
        "database",
        "database schema",
        "redis",
        "file store",
        "keyring",
        "keyring binding",
        "working-day calendar",
        "mail server",
        "intake officers",
        "identity custodians",
        "on duty",
    }
    assert all(line.startswith("OK") for line in lines.values()), out.stdout
    assert "127.0.0.1:6379 answers" in lines["redis"]
    assert "all checks passed" in out.stdout


def test_another_installations_server_key_fails_the_binding_check(
    ready: dict[str, str],
) -> None:
    """C7: secrets that are not the database's are a FAIL line naming the restore."""
    import os

    key = Path(ready["PORTAL_DATA_DIR"]) / "secrets" / "server.key"
    key.chmod(0o600)
    key.write_bytes(os.urandom(32))
    out = portal(ready, "check")
    assert out.returncode == 1, out.stdout + out.stderr
    line = _lines(out.stdout)["keyring binding"]
    assert line.startswith("FAIL") and "portal restore --secrets" in line, line


def test_a_fresh_installation_lists_what_the_administrator_must_do(
    env: dict[str, str],  # noqa: F811
) -> None:
    assert portal(env, "init").returncode == 0
    out = portal(env, "check")
    assert out.returncode == 1
    lines = _lines(out.stdout)
    assert lines["intake officers"].startswith("FAIL")
    assert "portal user add" in lines["intake officers"]
    assert lines["identity custodians"].startswith("FAIL")
    assert lines["on duty"].startswith("FAIL") and "/workspace/notifications" in lines["on duty"]
    assert lines["database"].startswith("OK") and lines["keyring"].startswith("OK")
    assert "Traceback" not in out.stdout + out.stderr


def test_a_missing_migration_fails_with_the_fix(ready: dict[str, str]) -> None:
    # the schema of the previous release: the newest migration not applied
    command.downgrade(alembic_config(_url(ready)), "-1")
    previous = asyncio.run(_revision(_url(ready)))
    assert previous is not None and previous != head_revision()
    out = portal(ready, "check")
    assert out.returncode == 1
    line = _lines(out.stdout)["database schema"]
    assert line == (
        f"FAIL database schema: at revision {previous}, this version needs {head_revision()}: "
        "run `portal migrate`"
    )
    assert portal(ready, "migrate").returncode == 0
    # the downgrade may have dropped what the newest migration holds (confirmed calendar
    # years, the saved duty roster): the administrator enters it again
    asyncio.run(_ready_staff_and_calendar(_url(ready)))
    assert portal(ready, "check").returncode == 0


def test_an_unwritable_file_store_fails(ready: dict[str, str]) -> None:
    incoming = Path(ready["PORTAL_DATA_DIR"]) / "files" / "incoming"
    # as root a chmod would not stop the write: put a file where the folder must be
    if incoming.exists():
        shutil.rmtree(incoming)
    incoming.write_bytes(b"")
    out = portal(ready, "check")
    assert out.returncode == 1
    line = _lines(out.stdout)["file store"]
    assert line.startswith("FAIL file store: cannot write in ")
    assert "writable for the portal's user" in line
    # every other check still ran and passed
    others = {k: v for k, v in _lines(out.stdout).items() if k != "file store"}
    assert all(v.startswith("OK") for v in others.values()), out.stdout


def test_an_unreachable_redis_fails_without_showing_the_password(
    ready: dict[str, str],
) -> None:
    out = portal({**ready, "REDIS_URL": "redis://:s3cret-pw@127.0.0.1:1/0"}, "check")
    assert out.returncode == 1
    line = _lines(out.stdout)["redis"]
    assert line.startswith("FAIL redis: cannot reach 127.0.0.1:1 (")
    assert "check REDIS_URL" in line
    assert "s3cret-pw" not in out.stdout + out.stderr


def test_a_working_mail_server_passes(ready: dict[str, str]) -> None:
    from aiosmtpd.controller import Controller

    from tests.portal.scaleout_fixtures import free_port

    class Sink:
        async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
            return "250 OK"

    port = free_port()
    controller = Controller(Sink(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        smtp = {"PORTAL_SMTP_HOST": "127.0.0.1", "PORTAL_SMTP_PORT": str(port)}
        out = portal({**ready, **smtp, "PORTAL_SMTP_STARTTLS": "0"}, "check")
    finally:
        controller.stop()
    assert out.returncode == 0, out.stdout
    line = _lines(out.stdout)["mail server"]
    assert line == f"OK   mail server: 127.0.0.1:{port} accepts a connection"


def test_an_unreachable_mail_server_fails(ready: dict[str, str]) -> None:
    out = portal({**ready, "PORTAL_SMTP_HOST": "127.0.0.1", "PORTAL_SMTP_PORT": "1"}, "check")
    assert out.returncode == 1
    assert _lines(out.stdout)["mail server"].startswith("FAIL mail server: SMTP 127.0.0.1:1")


def test_invalid_settings_fail_first(env: dict[str, str]) -> None:  # noqa: F811
    out = portal({**env, "PORTAL_PORT": "not-a-port"}, "check")
    assert out.returncode == 1
    assert out.stdout.startswith("FAIL settings: ")
    assert "PORTAL_PORT" in out.stdout


def test_a_missing_database_and_keyring_fail(env: dict[str, str]) -> None:  # noqa: F811
    out = portal(env, "check")  # never initialised
    assert out.returncode == 1
    lines = _lines(out.stdout)
    if "sqlite" in env["DATABASE_URL"]:
        assert lines["database"].startswith("FAIL database: no database file")
        assert "portal init" in lines["database"]
        assert lines["database schema"].startswith("FAIL database schema: not checked")
    assert lines["keyring"].startswith("FAIL keyring: ")
    assert "portal init" in lines["keyring"]


def test_retention_progress_on_stderr_when_asked(ready: dict[str, str]) -> None:
    quiet = portal(ready, "retention", "run", "--dry-run")
    assert quiet.returncode == 0 and quiet.stderr == ""
    shown = portal(ready, "retention", "run", "--dry-run", "--progress")
    assert shown.returncode == 0, shown.stderr
    assert "cases due for destruction: 0/0 (100%)" in shown.stderr
    assert "identities due to expire: 0/0 (100%)" in shown.stderr
    assert "retention: would destroy 0 case(s)" in shown.stdout
