"""`portal backup` and `portal restore` (O3): the database and the file store, still encrypted.

A backup is a directory:

    manifest.json      format, schema revision, database kind, every object's SHA-256, and
                       an HMAC-SHA256 over all of it under a key derived from the
                       installation's server key (HKDF, label "backup-manifest/v1")
    portal.db          SQLite: a consistent copy made with the sqlite3 backup API; also the
                       form of a PostgreSQL backup when pg_dump is missing (a logical copy
                       through SQLAlchemy, read in one REPEATABLE READ transaction)
    portal.pgdump      PostgreSQL: `pg_dump --format=custom` (one consistent snapshot)
    files/objects/..   every object of the file store, byte for byte (ciphertext)

The database is copied first, then the files: an evidence row is written only after its
object is committed, so every row in the copy finds its object in the backup (objects written
after the snapshot are harmless extras).

The installation secrets (the keyring: the server key and the seal keys) are NOT in this
backup: `portal backup --secrets DEST2` copies them to a separate place. A database backup on
its own is useless to whoever steals it; keep the two apart (different media, different
custodians) so that one lost copy never gives both.

Restore goes into an empty installation: an empty database (SQLite file absent, or a
PostgreSQL database without tables) and an empty file store, whose secrets are restored first
(`portal restore --secrets`): the manifest's MAC is checked with them before anything is read,
so a manifest altered to match altered files (or a backup from another installation) is
refused.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import os
import shutil
import sqlite3
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio.to_thread
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy.engine import make_url

from crypto.errors import KeyringError
from crypto.keyring import keyring_exists, load_keyring
from portal.app.migrate_data import copy_database, copy_files
from portal.kernel.db.engine import Database
from portal.kernel.db.migrate import current_revision, upgrade_to_head
from portal.kernel.progress import Progress
from portal.kernel.settings import Settings
from portal.kernel.storage import FileStore, LocalFileStore

FORMAT = "portal-backup/2"  # /1 had no MAC: refused
MANIFEST = "manifest.json"
MAC_FIELD = "mac"
_MAC_LABEL = b"whistle-portal/backup-manifest/v1"


class BackupError(Exception):
    pass


@dataclass(frozen=True)
class BackupResult:
    path: Path
    database: str
    objects: int
    bytes: int


def _private_dir(path: Path) -> None:
    if path.exists() and any(path.iterdir()):
        raise BackupError(f"{path} is not empty: back up into a new directory")
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, 0o700)


def _sqlite_path(url: str) -> Path:
    return Path(url.split("///", 1)[1])


def _libpq(url: str) -> tuple[str, dict[str, str]]:
    """A libpq URL without the password (which goes into PGPASSWORD, not argv)."""
    parsed = make_url(url).set(drivername="postgresql")
    env = dict(os.environ)
    if parsed.password:
        env["PGPASSWORD"] = str(parsed.password)
    return parsed.set(password=None).render_as_string(hide_password=False), env


def _sqlite_copy(src: Path, dst: Path) -> None:
    """The sqlite3 online backup API: a consistent copy even while the portal writes."""
    fd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    os.fchmod(fd, 0o600)
    os.close(fd)
    source = sqlite3.connect(f"file:{src}?mode=ro", uri=True)
    target = sqlite3.connect(dst)
    try:
        source.backup(target)
    finally:
        target.close()
        source.close()
    os.chmod(dst, 0o600)


def manifest_key(settings: Settings) -> bytes:
    """The manifest's MAC key: HKDF-SHA256 of the server key with its own label."""
    if not keyring_exists(settings.keyring_dir):
        raise BackupError(
            f"no installation secrets in {settings.keyring_dir}: restore them first "
            "(`portal restore --secrets SECRETS_BACKUP`), the backup is checked with them"
        )
    try:
        keyring = load_keyring(settings.keyring_dir)
    except KeyringError as exc:
        raise BackupError(str(exc)) from exc
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_MAC_LABEL).derive(
        keyring.server_key
    )


def _mac(key: bytes, manifest: dict[str, Any]) -> str:
    body = {k: v for k, v in manifest.items() if k != MAC_FIELD}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hmac.new(key, canonical.encode("ascii"), hashlib.sha256).hexdigest()


def _check_mac(key: bytes, manifest: dict[str, Any]) -> None:
    given = manifest.get(MAC_FIELD)
    if not isinstance(given, str) or not hmac.compare_digest(given, _mac(key, manifest)):
        raise BackupError(
            "the backup manifest fails its authentication check: it was altered, or it "
            "belongs to another installation's secrets; nothing was restored"
        )


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1024 * 1024):
            h.update(chunk)
    return h.hexdigest()


