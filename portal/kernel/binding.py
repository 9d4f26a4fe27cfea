"""The keyring bound to its database (requirement C7).

`portal init` records a one-way, keyed fingerprint of the keyring
(``crypto.keyring.keyring_fingerprint``) in the database. Every command that uses the database
and the keyring, and the app at start-up, compares it with the keyring in place and refuses a
mismatch with one line naming the fix, so that neither a lost ``secrets/`` directory replaced
by a fresh one nor another installation's ``server.key`` ever serves reports nobody can read.

* recorded and equal: fine;
* recorded and different: refused (`BindingError`);
* not recorded (a database set up before the binding existed): `portal init` and
  `portal migrate` record it, saying so; start-up records it only while the database holds
  no case and no staff account (a fresh database), and otherwise asks for `portal migrate`.

`portal init` creates a keyring only for a database that belongs to none: no fingerprint, no
case, no staff account (`claims_a_keyring`).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from sqlalchemy import exc, func, select

from crypto.errors import KeyringError
from crypto.keyring import Keyring, keyring_exists, keyring_fingerprint, load_keyring
from portal.kernel.db.engine import Database
from portal.kernel.db.models import Case, KeyringBinding, User
from portal.kernel.settings import Settings

__all__ = [
    "BindingError",
    "bound_keyring",
    "claims_a_keyring",
    "ensure_bound",
    "record_binding",
    "recorded_fingerprint",
]

_ROW = 1
RESTORE_HINT = "`portal restore --secrets SECRETS_BACKUP`"


class BindingError(Exception):
    """The keyring and the database do not belong together; the message names the fix."""


def mismatch_message(keyring_dir: Path) -> str:
    return (
        f"the secrets in {keyring_dir} do not belong to this database: move them away and "
        f"restore this installation's secrets from the secrets backup ({RESTORE_HINT})"
    )


def missing_message(keyring_dir: Path) -> str:
    return (
        f"the secrets in {keyring_dir} are missing but this database belongs to a keyring: "
        f"restore them from the secrets backup ({RESTORE_HINT}); `portal init` creates new "
        "secrets only for a new database"
    )


async def recorded_fingerprint(db: Database) -> str | None:
    """The fingerprint recorded in the database; None when none is (or the table is not there
    yet: a schema older than this release)."""
    try:
        async with db.read() as s:
            row = await s.get(KeyringBinding, _ROW)
    except (exc.OperationalError, exc.ProgrammingError):
        return None  # no such table yet: `portal migrate` creates it
    return None if row is None else row.fingerprint


async def _holds_data(db: Database) -> bool:
    try:
        async with db.read() as s:
            for model in (Case, User):
                if (await s.execute(select(func.count()).select_from(model))).scalar_one():
                    return True
    except (exc.OperationalError, exc.ProgrammingError):
        return False  # no tables: a new database
    return False


async def claims_a_keyring(db: Database) -> bool:
    """Does this database already belong to a keyring (a fingerprint, a case or an account)?"""
    return await recorded_fingerprint(db) is not None or await _holds_data(db)


async def record_binding(db: Database, keyring: Keyring, keyring_dir: Path) -> bool:
    """Record the keyring's fingerprint unless one is there; True when recorded now.
    BindingError when another keyring's fingerprint is recorded."""
    expected = keyring_fingerprint(keyring)
    current = await recorded_fingerprint(db)
    if current is None:
        try:
            async with db.write() as s:
                s.add(
                    KeyringBinding(
                        id=_ROW, fingerprint=expected, recorded_on=dt.datetime.now(dt.UTC).date()
                    )
                )
            return True
        except exc.IntegrityError:  # another process recorded one meanwhile: compare with it
            current = await recorded_fingerprint(db)
        except (exc.OperationalError, exc.ProgrammingError):  # no keyring_binding table yet
            raise BindingError(
                "the database schema is older than this release (or missing): run "
                "`portal migrate` (a new installation: `portal init`)"
            ) from None
    if current != expected:
        raise BindingError(mismatch_message(keyring_dir))
    return False


async def ensure_bound(db: Database, keyring: Keyring, keyring_dir: Path) -> None:
    """Start-up and every command: refuse a keyring that is not this database's."""
    current = await recorded_fingerprint(db)
    if current is None:
        if await _holds_data(db):
            raise BindingError(
                "this database holds cases or staff accounts but no keyring fingerprint yet: "
                f"run `portal migrate` once with its own secrets in {keyring_dir} to record it"
            )
        await record_binding(db, keyring, keyring_dir)  # a fresh database: bind it now
        return
    if current != keyring_fingerprint(keyring):
        raise BindingError(mismatch_message(keyring_dir))


def _database_present(settings: Settings) -> bool:
    if not settings.is_sqlite:
        return True
    return Path(settings.database_url.split("///", 1)[1]).exists()


async def bound_keyring(settings: Settings) -> Keyring:
    """The installation's keyring, checked against its database (for the commands).

    Missing secrets over a database that belongs to a keyring name the restore, not `portal
    init`; a keyring from elsewhere is refused."""
    db = Database(settings.database_url) if _database_present(settings) else None
    try:
        try:
            keyring = load_keyring(settings.keyring_dir)
        except KeyringError:
            if (
                db is not None
                and not keyring_exists(settings.keyring_dir)
                and await claims_a_keyring(db)
            ):
                raise BindingError(missing_message(settings.keyring_dir)) from None
            raise
        if db is None:
            raise BindingError(
                f"there is no database at {settings.database_url.split('///', 1)[1]}: restore "
                "it from the backup (`portal restore BACKUP`), or run `portal init` for a new one"
            )
        await ensure_bound(db, keyring, settings.keyring_dir)
        return keyring
    finally:
        if db is not None:
            await db.dispose()
