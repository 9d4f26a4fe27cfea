"""The `portal` command line, run as a real process against a temporary data directory."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from portal.kernel.settings import Settings
from tests.conftest import _drop_everything, _run


def portal(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "portal.app.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def env(settings: Settings, tmp_path: Path) -> dict[str, str]:
    if not settings.is_sqlite:
        _run(_drop_everything(settings.database_url))
    data = tmp_path / "data"
    e = {k: v for k, v in os.environ.items() if not k.startswith(("PORTAL_", "DATABASE_URL"))}
    e.update(
        PORTAL_DATA_DIR=str(data),
        PORTAL_MODE="test",
        PORTAL_ARGON2_PROFILE="test",
        DATABASE_URL=settings.database_url
        if not settings.is_sqlite
        else f"sqlite+aiosqlite:///{data / 'portal.db'}",
    )
    return e


def test_help_on_every_command(env: dict[str, str]) -> None:
    for args in (
        ["--help"],
        ["init", "--help"],
        ["serve", "--help"],
        ["migrate", "--help"],
        ["user", "--help"],
        ["user", "add", "--help"],
        ["user", "list", "--help"],
        ["user", "disable", "--help"],
    ):
        out = portal(env, *args)
        assert out.returncode == 0, (args, out.stderr)
        assert "usage:" in out.stdout


def test_init_twice_is_safe_and_keeps_secrets(env: dict[str, str]) -> None:
    first = portal(env, "init")
    assert first.returncode == 0, first.stderr
    assert "One-time password" in first.stdout
    secrets_dir = Path(env["PORTAL_DATA_DIR"]) / "secrets"
    before = {p.name: p.read_bytes() for p in secrets_dir.iterdir()}
    for p in secrets_dir.iterdir():
        assert stat.S_IMODE(p.stat().st_mode) == 0o600
    second = portal(env, "init")
    assert second.returncode == 0, second.stderr
    assert "One-time password" not in second.stdout
    assert "exists already" in second.stdout
    after = {p.name: p.read_bytes() for p in secrets_dir.iterdir()}
    assert before == after


def test_user_add_validates_roles_and_lists(env: dict[str, str]) -> None:
    assert portal(env, "init").returncode == 0
    bad = portal(env, "user", "add", "alice", "--roles", "investigator,superuser")
    assert bad.returncode == 2
    assert "unknown role 'superuser'" in bad.stderr
    liaison = portal(env, "user", "add", "bob", "--roles", "department_liaison")
    assert liaison.returncode == 2
    assert "department" in liaison.stderr
    ok = portal(env, "user", "add", "alice", "--roles", "investigator,team_lead", "--name", "Alice")
    assert ok.returncode == 0, ok.stderr
    assert "one-time password" in ok.stdout
    dup = portal(env, "user", "add", "alice", "--roles", "investigator")
    assert dup.returncode == 2
    listing = portal(env, "user", "list")
    assert "alice" in listing.stdout and "investigator,team_lead" in listing.stdout
    assert portal(env, "user", "disable", "alice").returncode == 0
    assert "disabled" in portal(env, "user", "list").stdout


def test_serve_without_init_gives_a_clear_error(env: dict[str, str]) -> None:
    out = portal(env, "serve")
    assert out.returncode == 2
    assert "portal init" in out.stderr
    assert "Traceback" not in out.stderr


def test_bad_setting_is_a_clear_error(env: dict[str, str]) -> None:
    out = portal({**env, "PORTAL_PORT": "eighty"}, "init")
    assert out.returncode == 2
    assert "PORTAL_PORT" in out.stderr


def test_receipts_survive_a_change_of_the_shipped_argon2_defaults(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`portal init` pins the receipt parameters in the keyring; a later release whose
    defaults differ still finds every receipt (lookup tokens depend on the parameters)."""
    import dataclasses

    from crypto.keyring import load_keyring
    from crypto.params import TEST_ARGON2
    from crypto.receipts import derive_receipt_secrets
    from portal.kernel import services as services_module
    from portal.kernel.settings import Settings as S

    out = portal(env, "init")
    assert out.returncode == 0, out.stderr
    assert "receipt codes: Argon2id m=8192 KiB t=1 p=1 (pinned in the keyring)" in out.stdout
    settings = S.from_env(env)
    keyring = load_keyring(settings.keyring_dir)
    code = "0" * 27 + "0"
    before = derive_receipt_secrets(code, keyring.pepper, TEST_ARGON2).lookup_token
    # the next release ships cheaper test parameters: the installation keeps its own
    changed = dataclasses.replace(TEST_ARGON2, memory_kib=16)
    monkeypatch.setattr(services_module, "TEST_ARGON2", changed)
    assert services_module.argon2_params(settings) == changed
    pinned = services_module.receipt_params(settings, keyring)
    assert pinned == TEST_ARGON2
    assert derive_receipt_secrets(code, keyring.pepper, pinned).lookup_token == before


