"""The operator's `portal` commands: staff accounts, audit verification, jobs, backups, checks."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys

from crypto.keyring import (
    keyring_exists,
    load_keyring,
)
from investigator.domain.staff import (
    add_user,
    list_users,
    reset_two_step_by_name,
    set_disabled,
    set_independent_reviewer,
)
from portal.app.cli_setup import record_keyring_binding
from portal.app.cli_support import (
    CliError,
    database,
    database_has_schema,
    load_settings,
    require_bound_keyring,
)
from portal.kernel.db import runlock
from portal.kernel.db.engine import Database
from portal.kernel.progress import Progress
from portal.kernel.services import argon2_params
from portal.kernel.settings import Settings, SettingsError


def cmd_user_add(args: argparse.Namespace) -> int:
    settings = load_settings()
    require_bound_keyring(settings)
    db = database(settings)

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
                owner=True,  # the installation's owner: may grant the owner-only roles
            )
        finally:
            await db.dispose()
        print(f"user {new.user.username} created with roles {new.user.roles}")
        print(f"one-time password (shown once): {new.one_time_password}")

    asyncio.run(run())
    return 0


def _cmd_reviewer(args: argparse.Namespace, appointed: bool) -> int:
    settings = load_settings()
    require_bound_keyring(settings)
    db = database(settings)

    async def run() -> None:
        try:
            user = await set_independent_reviewer(db, args.username, appointed)
        finally:
            await db.dispose()
        print(f"user {user.username} now has the roles {user.roles or '(none)'}")

    asyncio.run(run())
    return 0


def cmd_user_appoint_reviewer(args: argparse.Namespace) -> int:
    """The owner appoints an independent reviewer (audit committee, supervisory board)."""
    return _cmd_reviewer(args, True)


def cmd_user_revoke_reviewer(args: argparse.Namespace) -> int:
    """The owner takes the independent reviewer role from an account."""
    return _cmd_reviewer(args, False)


def cmd_user_list(args: argparse.Namespace) -> int:
    settings = load_settings()
    require_bound_keyring(settings)
    db = database(settings)

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
    settings = load_settings()
    require_bound_keyring(settings)
    db = database(settings)

    async def run() -> None:
        try:
            user = await set_disabled(db, args.username, True)
        finally:
            await db.dispose()
        print(f"user {user.username} disabled")

    asyncio.run(run())
    return 0


def cmd_user_reset_two_step(args: argparse.Namespace) -> int:
    settings = load_settings()
    require_bound_keyring(settings)
    db = database(settings)

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
    from portal.kernel.audit import anchor_head, head, verify
    from portal.kernel.audit_anchor import (
        AnchorError,
        anchor_path,
        parse_anchor,
        read_anchors,
    )

    settings = load_settings()
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

    settings = load_settings()
    require_bound_keyring(settings)

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

    settings = load_settings()
    require_bound_keyring(settings)

    async def run() -> int:
        try:
            async with runlock.hold(settings.database_url, "notify"):
                services = build_services(settings)
                try:
                    report = await notify_run(services)
                    # every tick anchors the audit head (A5), even when no request appended
                    from portal.kernel.audit import anchor_head

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

    settings = load_settings()
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

    settings = load_settings()
    src = Path(args.src)
    try:
        if args.secrets:
            asyncio.run(secrets_fit_database(settings, src))  # before anything is copied
            count = restore_secrets(settings, src)
            print(f"installation secrets: {count} files restored to {settings.keyring_dir}")
            if database_has_schema(settings):  # the database came first: bind it now
                record_keyring_binding(settings, load_keyring(settings.keyring_dir))
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
        record_keyring_binding(settings, load_keyring(settings.keyring_dir))
    return 0


def cmd_migrate_data(args: argparse.Namespace) -> int:
    """SQLite + local files -> PostgreSQL (+ S3), nothing decrypted."""
    from portal.app.migrate_data import MigrateError, migrate_installation

    settings = load_settings()
    require_bound_keyring(settings)  # the copy carries the fingerprint: it must be this keyring's
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
