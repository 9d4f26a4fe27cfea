"""The `portal` command line: init, serve, migrate, check, users, audit, jobs, backups.

Exit status: 0 done; 1 the command ran and found a problem (`check`, `audit verify`, `notify
run`); 2 refused or could not run (arguments, settings, secrets, backups) - see README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from typing import Any

from crypto.errors import CryptoError
from crypto.keyring import (
    Keyring,
    create_keyring,
    keyring_exists,
    keyring_fingerprint,
    load_keyring,
    pin_receipt_params,
)
from crypto.suites import self_test, suite_by_name
from investigator.domain.staff import (
    StaffError,
    add_user,
    count_users,
    list_users,
    reset_two_step_by_name,
    set_disabled,
)
from investigator.roles import ROLES, RoleError
from portal.kernel.assets import AssetError
from portal.kernel.binding import (
    BindingError,
    bound_keyring,
    claims_a_keyring,
    mismatch_message,
    missing_message,
    record_binding,
    recorded_fingerprint,
)
from portal.kernel.db import runlock
from portal.kernel.db.engine import Database
from portal.kernel.db.migrate import upgrade_to_head, upgrade_unlocked
from portal.kernel.i18n import CatalogError
from portal.kernel.progress import Progress
from portal.kernel.services import argon2_params
from portal.kernel.settings import Settings, SettingsError
from portal.kernel.startup import (
    StartupError,
    check_database,
    check_files,
    check_listen,
    check_reachable,
    explain,
)


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


def _refuse_claimed_database(settings: Settings) -> None:
    """New secrets only for a database that belongs to no keyring (no fingerprint, case or
    account): creating them over one would make everything in it unreadable."""

    async def claimed() -> bool:
        db = Database(settings.database_url)
        try:
            return await claims_a_keyring(db)
        finally:
            await db.dispose()

    if asyncio.run(claimed()):
        raise BindingError(missing_message(settings.keyring_dir))


def _waiting(what: str) -> Callable[[], None]:
    def say() -> None:
        print(f"{what}: another instance is migrating the database; waiting for it", flush=True)

    return say


def _keyring_for_init(settings: Settings, suite_name: str) -> Keyring:
    if keyring_exists(settings.keyring_dir):
        print(f"installation secrets: kept ({settings.keyring_dir})")
        return load_keyring(settings.keyring_dir)
    suite = suite_by_name(suite_name)
    self_test(suite)
    keyring = create_keyring(settings.keyring_dir, suite)
    print(f"installation secrets: created in {settings.keyring_dir} (back them up apart)")
    return keyring


def _record_binding(settings: Settings, keyring: Keyring) -> None:
    async def run() -> bool:
        db = Database(settings.database_url)
        try:
            return await record_binding(db, keyring, settings.keyring_dir)
        finally:
            await db.dispose()

    if asyncio.run(run()):
        print("keyring fingerprint: recorded in the database (it now refuses other secrets)")
    else:
        print("keyring fingerprint: matches the database")


def cmd_init(args: argparse.Namespace) -> int:
    """Idempotent: creates what is missing, never overwrites secrets, and never creates secrets
    over a database that already belongs to a keyring (C7). The whole of it holds the migrate
    lock, so instances started together create one keyring, schema and administrator."""
    settings = _settings()
    _ensure_data_dirs(settings)
    asyncio.run(check_reachable(settings.database_url))  # else one line, before anything

    async def init() -> None:
        async with runlock.hold(
            settings.database_url, "migrate", wait=True, on_wait=_waiting("init")
        ):
            await asyncio.to_thread(_init_locked, settings, args.suite, args.admin)

    asyncio.run(init())
    return 0


def _init_locked(settings: Settings, suite_name: str, admin: str) -> None:
    """`portal init` under the migrate lock (run in a worker thread: it has its own loops)."""
    # checked before anything is migrated or created
    if keyring_exists(settings.keyring_dir):
        asyncio.run(_check_existing(settings))  # an existing keyring must be this database's
    else:
        _refuse_claimed_database(settings)
    print(upgrade_unlocked(settings.database_url).line())
    keyring = _keyring_for_init(settings, suite_name)
    pinned = pin_receipt_params(settings.keyring_dir, argon2_params(settings))
    print(
        f"receipt codes: Argon2id m={pinned.memory_kib} KiB t={pinned.iterations} "
        f"p={pinned.lanes} (pinned in the keyring)"
    )
    _record_binding(settings, keyring)
    asyncio.run(_first_admin(settings, admin, keyring))


async def _first_admin(settings: Settings, username: str, keyring: Keyring) -> None:
    db = Database(settings.database_url)
    try:
        if await count_users(db) > 0:
            print("first administrator: exists already")
            return
        new = await add_user(
            db,
            argon2_params(settings),
            pepper=keyring.password_pepper,
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


async def _check_existing(settings: Settings) -> None:
    """Refuse a keyring whose fingerprint differs from the one recorded (nothing recorded yet
    is fine here: the caller records it)."""
    keyring = load_keyring(settings.keyring_dir)
    db = Database(settings.database_url)
    try:
        current = await recorded_fingerprint(db)
    finally:
        await db.dispose()
    if current is not None and current != keyring_fingerprint(keyring):
        raise BindingError(mismatch_message(settings.keyring_dir))


def cmd_migrate(args: argparse.Namespace) -> int:
    """Refuses secrets that are not the database's (before changing anything); records the
    fingerprint of an installation set up before the binding existed."""
    settings = _settings()
    asyncio.run(check_reachable(settings.database_url))  # else one line, before anything
    keyring: Keyring | None = None
    if keyring_exists(settings.keyring_dir):
        asyncio.run(_check_existing(settings))
        keyring = load_keyring(settings.keyring_dir)
    else:
        asyncio.run(_refuse_missing(settings))
    print(upgrade_to_head(settings.database_url, on_wait=_waiting("migrate")).line())
    if keyring is None:
        print(
            f"keyring fingerprint: not recorded (no secrets in {settings.keyring_dir}; "
            "`portal init` creates them and records it)"
        )
    else:
        _record_binding(settings, keyring)
    return 0


async def _refuse_missing(settings: Settings) -> None:
    db = Database(settings.database_url)
    try:
        if await recorded_fingerprint(db) is not None:
            raise BindingError(missing_message(settings.keyring_dir))
    finally:
        await db.dispose()


def _db(settings: Settings) -> Database:
    """The database for a command that writes: audit heads it appends are anchored (A5)."""
    from portal.kernel.audit_anchor import anchor_hook

    db = Database(settings.database_url)
    db.post_commit_hooks.append(anchor_hook(settings.data_dir))
    return db


def _bound(settings: Settings) -> Keyring:
    """Every command that uses the database and the keyring starts here (C7)."""
    return asyncio.run(bound_keyring(settings))


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    settings = _settings()
    asyncio.run(check_database(settings.database_url))  # reachable, migrated: else one line
    if not settings.s3_bucket:
        check_files(settings.files_dir)
    check_listen(settings.host, settings.port)
    try:
        _bound(settings)
        from portal.app import create_app

        app = create_app(settings)
    except CryptoError as exc:
        raise CliError(f"{exc} (run `portal init` first)") from exc
    except (CatalogError, AssetError) as exc:
        raise CliError(str(exc)) from exc
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
    _bound(settings)
    db = _db(settings)

    async def run() -> None:
        try:
            new = await add_user(
                db,
                argon2_params(settings),
                pepper=load_keyring(settings.keyring_dir).password_pepper,
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
    _bound(settings)
    db = _db(settings)

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
    _bound(settings)
    db = _db(settings)

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
    _bound(settings)
    db = _db(settings)

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
    """Walk the audit hash chain (A5) and check it against its anchors (the data directory's
    anchor file, or --anchor FILE|ID:HASH|HASH); exit 1 when it is broken, truncated or
    rewritten. A verified head is anchored again."""
    from portal.kernel.audit import head, verify
    from portal.kernel.audit_anchor import (
        AnchorError,
        anchor_head,
        anchor_path,
        parse_anchor,
        read_anchors,
    )

    settings = _settings()
    given = args.anchor or args.expect_head
    try:
        # read before the chain is walked: every anchor then names a committed entry
        if given:
            anchors, anchor_hash = parse_anchor(given)
            source = given
        elif anchor_path(settings.data_dir).is_file():
            anchors, anchor_hash = read_anchors(anchor_path(settings.data_dir)), None
            source = str(anchor_path(settings.data_dir))
        else:
            anchors, anchor_hash, source = {}, None, ""
    except AnchorError as exc:
        raise CliError(str(exc)) from exc
    except OSError as exc:
        raise CliError(f"cannot read the anchor: {exc}") from exc
    db = Database(settings.database_url)

    async def run() -> int:
        try:
            result = await verify(db, anchors=anchors, anchor_hash=anchor_hash)
            newest = await head(db) if result.ok else None
            if result.ok:
                await anchor_head(db, settings.data_dir)
        finally:
            await db.dispose()
        if result.ok:
            print(f"audit log: intact, {result.checked} entries checked")
            if source:
                print(f"anchors: {len(anchors) or 1} checked ({source})")
            if newest is not None:
                print(f"head (keep a copy elsewhere): {newest[0]}:{newest[1]}")
            return 0
        if result.kind == "truncated":
            print(f"audit log: TRUNCATED: {result.reason}")
        elif result.kind in ("rewritten", "truncated_or_rewritten"):
            where = "" if result.first_broken_id is None else f" at entry {result.first_broken_id}"
            print(f"audit log: REWRITTEN{where}: {result.reason}")
        else:
            where = "" if result.first_broken_id is None else f" at entry {result.first_broken_id}"
            print(
                f"audit log: BROKEN{where}: {result.reason} ({result.checked} entries fine before)"
            )
        return 1

    return asyncio.run(run())


def cmd_retention_run(args: argparse.Namespace) -> int:
    """The daily retention job (W13, C5): destroy what is due and approved, expire identities."""
    from investigator.domain.retention import run as retention_run
    from portal.app.wiring import build_services

    settings = _settings()
    _bound(settings)

    async def run() -> int:
        try:
            async with runlock.hold(settings.database_url, "retention"):
                services = build_services(settings)
                show = Progress.for_cli(args.progress)
                try:
                    report = await retention_run(services, dry_run=args.dry_run, progress=show.step)
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
    reporters' "there is news" mails. Without a mail server the notices are still recorded and
    listed in the workspace, only the mail is skipped (exit 0); exit 1 when a configured mail
    server could not be used."""
    from investigator.domain.notify import run as notify_run
    from portal.app.wiring import build_services

    settings = _settings()
    _bound(settings)

    async def run() -> int:
        try:
            async with runlock.hold(settings.database_url, "notify"):
                services = build_services(settings)
                try:
                    report = await notify_run(services)
                    # every tick anchors the audit head (A5), even when no request appended
                    from portal.kernel.audit_anchor import anchor_head

                    await anchor_head(services.db, settings.data_dir)
                finally:
                    await services.close()
        except runlock.LockBusy:
            print("notify: another notify run holds the lock; this one did nothing")
            return 0
        if not report.mail_configured:
            print(
                f"notify: {report.notices} notice(s) queued, {report.deadline_notices} deadline "
                "notice(s), listed in the workspace; no mail server configured "
                "(PORTAL_SMTP_HOST): mail skipped"
            )
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

    from portal.app.backup import BackupError, backup, backup_secrets
    from portal.kernel.services import file_store

    settings = _settings()
    dest = Path(args.dest)
    try:
        if args.secrets:
            count = backup_secrets(settings, dest)
            print(f"installation secrets: {count} files copied to {dest}")
            print("keep them apart from the data backups (another medium, another custodian)")
            return 0
        result = asyncio.run(
            backup(
                settings,
                file_store(settings),
                dest,
                logical=args.logical,
                progress=Progress.for_cli(args.progress),
            )
        )
    except BackupError as exc:
        raise CliError(str(exc)) from exc
    print(f"backup: done in {result.path} ({result.database}, {result.objects} objects)")
    print("the secrets are not in it: `portal backup --secrets DEST2`, stored elsewhere")
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    """Into an empty installation; --secrets puts a secrets backup in place. The restored
    database and the restored secrets must belong together (C7), in either order."""
    from pathlib import Path

    from portal.app.backup import BackupError, restore, restore_secrets, secrets_fit_database
    from portal.kernel.services import file_store

    settings = _settings()
    src = Path(args.src)
    try:
        if args.secrets:
            asyncio.run(secrets_fit_database(settings, src))  # before anything is copied
            count = restore_secrets(settings, src)
            print(f"installation secrets: {count} files restored to {settings.keyring_dir}")
            if _database_has_schema(settings):  # the database came first: bind it now
                _record_binding(settings, load_keyring(settings.keyring_dir))
            else:
                print("now restore the data: `portal restore BACKUP`")
            return 0
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(settings.data_dir, 0o700)
        result = asyncio.run(
            restore(settings, file_store(settings), src, progress=Progress.for_cli(args.progress))
        )
    except BackupError as exc:
        raise CliError(str(exc)) from exc
    print(f"restore: done ({result.database}, {result.objects} objects)")
    if not keyring_exists(settings.keyring_dir):
        print("now restore the secrets: `portal restore --secrets SECRETS_BACKUP`")
    else:
        _record_binding(settings, load_keyring(settings.keyring_dir))
    return 0