def test_production_refuses_receipt_params_pinned_in_test_mode(env: dict[str, str]) -> None:
    assert portal(env, "init").returncode == 0
    out = portal(
        {**env, "PORTAL_MODE": "production", "PORTAL_ARGON2_PROFILE": "production"}, "serve"
    )
    assert out.returncode != 0
    assert "below the production floor" in out.stderr + out.stdout
    assert "Traceback" not in out.stderr


def test_user_reset_2fa(env: dict[str, str]) -> None:
    assert portal(env, "init").returncode == 0
    assert portal(env, "user", "add", "lin", "--roles", "investigator").returncode == 0
    out = portal(env, "user", "reset-2fa", "lin")
    assert out.returncode == 0, out.stderr
    assert "the next sign-in (password first) sets up a new one" in out.stdout
    missing = portal(env, "user", "reset-2fa", "nobody")
    assert missing.returncode != 0 and "no user 'nobody'" in missing.stderr
    assert "Traceback" not in missing.stderr


def test_init_with_the_guomi_suite(env: dict[str, str]) -> None:
    """C6: the suite is chosen at installation and kept in the keyring."""
    from crypto.suites import Suite, SuiteUnavailableError, self_test

    try:
        self_test(Suite.SM4GCM)
    except SuiteUnavailableError:
        pytest.skip("this cryptography build has no SM4")
    out = portal(env, "init", "--suite", "sm4gcm")
    assert out.returncode == 0, out.stderr
    suite_file = Path(env["PORTAL_DATA_DIR"]) / "secrets" / "suite"
    assert suite_file.read_text() == "sm4gcm\n"
    again = portal(env, "init", "--suite", "aes256gcm")  # never changes an installation's suite
    assert again.returncode == 0 and suite_file.read_text() == "sm4gcm\n"
    bad = portal(env, "init", "--suite", "rot13")
    assert bad.returncode != 0 and "Traceback" not in bad.stderr


def test_only_the_owner_appoints_an_independent_reviewer_and_it_is_audited(
    env: dict[str, str],
) -> None:
    """Issue 18: `portal user add --roles independent_reviewer`, `appoint-reviewer` and
    `revoke-reviewer` are the only ways to the role; each is an audit entry with no acting
    user; an intake officer cannot be made one."""
    from sqlalchemy import select
    from sqlalchemy.ext.asyncio import create_async_engine

    from portal.kernel.db.models import AuditEntry, User

    assert portal(env, "init").returncode == 0
    added = portal(env, "user", "add", "board", "--roles", "independent_reviewer")
    assert added.returncode == 0, added.stderr
    assert portal(env, "user", "add", "lin", "--roles", "investigator").returncode == 0
    assert portal(env, "user", "add", "io", "--roles", "intake_officer").returncode == 0
    up = portal(env, "user", "appoint-reviewer", "lin")
    assert up.returncode == 0 and "investigator,independent_reviewer" in up.stdout, up.stderr
    refused = portal(env, "user", "appoint-reviewer", "io")
    assert refused.returncode != 0 and "cannot also be an intake officer" in refused.stderr
    assert "Traceback" not in refused.stderr
    down = portal(env, "user", "revoke-reviewer", "lin")
    assert down.returncode == 0, down.stderr

    async def facts() -> tuple[dict[str, str], list[tuple[str, str | None]]]:
        engine = create_async_engine(env["DATABASE_URL"])
        try:
            async with engine.connect() as c:
                rows = await c.execute(select(User.username, User.roles))
                users = {str(u): str(r) for u, r in rows}
                audited = [
                    (a, actor)
                    for a, actor in await c.execute(
                        select(AuditEntry.action, AuditEntry.actor_user_id)
                        .where(AuditEntry.action.like("user.%_independent"))
                        .order_by(AuditEntry.id)
                    )
                ]
                return users, audited
        finally:
            await engine.dispose()

    import asyncio

    users, audited = asyncio.run(facts())
    assert users["board"] == "independent_reviewer" and users["lin"] == "investigator"
    assert users["io"] == "intake_officer"
    assert audited == [
        ("user.appoint_independent", None),
        ("user.appoint_independent", None),
        ("user.revoke_independent", None),
    ]
