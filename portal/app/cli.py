"""The `portal` command line: init, serve, migrate, check, users, audit, jobs, backups.

Exit status: 0 done; 1 the command ran and found a problem (`check`, `audit verify`, `notify
run`); 2 refused or could not run (arguments, settings, secrets, backups) - see README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
import traceback
from collections.abc import Sequence

from crypto.errors import CryptoError
from investigator.domain.staff import (
    StaffError,
)
from investigator.roles import ROLES, RoleError
from portal.app.cli_ops import (
    cmd_audit_verify,
    cmd_backup,
    cmd_check,
    cmd_migrate_data,
    cmd_notify_run,
    cmd_restore,
    cmd_retention_run,
    cmd_user_add,
    cmd_user_appoint_reviewer,
    cmd_user_disable,
    cmd_user_list,
    cmd_user_reset_two_step,
    cmd_user_revoke_reviewer,
)
from portal.app.cli_setup import cmd_init, cmd_migrate, cmd_serve
from portal.app.cli_support import CliError, progress_flag
from portal.kernel.binding import (
    BindingError,
)
from portal.kernel.settings import Settings, SettingsError
from portal.kernel.startup import (
    StartupError,
    explain,
)


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
    ap = usub.add_parser(
        "appoint-reviewer",
        help="make an account an independent reviewer (audit committee or supervisory board: "
        "reads the reports about the 法审风控中心 itself; audited)",
    )
    ap.add_argument("username")
    ap.set_defaults(func=cmd_user_appoint_reviewer)
    rv = usub.add_parser("revoke-reviewer", help="take the independent reviewer role (audited)")
    rv.add_argument("username")
    rv.set_defaults(func=cmd_user_revoke_reviewer)
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
    progress_flag(rrun)
    rrun.set_defaults(func=cmd_retention_run)

    bak = sub.add_parser("backup", help="back up the database and files (encrypted) to DEST")
    bak.add_argument("dest", metavar="DEST", help="a new, empty directory")
    bak.add_argument(
        "--secrets", action="store_true", help="back up the installation secrets instead"
    )
    bak.add_argument(
        "--logical", action="store_true", help="PostgreSQL: a row copy instead of pg_dump"
    )
    progress_flag(bak)
    bak.set_defaults(func=cmd_backup)
    res = sub.add_parser("restore", help="restore a backup into an empty installation")
    res.add_argument("src", metavar="SRC", help="a directory written by `portal backup`")
    res.add_argument("--secrets", action="store_true", help="SRC is a secrets backup (--secrets)")
    progress_flag(res)
    res.set_defaults(func=cmd_restore)
    mig = sub.add_parser(
        "migrate-data", help="copy this installation to PostgreSQL (and S3), undecrypted"
    )
    mig.add_argument("--to-database", required=True, metavar="URL", help="postgresql+asyncpg://")
    mig.add_argument(
        "--to-s3", action="store_true", help="copy the files to the PORTAL_S3_* bucket too"
    )
    progress_flag(mig)
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