def _database_has_schema(settings: Settings) -> bool:
    """A database with the portal's tables (not a PostgreSQL database created empty, nor an
    absent SQLite file)."""
    from pathlib import Path

    from portal.kernel.db.migrate import current_revision

    if settings.is_sqlite and not Path(settings.database_url.split("///", 1)[1]).exists():
        return False

    async def run() -> bool:
        db = Database(settings.database_url)
        try:
            return await current_revision(db) is not None
        finally:
            await db.dispose()

    return asyncio.run(run())


def cmd_migrate_data(args: argparse.Namespace) -> int:
    """SQLite + local files -> PostgreSQL (+ S3), nothing decrypted."""
    from portal.app.migrate_data import MigrateError, migrate_installation

    settings = _settings()
    _bound(settings)  # the copy carries the fingerprint: it must be this keyring's
    try:
        report = asyncio.run(
            migrate_installation(
                settings,
                to_database=args.to_database,
                to_s3=args.to_s3,
                progress=Progress.for_cli(args.progress),
            )
        )
    except MigrateError as exc:
        raise CliError(str(exc)) from exc
    for line in report.lines():
        print(line)
    print("now set DATABASE_URL (and PORTAL_S3_*) to the new stores and start the portal")
    return 0


def _progress_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--progress",
        action="store_true",
        help="show progress on stderr even when it is not a terminal",
    )


