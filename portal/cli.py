"""The `portal` command line: init, serve, migrate, user add/list/disable."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from crypto.errors import CryptoError
from crypto.keyring import create_keyring, keyring_exists, pin_receipt_params
from crypto.suites import self_test, suite_by_name
from investigator.roles import ROLES, RoleError
from investigator.staff import (
    StaffError,
    add_user,
    count_users,
    list_users,
    reset_two_step_by_name,
    set_disabled,
)
from portal.db import runlock
from portal.db.engine import Database
from portal.db.migrate import upgrade_to_head, upgrade_unlocked
from portal.services import argon2_params
from portal.settings import Settings, SettingsError


class CliError(Exception):
    pass


def _settings() -> Settings:
    try:
        return Settings.from_env()
    except SettingsError as exc:
        raise CliError(str(exc)) from exc


def _ensure_data_dirs(settings: Settings) -> None:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(settings.data_dir, 0o700)
    settings.files_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(settings.files_dir, 0o700)


def _waiting(what: str) -> Callable[[], None]:
    def say() -> None:
        print(f"{what}: another instance is migrating the database; waiting for it", flush=True)

    return say


def cmd_init(args: argparse.Namespace) -> int:
    """Idempotent: creates what is missing, never overwrites secrets. The whole of it holds the
    migrate lock, so instances started together create one keyring, schema and administrator."""
    settings = _settings()
    _ensure_data_dirs(settings)

    async def init() -> None:
        async with runlock.hold(
            settings.database_url, "migrate", wait=True, on_wait=_waiting("init")
        ):
            _init_secrets(settings, args.suite)
            upgrade = await asyncio.to_thread(upgrade_unlocked, settings.database_url)
            print(upgrade.line())
            await _first_admin(settings, args.admin)

    asyncio.run(init())
    return 0


def _init_secrets(settings: Settings, suite_name: str) -> None:
    if keyring_exists(settings.keyring_dir):
        print(f"installation secrets: kept ({settings.keyring_dir})")
    else:
        suite = suite_by_name(suite_name)
        self_test(suite)
        create_keyring(settings.keyring_dir, suite)
        print(f"installation secrets: created in {settings.keyring_dir} (back them up apart)")
    pinned = pin_receipt_params(settings.keyring_dir, argon2_params(settings))
    print(
        f"receipt codes: Argon2id m={pinned.memory_kib} KiB t={pinned.iterations} "
        f"p={pinned.lanes} (pinned in the keyring)"
    )


async def _first_admin(settings: Settings, username: str) -> None:
    db = Database(settings.database_url)
    try:
        if await count_users(db) > 0:
            print("first administrator: exists already")
            return
        new = await add_user(
            db,
            argon2_params(settings),
            username=username,
            display_name="Administrator",
            roles=["administrator"],
        )
        print()
        print("=" * 64)
        print(f"  First administrator: {new.user.username}")
        print(f"  One-time password:   {new.one_time_password}")
        print("  Shown once. Sign in at /workspace and choose a new password.")
        print("=" * 64)
        print()
    finally:
        await db.dispose()


def cmd_migrate(args: argparse.Namespace) -> int:
    settings = _settings()
    print(upgrade_to_head(settings.database_url, on_wait=_waiting("migrate")).line())
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from portal.app import create_app

    settings = _settings()
    try:
        app = create_app(settings)
    except CryptoError as exc:
        raise CliError(f"{exc} (run `portal init` first)") from exc
    print(f"serving on http://{settings.host}:{settings.port}", flush=True)
    uvicorn.run(app, **serve_options(settings))
    return 0


# Connection limits for `portal serve`. Slow clients are the proxy's job (nginx's
# client_header_timeout / client_body_timeout, deploy/nginx/portal.conf.template): uvicorn
# has no header or body read timeout. It still closes idle keep-alive connections after 5 s,
# and bounds an unfinished request head when it runs the h11 parser.
KEEP_ALIVE_S = 5
MAX_INCOMPLETE_EVENT_BYTES = 16 * 1024
GRACEFUL_SHUTDOWN_S = 30


def serve_options(settings: Settings) -> dict[str, Any]:
    """uvicorn's options: no server/date header, no access log; X-Forwarded-* believed only
    from PORTAL_TRUSTED_PROXIES."""
    trusted = list(settings.trusted_proxies)
    return {
        "host": settings.host,
        "port": settings.port,
        "server_header": False,
        "date_header": False,
        "access_log": False,
        "proxy_headers": bool(trusted),
        "forwarded_allow_ips": trusted or None,
        "timeout_keep_alive": KEEP_ALIVE_S,
        "h11_max_incomplete_event_size": MAX_INCOMPLETE_EVENT_BYTES,
        "timeout_graceful_shutdown": GRACEFUL_SHUTDOWN_S,
        "log_config": None,
    }


def cmd_user_add(args: argparse.Namespace) -> int:
    settings = _settings()
    db = Database(settings.database_url)

    async def run() -> None:
        try:
            new = await add_user(
                db,
                argon2_params(settings),
                username=args.username,
                display_name=args.name or args.username,
                roles=args.roles,
                email=args.email,
                department=args.department,
            )
        finally:
            await db.dispose()
        print(f"user {new.user.username} created with roles {new.user.roles}")
        print(f"one-time password (shown once): {new.one_time_password}")

    asyncio.run(run())
    return 0


def cmd_user_list(args: argparse.Namespace) -> int:
    settings = _settings()
    db = Database(settings.database_url)

    async def run() -> None:
        try:
            users = await list_users(db)
        finally:
            await db.dispose()
        print(f"{'user':<24} {'status':<9} roles")
        for u in users:
            status = "disabled" if u.disabled else "active"
            print(f"{u.username:<24} {status:<9} {u.roles}")

    asyncio.run(run())
    return 0


def cmd_user_disable(args: argparse.Namespace) -> int:
    settings = _settings()
    db = Database(settings.database_url)

    async def run() -> None:
        try:
            user = await set_disabled(db, args.username, True)
        finally:
            await db.dispose()
        print(f"user {user.username} disabled")

    asyncio.run(run())
    return 0


def cmd_user_reset_two_step(args: argparse.Namespace) -> int:
    settings = _settings()
    db = Database(settings.database_url)

    async def run() -> None:
        try:
            user = await reset_two_step_by_name(db, args.username)
        finally:
            await db.dispose()
        print(
            f"user {user.username}: authenticator forgotten; the next sign-in (password first) "
            "sets up a new one"
        )

    asyncio.run(run())
    return 0


def cmd_audit_verify(args: argparse.Namespace) -> int:
    """Walk the audit hash chain (A5); exit 1 when it is broken."""
    from investigator.audit import head, verify

    settings = _settings()
    db = Database(settings.database_url)
    anchor: tuple[int, str] | None = None
    if args.expect_head:
        entry_id, _, digest = args.expect_head.partition(":")
        if not entry_id.isdigit() or len(digest) != 64:
            raise CliError("--expect-head takes ID:HASH as printed by an earlier verify")
        anchor = (int(entry_id), digest.lower())

    async def run() -> int:
        try:
            result = await verify(db, expect_head=anchor)
            newest = await head(db)
        finally:
            await db.dispose()
        if result.ok:
            print(f"audit log: intact, {result.checked} entries checked")
            if newest is not None:
                print(f"head (keep a copy elsewhere): {newest[0]}:{newest[1]}")
            return 0
        where = "" if result.first_broken_id is None else f" at entry {result.first_broken_id}"
        print(f"audit log: BROKEN{where}: {result.reason} ({result.checked} entries fine before)")
        return 1

    return asyncio.run(run())


def cmd_retention_run(args: argparse.Namespace) -> int:
    """The daily retention job (W13, C5): destroy what is due and approved, expire identities."""
    from investigator.retention import run as retention_run
    from portal.services import build_services

    settings = _settings()

    async def run() -> int:
        try:
            async with runlock.hold(settings.database_url, "retention"):
                services = build_services(settings)
                try:
                    report = await retention_run(services, dry_run=args.dry_run)
                finally:
                    await services.close()
        except runlock.LockBusy:
            print("retention: another retention run holds the lock; this one did nothing")
            return 0
        verb = "would destroy" if args.dry_run else "destroyed"
        print(f"retention: {verb} {len(report.destroyed)} case(s): {' '.join(report.destroyed)}")
        print(
            f"retention: due but waiting (approvals missing or legal hold): "
            f"{len(report.waiting)}: {' '.join(report.waiting)}"
        )
        ident = "would expire" if args.dry_run else "expired"
        print(f"retention: {ident} {len(report.identities)} reporter identit(ies)")
        return 0

    return asyncio.run(run())


def cmd_notify_run(args: argparse.Namespace) -> int:
    """One tick of the notifier (run it every few minutes): deadline notices, staff batches,
    reporters' "there is news" mails. Exit 1 when the mail server could not be used."""
    from investigator.notify import run as notify_run
    from portal.services import build_services

    settings = _settings()

    async def run() -> int:
        try:
            async with runlock.hold(settings.database_url, "notify"):
                services = build_services(settings)
                try:
                    report = await notify_run(services)
                finally:
                    await services.close()
        except runlock.LockBusy:
            print("notify: another notify run holds the lock; this one did nothing")
            return 0
        print(
            f"notify: {report.notices} notice(s) queued, {report.deadline_notices} deadline "
            f"notice(s); {report.staff_mails} staff mail(s), {report.reporter_mails} reporter "
            f"mail(s) sent; {report.held} held for the next batch, {report.skipped} skipped"
        )
        if report.error:
            print(f"notify: mail not sent: {report.error}", file=sys.stderr)
            return 1
        return 0

    return asyncio.run(run())


