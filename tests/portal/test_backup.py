# ruff: noqa: F401, F811 - pytest fixtures imported from scaleout_fixtures
"""`portal backup` / `portal restore` / `portal migrate-data` (O3), run as real processes: each
backup is verified by restoring it into an empty data directory and reading the case with its
receipt code."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from portal.kernel.settings import Settings
from tests.portal.scaleout_fixtures import (
    EVIDENCE,
    MESSAGE_TEXT,
    REPORT_TEXT,
    make_installation,
    moto_endpoint,
    pg_databases,
    read_case,
    s3_bucket,
)

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def _settings(data: Path, url: str | None = None, **kw: Any) -> Settings:
    s = Settings(
        mode="test",
        argon2_profile="test",
        data_dir=data,
        database_url=url or f"sqlite+aiosqlite:///{(data / 'portal.db').as_posix()}",
        **kw,
    )
    s.validate()
    return s


def _env(settings: Settings) -> dict[str, str]:
    e = {k: v for k, v in os.environ.items() if not k.startswith(("PORTAL_", "DATABASE_URL"))}
    e.update(
        PORTAL_DATA_DIR=str(settings.data_dir),
        PORTAL_MODE="test",
        PORTAL_ARGON2_PROFILE="test",
        DATABASE_URL=settings.database_url,
    )
    if settings.s3_bucket:
        e.update(
            PORTAL_S3_BUCKET=settings.s3_bucket,
            PORTAL_S3_ENDPOINT=settings.s3_endpoint or "",
            PORTAL_S3_ACCESS_KEY=settings.s3_access_key or "",
            PORTAL_S3_SECRET_KEY=settings.s3_secret_key or "",
        )
    return e


def portal(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", "portal.app.cli", *args],
        env=_env(settings),
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    return done


def _no_plaintext_in(tree: Path) -> None:
    needle_text = REPORT_TEXT.encode()
    for path in tree.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert needle_text not in data, path
            assert MESSAGE_TEXT.encode() not in data, path
            assert EVIDENCE[:40] not in data, path


def _assert_readable(settings: Settings, code: str) -> None:
    text, files = read_case(settings, code)
    assert MESSAGE_TEXT in text
    assert files == [EVIDENCE]


def test_sqlite_backup_restores_into_an_empty_data_dir(tmp_path: Path) -> None:
    source = _settings(tmp_path / "live")
    code = make_installation(source)
    dest, secrets_dest = tmp_path / "backup", tmp_path / "secrets-backup"

    out = portal(source, "backup", str(dest))
    assert out.returncode == 0, out.stderr
    assert "the secrets are not in it" in out.stdout
    manifest = json.loads((dest / "manifest.json").read_text())
    assert manifest["database"] == "sqlite" and manifest["secrets_included"] is False
    assert len(manifest["objects"]) >= 1
    assert not list(dest.rglob("*.key")) and not (dest / "secrets").exists()
    _no_plaintext_in(dest)
    assert (dest.stat().st_mode & 0o077) == 0

    out = portal(source, "backup", "--secrets", str(secrets_dest))
    assert out.returncode == 0, out.stderr
    assert sorted(p.name for p in secrets_dest.iterdir()) == sorted(
        p.name for p in source.keyring_dir.iterdir()
    )
    # a second backup into the same place is refused
    assert portal(source, "backup", str(dest)).returncode == 2

    fresh = _settings(tmp_path / "restored")
    # the manifest is authenticated with the secrets: they come back first
    out = portal(fresh, "restore", str(dest))
    assert out.returncode == 2
    assert "restore --secrets" in out.stderr and "Traceback" not in out.stderr
    out = portal(fresh, "restore", "--secrets", str(secrets_dest))
    assert out.returncode == 0, out.stderr
    assert "portal restore BACKUP" in out.stdout
    out = portal(fresh, "restore", str(dest))
    assert out.returncode == 0, out.stderr
    _assert_readable(fresh, code)
    # restoring over a live installation is refused
    again = portal(fresh, "restore", str(dest))
    assert again.returncode == 2 and "not empty" in again.stderr


def test_damaged_backup_is_refused(tmp_path: Path) -> None:
    source = _settings(tmp_path / "live")
    make_installation(source)
    dest = tmp_path / "backup"
    assert portal(source, "backup", str(dest)).returncode == 0
    assert portal(source, "backup", "--secrets", str(tmp_path / "sec")).returncode == 0
    victim = next(p for p in (dest / "files" / "objects").rglob("*") if p.is_file())
    data = victim.read_bytes()
    victim.write_bytes(data[:-1] + bytes([data[-1] ^ 0xFF]))  # always a change
    fresh = _settings(tmp_path / "restored")
    assert portal(fresh, "restore", "--secrets", str(tmp_path / "sec")).returncode == 0
    out = portal(fresh, "restore", str(dest))
    assert out.returncode == 2 and "damaged" in out.stderr


@pytest.mark.parametrize("logical", [False, True], ids=["pg_dump", "logical"])
def test_postgresql_backup_restores_into_a_new_database(
    tmp_path: Path, pg_databases: Callable[[], str], logical: bool
) -> None:
    source = _settings(tmp_path / "live", pg_databases())
    code = make_installation(source)
    dest = tmp_path / "backup"
    args = ["backup", str(dest), *(["--logical"] if logical else [])]
    out = portal(source, *args)
    assert out.returncode == 0, out.stderr
    manifest = json.loads((dest / "manifest.json").read_text())
    assert manifest["database"] == ("logical" if logical else "pg_dump")
    _no_plaintext_in(dest)
    assert portal(source, "backup", "--secrets", str(tmp_path / "sec")).returncode == 0

    fresh = _settings(tmp_path / "restored", pg_databases())
    assert portal(fresh, "restore", "--secrets", str(tmp_path / "sec")).returncode == 0
    out = portal(fresh, "restore", str(dest))
    assert out.returncode == 0, out.stderr
    _assert_readable(fresh, code)


def test_migrate_data_sqlite_and_local_files_to_postgresql_and_s3(
    tmp_path: Path, pg_databases: Callable[[], str], s3_bucket: dict[str, Any]
) -> None:
    source = _settings(tmp_path / "live", **s3_bucket)  # S3 settings name the target bucket
    local = _settings(tmp_path / "live")
    code = make_installation(local)
    local_objects = {p.name: p.read_bytes() for p in local.files_dir.rglob("*") if p.is_file()}
    target_db = pg_databases()

    out = portal(source, "migrate-data", "--to-database", target_db, "--to-s3", "--progress")
    assert out.returncode == 0, out.stderr
    assert "rows in" in out.stdout and f"files: {len(local_objects)} objects" in out.stdout
    n = len(local_objects)
    assert f"files: {n}/{n} (100%)" in out.stderr and "tables: 0/" in out.stderr

    from portal.kernel.s3store import S3Config, make_client

    raw = make_client(
        S3Config(
            bucket=s3_bucket["s3_bucket"],
            endpoint=s3_bucket["s3_endpoint"],
            access_key="test",
            secret_key="test",
        )
    )
    for key, data in local_objects.items():  # byte for byte: still the same ciphertext
        body = raw.get_object(Bucket=s3_bucket["s3_bucket"], Key=f"objects/{key}")["Body"]
        assert body.read() == data

    moved = _settings(tmp_path / "live", target_db, **s3_bucket)
    _assert_readable(moved, code)
    # the destination is no longer empty: a second run is refused
    again = portal(source, "migrate-data", "--to-database", target_db)
    assert again.returncode == 2 and "not empty" in again.stderr


def _tree_modes(tree: Path) -> dict[str, int]:
    return {str(p.relative_to(tree)): p.stat().st_mode & 0o777 for p in tree.rglob("*")}


def test_tampered_manifest_is_refused_with_one_line(tmp_path: Path) -> None:
    """Issue 14: the manifest carries an HMAC under a key derived from the keyring, so files
    altered together with their checksums, or a backup from another installation, are
    refused before anything is restored."""
    source = _settings(tmp_path / "live")
    make_installation(source)
    dest, sec = tmp_path / "backup", tmp_path / "sec"
    assert portal(source, "backup", str(dest)).returncode == 0
    assert portal(source, "backup", "--secrets", str(sec)).returncode == 0
    manifest = json.loads((dest / "manifest.json").read_text())
    assert len(manifest["mac"]) == 64

    # every file of the backup is private (whatever the umask of whoever reads it later)
    for name, mode in _tree_modes(dest).items():
        assert mode == (0o700 if (dest / name).is_dir() else 0o600), (name, oct(mode))

    # an object replaced and its checksum updated to match: consistent, but not authentic
    victim = next(p for p in (dest / "files" / "objects").rglob("*") if p.is_file())
    forged = b"\0" * victim.stat().st_size
    victim.write_bytes(forged)
    manifest["objects"][victim.name] = hashlib.sha256(forged).hexdigest()
    (dest / "manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=True))

    fresh = _settings(tmp_path / "restored")
    assert portal(fresh, "restore", "--secrets", str(sec)).returncode == 0
    out = portal(fresh, "restore", str(dest))
    assert out.returncode == 2
    assert out.stderr.count("\n") == 1 and "Traceback" not in out.stderr
    assert "manifest fails its authentication check" in out.stderr
    assert not (fresh.data_dir / "portal.db").exists()  # nothing was restored
    if fresh.files_dir.exists():
        assert not [p for p in fresh.files_dir.rglob("*") if p.is_file()]

    # an authentic backup restored with another installation's secrets: refused the same way
    other = _settings(tmp_path / "other")
    make_installation(other)
    good = tmp_path / "good-backup"
    assert portal(source, "backup", str(good)).returncode == 0
    stranger = _settings(tmp_path / "stranger")
    assert portal(other, "backup", "--secrets", str(tmp_path / "other-sec")).returncode == 0
    assert portal(stranger, "restore", "--secrets", str(tmp_path / "other-sec")).returncode == 0
    out = portal(stranger, "restore", str(good))
    assert out.returncode == 2 and "authentication check" in out.stderr


def test_progress_goes_to_stderr_only_when_asked(tmp_path: Path) -> None:
    source = _settings(tmp_path / "live")
    make_installation(source)
    quiet = portal(source, "backup", str(tmp_path / "b1"))
    assert quiet.returncode == 0 and quiet.stderr == ""  # not a terminal: no progress
    shown = portal(source, "backup", "--progress", str(tmp_path / "b2"))
    assert shown.returncode == 0, shown.stderr
    objects = len(json.loads((tmp_path / "b2" / "manifest.json").read_text())["objects"])
    assert f"files: {objects}/{objects} (100%)" in shown.stderr
    assert "files: 0/" in shown.stderr
    assert "backup: done" in shown.stdout and "backup: done" not in shown.stderr
    fresh = _settings(tmp_path / "restored")
    assert portal(source, "backup", "--secrets", str(tmp_path / "sec")).returncode == 0
    assert portal(fresh, "restore", "--secrets", str(tmp_path / "sec")).returncode == 0
    out = portal(fresh, "restore", "--progress", str(tmp_path / "b2"))
    assert out.returncode == 0, out.stderr
    assert "backup verified" in out.stderr and f"files: {objects}/{objects}" in out.stderr


def test_progress_is_shown_on_a_terminal(tmp_path: Path) -> None:
    source = _settings(tmp_path / "live")
    make_installation(source)
    master, terminal = os.openpty()
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "portal.app.cli", "backup", str(tmp_path / "b")],
            env=_env(source),
            stdout=subprocess.PIPE,
            stderr=terminal,
            text=True,
        )
        os.close(terminal)
        stdout, _ = proc.communicate(timeout=180)
        shown = b""
        while True:
            try:
                chunk = os.read(master, 4096)
            except OSError:  # EIO: the terminal's other end is closed
                break
            if not chunk:
                break
            shown += chunk
    finally:
        os.close(master)
    assert proc.returncode == 0
    objects = len(json.loads((tmp_path / "b" / "manifest.json").read_text())["objects"])
    # a count rewrites its own line on a terminal
    assert f"\rfiles: {objects}/{objects} (100%)".encode() in shown
    assert b"database: sqlite copy" in shown
    assert "backup: done" in stdout