def cmd_check(args: argparse.Namespace) -> int:
    """Is this installation ready? One line per check; exit 1 when any fails."""
    from portal.app.checks import run_checks

    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        print(f"FAIL settings: {exc}")
        return 1
    print("OK   settings: valid")
    results = asyncio.run(run_checks(settings))
    for result in results:
        print(result.line())
    failed = sum(1 for r in results if not r.ok)
    print(f"{failed} check(s) failed" if failed else "all checks passed")
    return 1 if failed else 0


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("whistle-portal")
    except PackageNotFoundError:  # a bare checkout, never installed
        return "unknown"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="portal",
        description="Whistleblower portal and investigator workspace. Settings come from the "
        "environment (PORTAL_DATA_DIR, DATABASE_URL, PORTAL_HOST, PORTAL_PORT, ...).",
    )
    p.add_argument("--version", action="version", version=f"portal {_version()}")
    p.add_argument(
        "--debug",
        action="store_true",
        help="show the full traceback of an unexpected error (default: one line with the fix)",
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

    check = sub.add_parser(
        "check", help="check settings, database, Redis, files, keyring, calendar, mail, staff"
    )
    check.set_defaults(func=cmd_check)

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
        "--anchor",
        metavar="FILE|ID:HASH|HASH",
        help="an anchor file (default: PORTAL_DATA_DIR/audit-anchor) or a head printed by an "
        "earlier verify or the audit page: detects removed newest entries and a rewritten log",
    )
    ver.add_argument("--expect-head", metavar="ID:HASH", help="the same as --anchor ID:HASH")
    ver.set_defaults(func=cmd_audit_verify)

    ret = sub.add_parser("retention", help="archive retention and destruction (W13)")
    rsub = ret.add_subparsers(dest="retention_command", required=True, metavar="ACTION")
    rrun = rsub.add_parser(
        "run", help="perform the due destructions (two approvals) and identity expiries"
    )
    rrun.add_argument("--dry-run", action="store_true", help="list what is due, change nothing")
    _progress_flag(rrun)
    rrun.set_defaults(func=cmd_retention_run)

    bak = sub.add_parser("backup", help="back up the database and files (encrypted) to DEST")
    bak.add_argument("dest", metavar="DEST", help="a new, empty directory")
    bak.add_argument(
        "--secrets", action="store_true", help="back up the installation secrets instead"
    )
    bak.add_argument(
        "--logical", action="store_true", help="PostgreSQL: a row copy instead of pg_dump"
    )
    _progress_flag(bak)
    bak.set_defaults(func=cmd_backup)
    res = sub.add_parser("restore", help="restore a backup into an empty installation")
    res.add_argument("src", metavar="SRC", help="a directory written by `portal backup`")
    res.add_argument("--secrets", action="store_true", help="SRC is a secrets backup (--secrets)")
    _progress_flag(res)
    res.set_defaults(func=cmd_restore)
    mig = sub.add_parser(
        "migrate-data", help="copy this installation to PostgreSQL (and S3), undecrypted"
    )
    mig.add_argument("--to-database", required=True, metavar="URL", help="postgresql+asyncpg://")
    mig.add_argument(
        "--to-s3", action="store_true", help="copy the files to the PORTAL_S3_* bucket too"
    )
    _progress_flag(mig)
    mig.set_defaults(func=cmd_migrate_data)

    notify = sub.add_parser("notify", help="staff notifications and reporters' news mails")
    nsub = notify.add_subparsers(dest="notify_command", required=True, metavar="ACTION")
    nrun = nsub.add_parser("run", help="queue and send due notifications (every few minutes)")
    nrun.set_defaults(func=cmd_notify_run)
    return p