async def backup(
    settings: Settings,
    files: FileStore,
    dest: Path,
    *,
    logical: bool = False,
    progress: Progress | None = None,
) -> BackupResult:
    show = progress or Progress.off()
    key = manifest_key(settings)
    _private_dir(dest)
    db = Database(settings.database_url)
    try:
        revision = await current_revision(db)
    finally:
        await db.dispose()
    if settings.is_sqlite:
        kind, name = "sqlite", "portal.db"
        await anyio.to_thread.run_sync(
            _sqlite_copy, _sqlite_path(settings.database_url), dest / name
        )
    elif not logical and (pg_dump := shutil.which("pg_dump")):
        kind, name = "pg_dump", "portal.pgdump"
        url, env = _libpq(settings.database_url)
        done = await anyio.to_thread.run_sync(
            lambda: subprocess.run(  # noqa: S603 - fixed program, our own arguments
                [
                    pg_dump,
                    "--format=custom",
                    "--no-owner",
                    "--no-privileges",
                    "--file",
                    str(dest / name),
                    url,
                ],
                env=env,
                capture_output=True,
                text=True,
                check=False,
            )
        )
        if done.returncode != 0:
            raise BackupError(f"pg_dump failed: {done.stderr.strip()[:500]}")
        os.chmod(dest / name, 0o600)
    else:
        kind, name = "logical", "portal.db"
        target = f"sqlite+aiosqlite:///{(dest / name).as_posix()}"
        await copy_database(settings.database_url, target)
        os.chmod(dest / name, 0o600)
    show.note(f"database: {kind} copy in {dest / name}")

    out = LocalFileStore(dest / "files")
    out.ensure()
    objects, size = await copy_files(files, out, show)
    show.note(f"files: {objects} objects, {size} bytes (ciphertext)")

    def digests() -> dict[str, str]:
        return {p.name: _sha256_file(p) for p in sorted(out.objects.glob("*/*"))}

    manifest = {
        "format": FORMAT,
        "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "schema": revision,
        "database": kind,
        "database_file": name,
        "database_sha256": await anyio.to_thread.run_sync(_sha256_file, dest / name),
        "objects": await anyio.to_thread.run_sync(digests),
        "secrets_included": False,
    }
    manifest[MAC_FIELD] = _mac(key, manifest)
    fd = os.open(dest / MANIFEST, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as fh:
        fh.write(json.dumps(manifest, indent=1, sort_keys=True))
    os.chmod(dest / MANIFEST, 0o600)
    return BackupResult(path=dest, database=kind, objects=objects, bytes=size)


def read_manifest(src: Path, key: bytes) -> dict[str, Any]:
    """The manifest, once its MAC verifies under ``key`` (see ``manifest_key``)."""
    try:
        manifest = json.loads((src / MANIFEST).read_text())
    except (OSError, ValueError) as exc:
        raise BackupError(f"{src} is not a portal backup (no readable {MANIFEST})") from exc
    if not isinstance(manifest, dict):
        raise BackupError(f"{src} is not a portal backup ({MANIFEST} is not an object)")
    if manifest.get("format") != FORMAT:
        raise BackupError(f"{src}: unknown backup format {manifest.get('format')!r}")
    _check_mac(key, manifest)
    return manifest


def verify_backup(src: Path, key: bytes) -> dict[str, Any]:
    """Check the manifest's MAC, then every checksum in it; returns the manifest."""
    manifest = read_manifest(src, key)
    if _sha256_file(src / manifest["database_file"]) != manifest["database_sha256"]:
        raise BackupError("the database copy does not match its checksum")
    store = LocalFileStore(src / "files")
    for name, digest in manifest["objects"].items():
        path = store.objects / name[:2] / name
        if not path.is_file() or _sha256_file(path) != digest:
            raise BackupError(f"object {name} is missing or damaged")
    return manifest


async def _database_is_empty(url: str) -> bool:
    if url.startswith("sqlite"):
        path = _sqlite_path(url)
        if not path.exists():
            return True
        with sqlite3.connect(path) as conn:
            rows = conn.execute("SELECT count(*) FROM sqlite_master WHERE type='table'").fetchone()
        return int(rows[0]) == 0
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(url, hide_parameters=True)
    try:
        async with engine.connect() as conn:
            count = (
                await conn.execute(
                    text(
                        "SELECT count(*) FROM information_schema.tables "
                        "WHERE table_schema = current_schema()"
                    )
                )
            ).scalar_one()
    finally:
        await engine.dispose()
    return int(count) == 0


async def restore(
    settings: Settings,
    files: FileStore,
    src: Path,
    *,
    progress: Progress | None = None,
) -> BackupResult:
    """Restore a backup into this (empty) installation's database and file store; its
    secrets must be in place already (the manifest is authenticated with them)."""
    show = progress or Progress.off()
    key = manifest_key(settings)
    manifest = await anyio.to_thread.run_sync(verify_backup, src, key)
    show.note(f"backup verified: {len(manifest['objects'])} objects, schema {manifest['schema']}")
    if not await _database_is_empty(settings.database_url):
        raise BackupError("the database is not empty: restore only into a new installation")
    if await files.keys():
        raise BackupError("the file store is not empty: restore only into a new installation")
    db_file = src / manifest["database_file"]
    if manifest["database"] == "pg_dump":
        if settings.is_sqlite:
            raise BackupError("a pg_dump backup restores into PostgreSQL only")
        pg_restore = shutil.which("pg_restore")
        if not pg_restore:
            raise BackupError("pg_restore is not installed")
        url, env = _libpq(settings.database_url)
        done = await anyio.to_thread.run_sync(
            lambda: subprocess.run(  # noqa: S603 - fixed program, our own arguments
                [
                    pg_restore,
                    "--no-owner",
                    "--no-privileges",
                    "--exit-on-error",
                    "--dbname",
                    url,
                    str(db_file),
                ],
                env=env,
                capture_output=True,
                text=True,
                check=False,
            )
        )
        if done.returncode != 0:
            raise BackupError(f"pg_restore failed: {done.stderr.strip()[:500]}")
    elif settings.is_sqlite:
        target = _sqlite_path(settings.database_url)
        target.parent.mkdir(parents=True, exist_ok=True)
        await anyio.to_thread.run_sync(_sqlite_copy, db_file, target)
    else:  # a SQLite copy into PostgreSQL: row by row
        await copy_database(f"sqlite+aiosqlite:///{db_file.as_posix()}", settings.database_url)
    await anyio.to_thread.run_sync(upgrade_to_head, settings.database_url)
    show.note("database: restored")
    ensure = getattr(files, "ensure", None)
    if ensure is not None:
        await anyio.to_thread.run_sync(ensure)
    objects, size = await copy_files(LocalFileStore(src / "files"), files, show)
    show.note(f"files: {objects} objects restored")
    return BackupResult(path=src, database=manifest["database"], objects=objects, bytes=size)


async def secrets_fit_database(settings: Settings, src: Path) -> None:
    """Refuse a secrets backup whose keyring is not the one this installation's (restored)
    database is bound to (C7); nothing to compare while the database is absent or unbound."""
    from crypto.errors import KeyringError
    from crypto.keyring import keyring_fingerprint, load_keyring
    from portal.kernel.binding import recorded_fingerprint

    if settings.is_sqlite and not _sqlite_path(settings.database_url).exists():
        return
    try:
        keyring = load_keyring(src)
    except KeyringError as exc:
        raise BackupError(f"{src} is not a usable secrets backup: {exc}") from exc
    db = Database(settings.database_url)
    try:
        recorded = await recorded_fingerprint(db)
    finally:
        await db.dispose()
    if recorded is not None and recorded != keyring_fingerprint(keyring):
        raise BackupError(
            f"the secrets in {src} do not belong to this database: restore the secrets backup "
            "made from the same installation as the database backup"
        )


# --- installation secrets, kept apart -----------------------------------------------------------


def backup_secrets(settings: Settings, dest: Path) -> int:
    """Copy the keyring to ``dest`` (a separate place); returns the number of files."""
    source = settings.keyring_dir
    if not source.is_dir():
        raise BackupError(f"no installation secrets in {source} (run `portal init` first)")
    _private_dir(dest)
    count = 0
    for path in sorted(source.rglob("*")):
        target = dest / path.relative_to(source)
        if path.is_dir():
            target.mkdir(mode=0o700, exist_ok=True)
            continue
        shutil.copyfile(path, target)
        os.chmod(target, 0o600)
        count += 1
    return count


def restore_secrets(settings: Settings, src: Path) -> int:
    """Put a secrets backup in place; refuses to overwrite existing secrets."""
    target = settings.keyring_dir
    if target.exists() and any(target.iterdir()):
        raise BackupError(f"{target} already holds installation secrets: not overwritten")
    if not src.is_dir() or not any(src.iterdir()):
        raise BackupError(f"{src} holds no secrets backup")
    target.mkdir(parents=True, exist_ok=True)
    os.chmod(target.parent, 0o700)
    os.chmod(target, 0o700)
    count = 0
    for path in sorted(src.rglob("*")):
        out = target / path.relative_to(src)
        if path.is_dir():
            out.mkdir(mode=0o700, exist_ok=True)
            continue
        shutil.copyfile(path, out)
        os.chmod(out, 0o600)
        count += 1
    return count