def cmd_backup(args: argparse.Namespace) -> int:
    """Database + file store (still encrypted), or with --secrets the keyring, kept apart."""
    from pathlib import Path

    from portal.backup import BackupError, backup, backup_secrets
    from portal.services import file_store

    settings = _settings()
    dest = Path(args.dest)
    try:
        if args.secrets:
            count = backup_secrets(settings, dest)
            print(f"installation secrets: {count} files copied to {dest}")
            print("keep them apart from the data backups (another medium, another custodian)")
            return 0
        result = asyncio.run(
            backup(settings, file_store(settings), dest, logical=args.logical, progress=print)
        )
    except BackupError as exc:
        raise CliError(str(exc)) from exc
    print(f"backup: done in {result.path} ({result.database}, {result.objects} objects)")
    print("the secrets are not in it: `portal backup --secrets DEST2`, stored elsewhere")
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    """Into an empty installation; --secrets puts a secrets backup in place."""
    from pathlib import Path

    from portal.backup import BackupError, restore, restore_secrets
    from portal.services import file_store

    settings = _settings()
    src = Path(args.src)
    try:
        if args.secrets:
            count = restore_secrets(settings, src)
            print(f"installation secrets: {count} files restored to {settings.keyring_dir}")
            return 0
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(settings.data_dir, 0o700)
        result = asyncio.run(restore(settings, file_store(settings), src, progress=print))
    except BackupError as exc:
        raise CliError(str(exc)) from exc
    print(f"restore: done ({result.database}, {result.objects} objects)")
    if not keyring_exists(settings.keyring_dir):
        print("now restore the secrets: `portal restore --secrets SECRETS_BACKUP`")
    return 0