def _database_url() -> str | None:
    try:
        return Settings.from_env().database_url
    except SettingsError:
        return None


# scheduled jobs whose runs are counted for the metrics (portal.kernel.metrics)
_JOBS = {cmd_notify_run: "notify", cmd_retention_run: "retention"}


def _run_command(args: argparse.Namespace) -> int:
    job = _JOBS.get(args.func)
    if job is None or getattr(args, "dry_run", False):
        result: int = args.func(args)
        return result
    from portal.kernel.metrics import record_job_run

    started, ok = time.monotonic(), False
    try:
        result = args.func(args)
        ok = result == 0
        return result
    finally:
        with contextlib.suppress(OSError, SettingsError):  # counting never fails a run
            record_job_run(
                Settings.from_env().data_dir, job, ok=ok, duration_s=time.monotonic() - started
            )


def main(argv: Sequence[str] | None = None) -> int:
    """Every failure is one line on stderr naming the setting, host or file and the fix;
    `--debug` adds the traceback of an unexpected one."""
    # whatever this process creates (database, store objects, backups, secrets) is private
    os.umask(0o077)
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return _run_command(args)
    except (
        CliError,
        StaffError,
        RoleError,
        CryptoError,
        SettingsError,
        BindingError,
        StartupError,
    ) as exc:
        if args.debug:
            traceback.print_exc()
        print(f"portal: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # noqa: BLE001 - the operator gets one line, --debug the rest
        if args.debug:
            traceback.print_exc()
        print(f"portal: error: {explain(exc, _database_url())}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
