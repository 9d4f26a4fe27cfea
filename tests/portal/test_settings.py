"""Settings.from_env: bad values are refused with the variable's name."""

from __future__ import annotations

import pytest

from portal.kernel.settings import Settings, SettingsError

BASE = {"PORTAL_MODE": "test", "PORTAL_ARGON2_PROFILE": "test", "PORTAL_DATA_DIR": "/tmp/x"}


def test_defaults_are_valid() -> None:
    settings = Settings.from_env(dict(BASE))
    # the embedded database keeps its file name across releases: a new name would start an
    # installation on an empty database
    assert settings.database_url == "sqlite+aiosqlite:////tmp/x/portal.db"
    assert settings.database_url.startswith("sqlite+aiosqlite:///")
    assert not settings.secure_cookies
    prod = Settings.from_env({"PORTAL_DATA_DIR": "/tmp/x"})
    assert prod.mode == "production" and prod.secure_cookies and not prod.debug


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("PORTAL_MODE", "staging"),
        ("PORTAL_DEBUG", "maybe"),
        ("PORTAL_PORT", "http"),
        ("PORTAL_PORT", "70000"),
        ("PORTAL_SERVE", "everything"),
        ("PORTAL_MAX_FILE_MB", "0"),
        ("PORTAL_MAX_FILES", "-1"),
        ("PORTAL_ARGON2_PROFILE", "fast"),
        ("PORTAL_DEFAULT_LOCALE", "fr"),
        ("PORTAL_STAFF_IDLE_MINUTES", "0"),
        ("PORTAL_SMTP_PORT", "abc"),
        ("PORTAL_SMTP_STARTTLS", "perhaps"),
        ("DATABASE_URL", "mysql://x"),
        ("REDIS_URL", "http://redis"),
        ("PORTAL_ONION_ADDRESS", "example.com"),
    ],
)
def test_bad_values_name_the_variable(name: str, value: str) -> None:
    with pytest.raises(SettingsError) as excinfo:
        Settings.from_env({**BASE, name: value})
    assert name in str(excinfo.value)


def test_secret_file_that_cannot_be_read(tmp_path) -> None:
    with pytest.raises(SettingsError, match="PORTAL_SMTP_PASSWORD_FILE"):
        Settings.from_env({**BASE, "PORTAL_SMTP_PASSWORD_FILE": str(tmp_path / "missing")})
    secret = tmp_path / "pw"
    secret.write_text("s3cret\n", encoding="utf-8")
    settings = Settings.from_env({**BASE, "PORTAL_SMTP_PASSWORD_FILE": str(secret)})
    assert settings.smtp_password == "s3cret"


def test_debug_refused_in_production() -> None:
    with pytest.raises(SettingsError, match="PORTAL_DEBUG"):
        Settings.from_env({"PORTAL_DEBUG": "1"})
    assert Settings.from_env({"PORTAL_MODE": "development", "PORTAL_DEBUG": "1"}).debug


def test_redis_without_password_refused_in_production() -> None:
    with pytest.raises(SettingsError, match="REDIS_URL"):
        Settings.from_env({"REDIS_URL": "redis://redis:6379/0"})
    with pytest.raises(SettingsError, match="REDIS_URL"):
        Settings.from_env({"REDIS_URL": "redis://user:@redis:6379/0"})
    ok = Settings.from_env({"REDIS_URL": "redis://:pw@redis:6379/0"})
    assert ok.redis_url == "redis://:pw@redis:6379/0"
    assert Settings.from_env({**BASE, "REDIS_URL": "redis://redis:6379/0"}).redis_url


def test_test_argon2_profile_refused_in_production() -> None:
    with pytest.raises(SettingsError, match="PORTAL_ARGON2_PROFILE"):
        Settings.from_env({"PORTAL_ARGON2_PROFILE": "test"})


def test_with_overrides_validates() -> None:
    settings = Settings.from_env(dict(BASE))
    with pytest.raises(SettingsError):
        settings.with_overrides(mode="production", debug=True)