def cmd_migrate_data(args: argparse.Namespace) -> int:
    """SQLite + local files -> PostgreSQL (+ S3), nothing decrypted."""
    from portal.migrate_data import MigrateError, migrate_installation

    settings = _settings()
    try:
        report = asyncio.run(
            migrate_installation(
                settings, to_database=args.to_database, to_s3=args.to_s3, progress=print
            )
        )
    except MigrateError as exc:
        raise CliError(str(exc)) from exc
    for line in report.lines():
        print(line)
    print("now set DATABASE_URL (and PORTAL_S3_*) to the new stores and start the portal")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="portal",
        description="Whistleblower portal and investigator workspace. Settings come from the "
        "environment (PORTAL_DATA_DIR, DATABASE_URL, PORTAL_HOST, PORTAL_PORT, ...).",
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    init = sub.add_parser("init", help="create the data directory, secrets, schema and first admin")
    init.add_argument("--admin", default="admin", help="first administrator's user name")
    init.add_argument(
        "--suite",
        default="aes256gcm",
        choices=["aes256gcm", "sm4gcm"],
        help="encryption suite, chosen once at installation (sm4gcm: the 国密 profile)",
    )
    init.set_defaults(func=cmd_init)

    serve = sub.add_parser("serve", help="serve the portal (no server header, no access log)")
    serve.set_defaults(func=cmd_serve)

    migrate = sub.add_parser("migrate", help="apply database migrations")
    migrate.set_defaults(func=cmd_migrate)

    user = sub.add_parser("user", help="manage staff accounts")
    usub = user.add_subparsers(dest="user_command", required=True, metavar="ACTION")
    add = usub.add_parser("add", help="create a staff account with a one-time password")
    add.add_argument("username")
    add.add_argument("--roles", required=True, help=f"comma-separated, from: {', '.join(ROLES)}")
    add.add_argument("--name", help="display name")
    add.add_argument("--email")
    add.add_argument("--department", help="department (required for department_liaison)")
    add.set_defaults(func=cmd_user_add)
    lst = usub.add_parser("list", help="list staff accounts")
    lst.set_defaults(func=cmd_user_list)
    dis = usub.add_parser("disable", help="disable a staff account")
    dis.add_argument("username")
    dis.set_defaults(func=cmd_user_disable)
    r2 = usub.add_parser(
        "reset-2fa", help="forget a staff member's lost authenticator (re-enrol at next sign-in)"
    )
    r2.add_argument("username")
    r2.set_defaults(func=cmd_user_reset_two_step)

    aud = sub.add_parser("audit", help="audit log tools")
    asub = aud.add_subparsers(dest="audit_command", required=True, metavar="ACTION")
    ver = asub.add_parser("verify", help="check the audit log's hash chain (exit 1 if broken)")
    ver.add_argument(
        "--expect-head",
        metavar="ID:HASH",
        help="an entry printed by an earlier verify, which must still be in the chain",
    )
    ver.set_defaults(func=cmd_audit_verify)

    ret = sub.add_parser("retention", help="archive retention and destruction (W13)")
    rsub = ret.add_subparsers(dest="retention_command", required=True, metavar="ACTION")
    rrun = rsub.add_parser(
        "run", help="perform the due destructions (two approvals) and identity expiries"
    )
    rrun.add_argument("--dry-run", action="store_true", help="list what is due, change nothing")
    rrun.set_defaults(func=cmd_retention_run)

    bak = sub.add_parser("backup", help="back up the database and files (encrypted) to DEST")
    bak.add_argument("dest", metavar="DEST", help="a new, empty directory")
    bak.add_argument(
        "--secrets", action="store_true", help="back up the installation secrets instead"
    )
    bak.add_argument(
        "--logical", action="store_true", help="PostgreSQL: a row copy instead of pg_dump"
    )
    bak.set_defaults(func=cmd_backup)
    res = sub.add_parser("restore", help="restore a backup into an empty installation")
    res.add_argument("src", metavar="SRC", help="a directory written by `portal backup`")
    res.add_argument("--secrets", action="store_true", help="SRC is a secrets backup (--secrets)")
    res.set_defaults(func=cmd_restore)
    mig = sub.add_parser(
        "migrate-data", help="copy this installation to PostgreSQL (and S3), undecrypted"
    )
    mig.add_argument("--to-database", required=True, metavar="URL", help="postgresql+asyncpg://")
    mig.add_argument(
        "--to-s3", action="store_true", help="copy the files to the PORTAL_S3_* bucket too"
    )
    mig.set_defaults(func=cmd_migrate_data)

    notify = sub.add_parser("notify", help="staff notifications and reporters' news mails")
    nsub = notify.add_subparsers(dest="notify_command", required=True, metavar="ACTION")
    nrun = nsub.add_parser("run", help="queue and send due notifications (every few minutes)")
    nrun.set_defaults(func=cmd_notify_run)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        result: int = args.func(args)
        return result
    except (CliError, StaffError, RoleError, CryptoError, SettingsError) as exc:
        print(f"portal: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
