"""`portal init`, `portal migrate` and `portal serve`: setting up, upgrading and serving."""

from __future__ import annotations

import argparse
import asyncio
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
    add_user,
    count_users,
)
from portal.app.cli_support import (
    CliError,
    ensure_data_dirs,
    load_settings,
    refuse_missing_schema,
    require_bound_keyring,
    waiting,
)
from portal.kernel.assets import AssetError
from portal.kernel.binding import (
    BindingError,
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
from portal.kernel.services import argon2_params, new_receipt_params, unpinned_receipt_params
from portal.kernel.settings import Settings
from portal.kernel.startup import (
    check_database,
    check_files,
    check_listen,
    check_reachable,
)


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


def _keyring_for_init(settings: Settings, suite_name: str) -> Keyring:
    if keyring_exists(settings.keyring_dir):
        print(f"installation secrets: kept ({settings.keyring_dir})")
        return load_keyring(settings.keyring_dir)
    suite = suite_by_name(suite_name)
    self_test(suite)
    keyring = create_keyring(settings.keyring_dir, suite)
    print(f"installation secrets: created in {settings.keyring_dir} (back them up apart)")
    return keyring


def record_keyring_binding(settings: Settings, keyring: Keyring) -> None:
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
    settings = load_settings()
    ensure_data_dirs(settings)
    asyncio.run(check_reachable(settings.database_url))  # else one line, before anything

    async def init() -> None:
        async with runlock.hold(
            settings.database_url, "migrate", wait=True, on_wait=waiting("init")
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
    existing = keyring_exists(settings.keyring_dir)
    keyring = _keyring_for_init(settings, suite_name)
    # a keyring without pinned parameters predates pinning: its receipts were made with the
    # parameters of that time, which it keeps; only a new installation gets today's
    pinned = pin_receipt_params(
        settings.keyring_dir,
        unpinned_receipt_params(settings) if existing else new_receipt_params(settings),
    )
    print(
        f"receipt codes: Argon2id m={pinned.memory_kib} KiB t={pinned.iterations} "
        f"p={pinned.lanes} (pinned in the keyring)"
    )
    record_keyring_binding(settings, keyring)
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
    settings = load_settings()
    asyncio.run(check_reachable(settings.database_url))  # else one line, before anything
    keyring: Keyring | None = None
    if keyring_exists(settings.keyring_dir):
        asyncio.run(_check_existing(settings))
        keyring = load_keyring(settings.keyring_dir)
    else:
        asyncio.run(refuse_missing_schema(settings))
    print(upgrade_to_head(settings.database_url, on_wait=waiting("migrate")).line())
    if keyring is None:
        print(
            f"keyring fingerprint: not recorded (no secrets in {settings.keyring_dir}; "
            "`portal init` creates them and records it)"
        )
    else:
        record_keyring_binding(settings, keyring)
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    settings = load_settings()
    asyncio.run(check_database(settings.database_url))  # reachable, migrated: else one line
    if not settings.s3_bucket:
        check_files(settings.files_dir)
    check_listen(settings.host, settings.port)
    try:
        require_bound_keyring(settings)
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
