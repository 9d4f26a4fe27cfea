"""`portal check`: is this installation ready to serve? One line per check, OK or FAIL with
what to do. Framework-free.

A check is one small async function ``(CheckContext) -> CheckResult`` in ``CHECKS``; to add
one, write the function and append it to the list. Checks run in order; one that needs the
database says so when the database check failed before it, instead of failing on its own.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import shutil
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import anyio.to_thread
from sqlalchemy import select
from sqlalchemy.engine import make_url

from crypto.errors import CryptoError
from crypto.keyring import load_keyring
from portal.kernel import clock
from portal.kernel.db.engine import Database
from portal.kernel.db.migrate import current_revision, head_revision
from portal.kernel.settings import Settings
from portal.kernel.storage import LocalFileStore, new_storage_key

__all__ = ["CHECKS", "Check", "CheckContext", "CheckResult", "run_checks"]

CHECK_TIMEOUT_S = 20.0
# The file store must keep room for this many evidence files of the largest allowed size.
FREE_SPACE_FILES = 2


@dataclass(frozen=True)
class CheckResult:
    name: str
    ok: bool
    detail: str  # what was found (OK), or what is wrong and what to do (FAIL)

    def line(self) -> str:
        return f"{'OK  ' if self.ok else 'FAIL'} {self.name}: {self.detail}"


@dataclass
class CheckContext:
    settings: Settings
    db: Database | None = None  # None: the database could not be opened
    database_ok: bool = False
    today: dt.date = field(default_factory=clock.today)


Check = Callable[[CheckContext], Awaitable[CheckResult]]


def _ok(name: str, detail: str) -> CheckResult:
    return CheckResult(name, True, detail)


def _fail(name: str, detail: str) -> CheckResult:
    return CheckResult(name, False, detail)


def _where(url: str) -> str:
    """host:port of a URL, never its user or password."""
    parts = urlsplit(url)
    return f"{parts.hostname or 'localhost'}:{parts.port}" if parts.port else str(parts.hostname)


def _sqlite_file(settings: Settings) -> str | None:
    return make_url(settings.database_url).database if settings.is_sqlite else None


# --- the checks -----------------------------------------------------------------------------


async def check_database(ctx: CheckContext) -> CheckResult:
    name = "database"
    path = _sqlite_file(ctx.settings)
    if path is not None:
        if not await anyio.Path(path).is_file():
            return _fail(name, f"no database file {path}: run `portal init`")
        where = f"SQLite {path}"
    else:
        url = make_url(ctx.settings.database_url)
        where = f"PostgreSQL at {url.host or 'localhost'}:{url.port or 5432}/{url.database}"
    ctx.db = Database(ctx.settings.database_url)
    fix = "check DATABASE_URL and that the server runs and accepts this user"
    try:
        reachable = await ctx.db.ping()
    except Exception as exc:  # noqa: BLE001 - e.g. a refused password: reported by type
        return _fail(name, f"cannot use {where} ({type(exc).__name__}): {fix}")
    if not reachable:
        return _fail(name, f"cannot reach {where}: {fix}")
    ctx.database_ok = True
    return _ok(name, f"{where} answers")


def _no_database(name: str) -> CheckResult:
    return _fail(name, "not checked: the database cannot be reached (see above)")


async def check_schema(ctx: CheckContext) -> CheckResult:
    name = "database schema"
    if not ctx.database_ok or ctx.db is None:
        return _no_database(name)
    have, want = await current_revision(ctx.db), head_revision()
    if have is None:
        return _fail(name, "the database has no schema: run `portal migrate`")
    if have != want:
        return _fail(name, f"at revision {have}, this version needs {want}: run `portal migrate`")
    return _ok(name, f"migrated to the latest revision ({want})")


async def check_redis(ctx: CheckContext) -> CheckResult:
    name = "redis"
    url = ctx.settings.redis_url
    if not url:
        return _ok(name, "not configured (sessions and throttles are kept in this process)")
    from portal.kernel.redis_state import redis_client

    client = redis_client(url)
    try:
        await client.ping()
    except Exception as exc:  # noqa: BLE001 - any failure is reported, by type only
        kind = type(exc).__name__
        if "Authentication" in kind or "password" in str(exc).lower():
            return _fail(name, f"{_where(url)} refuses the password ({kind}): check REDIS_URL")
        return _fail(name, f"cannot reach {_where(url)} ({kind}): check REDIS_URL, start Redis")
    finally:
        await client.aclose()
    return _ok(name, f"{_where(url)} answers")


async def check_file_store(ctx: CheckContext) -> CheckResult:
    name = "file store"
    settings = ctx.settings
    from portal.kernel.services import file_store

    store = file_store(settings)
    if isinstance(store, LocalFileStore):
        where = str(settings.files_dir)
        if not await anyio.Path(settings.files_dir).is_dir():
            return _fail(name, f"{where} does not exist: run `portal init`")
    else:
        where = f"bucket {settings.s3_bucket}"
    key = new_storage_key()
    try:
        writer = await store.writer(key)
        try:
            await writer.write(b"portal check: a probe, removed at once\n")
            await writer.commit()
        except BaseException:
            await writer.abort()
            raise
        await store.delete(key)
    except Exception as exc:  # noqa: BLE001 - any failure is reported, by type only
        return _fail(
            name,
            f"cannot write in {where} ({type(exc).__name__}): make it writable for the "
            "portal's user (and check the bucket's credentials and policy)",
        )
    if not isinstance(store, LocalFileStore):
        return _ok(name, f"{where} writable")
    need = FREE_SPACE_FILES * settings.max_file_bytes
    free = (await anyio.to_thread.run_sync(shutil.disk_usage, settings.files_dir)).free
    mib = 1024 * 1024
    if free < need:
        return _fail(
            name,
            f"only {free // mib} MiB free in {where}, less than {need // mib} MiB: "
            "free space or move the data directory to a larger disk",
        )
    return _ok(name, f"{where} writable, {free // mib} MiB free")


async def check_keyring(ctx: CheckContext) -> CheckResult:
    name = "keyring"
    try:
        keyring = await anyio.to_thread.run_sync(load_keyring, ctx.settings.keyring_dir)
    except CryptoError as exc:
        return _fail(name, str(exc))
    return _ok(name, f"{ctx.settings.keyring_dir} loads (suite {keyring.suite.label})")


async def check_keyring_binding(ctx: CheckContext) -> CheckResult:
    """The keyring is the one whose fingerprint the database recorded (C7)."""
    from crypto.keyring import keyring_fingerprint
    from portal.kernel.binding import mismatch_message, recorded_fingerprint

    name = "keyring binding"
    if ctx.db is None or not ctx.database_ok:
        return _no_database(name)
    try:
        keyring = await anyio.to_thread.run_sync(load_keyring, ctx.settings.keyring_dir)
    except CryptoError:
        return _fail(name, "no keyring to compare (see the keyring line)")
    recorded = await recorded_fingerprint(ctx.db)
    if recorded is None:
        return _fail(
            name,
            "the database has no keyring fingerprint yet: run `portal migrate` with this "
            "installation's own secrets in place",
        )
    if recorded != keyring_fingerprint(keyring):
        return _fail(name, mismatch_message(ctx.settings.keyring_dir))
    return _ok(name, "the secrets belong to this database")


async def check_calendar(ctx: CheckContext) -> CheckResult:
    name = "working-day calendar"
    from investigator.domain.calendar import WorkCalendar, load_calendar

    calendar = WorkCalendar()
    if ctx.database_ok and ctx.db is not None:
        async with ctx.db.read() as session:
            calendar = await load_calendar(session)
    years = (ctx.today.year, ctx.today.year + 1)
    missing = [y for y in years if not calendar.has_year(y)]
    if missing:
        listed = ", ".join(str(y) for y in missing)
        return _fail(
            name,
            f"no confirmed schedule for {listed}: deadlines running into it are provisional "
            "(Monday to Friday); upgrade the chinesecalendar package or enter and confirm the "
            "year on /workspace/calendar",
        )
    return _ok(name, f"covers {years[0]} and {years[1]}")


async def check_smtp(ctx: CheckContext) -> CheckResult:
    name = "mail server"
    settings = ctx.settings
    if not settings.smtp_host:
        return _ok(name, "not configured (no notification mail is sent)")
    from portal.kernel.mailer import Mailer, MailError

    try:
        await anyio.to_thread.run_sync(Mailer(settings).probe_sync)
    except MailError as exc:
        return _fail(name, f"{exc}: check PORTAL_SMTP_HOST, _PORT, _STARTTLS, _USER, _PASSWORD")
    steps = ["a connection"]
    steps += ["STARTTLS"] if settings.smtp_starttls else []
    steps += ["the login"] if settings.smtp_user else []
    return _ok(name, f"{settings.smtp_host}:{settings.smtp_port} accepts {', '.join(steps)}")


async def _active_with_role(db: Database, role: str) -> int:
    from investigator.roles import roles_of
    from portal.kernel.db.models import User

    async with db.read() as session:
        stored = (await session.execute(select(User.roles).where(User.disabled.is_(False)))).all()
    return sum(1 for (roles,) in stored if role in roles_of(roles))


def _role_check(name: str, role: str, why: str) -> Check:
    async def check(ctx: CheckContext) -> CheckResult:
        if not ctx.database_ok or ctx.db is None:
            return _no_database(name)
        count = await _active_with_role(ctx.db, role)
        if count == 0:
            return _fail(name, f"no active account has this role: {why}")
        return _ok(name, f"{count} active")

    check.__name__ = f"check_{role}"
    return check


check_intake_officers = _role_check(
    "intake officers",
    "intake_officer",
    "new reports are encrypted to them; add one on /workspace/users "
    "(or `portal user add NAME --roles intake_officer`)",
)
check_identity_custodians = _role_check(
    "identity custodians",
    "identity_custodian",
    "named reporters' identities are encrypted to them; appoint one on /workspace/users",
)


async def check_on_duty(ctx: CheckContext) -> CheckResult:
    name = "on duty"
    if not ctx.database_ok or ctx.db is None:
        return _no_database(name)
    from investigator.domain.duty_roster import on_duty

    async with ctx.db.read() as session:
        people = await on_duty(session)
    if not people:
        return _fail(
            name,
            "nobody is on duty: urgent reports would alert no one; an administrator sets "
            "the duty roster on /workspace/notifications",
        )
    return _ok(name, f"{len(people)} active staff member(s) on duty")


CHECKS: list[Check] = [
    check_database,
    check_schema,
    check_redis,
    check_file_store,
    check_keyring,
    check_keyring_binding,
    check_calendar,
    check_smtp,
    check_intake_officers,
    check_identity_custodians,
    check_on_duty,
]


async def run_checks(settings: Settings, checks: Sequence[Check] = CHECKS) -> list[CheckResult]:
    """Every check in order (each bounded in time); a crash in one is its own FAIL line."""
    ctx = CheckContext(settings)
    results: list[CheckResult] = []
    try:
        for check in checks:
            label = check.__name__.removeprefix("check_").replace("_", " ")
            try:
                result = await asyncio.wait_for(check(ctx), CHECK_TIMEOUT_S)
            except TimeoutError:
                result = _fail(label, f"no answer within {CHECK_TIMEOUT_S:.0f} s")
            except Exception as exc:  # noqa: BLE001 - reported by type, never a traceback
                result = _fail(label, f"failed unexpectedly ({type(exc).__name__})")
            results.append(result)
    finally:
        if ctx.db is not None:
            await ctx.db.dispose()
    return results
