"""Start-up failures an operator can act on: one line naming the setting, host or file, and the fix.

`portal serve`, `portal migrate` and `portal init` check what they need before they start:

* `check_database(url)`: the database answers and its schema is the one this version needs
  ("database has no schema: run `portal migrate`", an older schema, a newer one);
* `check_files(folder)`: the local file store can be written;
* `check_listen(host, port)`: the address is free ("cannot listen on HOST:PORT ...");
* `explain(error, url)`: any other exception met while starting (a database that cannot be
  reached during `portal migrate`, say) turned into one line.

No message carries a password, SQL text or SQL parameters: the URL is shown as host:port (or
the SQLite file), and exceptions by type name and a fixed reason.
"""

from __future__ import annotations

import errno
import socket
import sqlite3
from pathlib import Path

from sqlalchemy import exc
from sqlalchemy.engine import make_url

__all__ = [
    "StartupError",
    "check_database",
    "check_files",
    "check_listen",
    "database_place",
    "explain",
]


class StartupError(Exception):
    """A one-line reason the command cannot start, with the fix."""


def database_place(url: str) -> str:
    """Where the database is, without credentials: ``HOST:PORT`` or the SQLite file."""
    try:
        parsed = make_url(url)
    except exc.ArgumentError:
        return "(unparsable DATABASE_URL)"
    if parsed.get_backend_name() == "sqlite":
        return parsed.database or ":memory:"
    return f"{parsed.host or 'localhost'}:{parsed.port or 5432}"


_START = "start PostgreSQL or correct DATABASE_URL"
_CREDENTIALS = "correct the user name and password in DATABASE_URL"
_REASONS: dict[str, str] = {
    "InvalidPasswordError": f"the user name or password was refused; {_CREDENTIALS}",
    "InvalidAuthorizationSpecificationError": f"the user is not allowed in; {_CREDENTIALS}",
    "InvalidCatalogNameError": "the database named there does not exist; create it "
    "(`createdb`) or correct DATABASE_URL",
    "CannotConnectNowError": "PostgreSQL is starting up or shutting down; try again shortly",
    "TooManyConnectionsError": "PostgreSQL has no free connection slots; raise "
    "max_connections or run fewer instances",
    "gaierror": "the host name does not resolve; correct DATABASE_URL",
    "ConnectionRefusedError": f"connection refused; {_START}",
    "TimeoutError": f"no answer (timed out); {_START}",
}


def _chain(error: BaseException) -> list[BaseException]:
    out: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and current not in out and len(out) < 10:
        out.append(current)
        current = current.__cause__ or current.__context__
    return out


def _reason(error: BaseException) -> str | None:
    """A fixed reason for a connection failure, or None if ``error`` is not one."""
    for link in _chain(error):
        name = type(link).__name__
        if name in _REASONS:
            return _REASONS[name]
        if isinstance(link, ConnectionRefusedError):
            return _REASONS["ConnectionRefusedError"]
        if isinstance(link, TimeoutError):
            return _REASONS["TimeoutError"]
        if isinstance(link, OSError) and link.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH):
            return f"the host is unreachable; {_START}"
        if isinstance(link, socket.gaierror):
            return _REASONS["gaierror"]
        if isinstance(link, sqlite3.OperationalError) and "unable to open" in str(link):
            return "the file cannot be opened; check that its folder exists and is writable"
    return None


def _unreachable(url: str, reason: str) -> StartupError:
    place = database_place(url)
    if url.startswith("sqlite"):
        return StartupError(
            f"cannot open the SQLite database {place} (DATABASE_URL / PORTAL_DATA_DIR): {reason}"
        )
    return StartupError(f"cannot reach the database at {place} (DATABASE_URL): {reason}")


def _is_missing_table(error: BaseException) -> bool:
    for link in _chain(error):
        name = type(link).__name__
        if name == "UndefinedTableError":
            return True
        if isinstance(link, sqlite3.OperationalError) and "no such table" in str(link):
            return True
    return False


async def _schema_revision(url: str) -> str | None:
    """The schema's Alembic revision (None: no schema at all). A plain engine, not
    `portal.kernel.db.engine.Database`, so that a failure here is not also logged as an outage."""
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    from portal.kernel.db.engine import CONNECT_TIMEOUT_S

    args = {} if url.startswith("sqlite") else {"timeout": CONNECT_TIMEOUT_S}
    engine = create_async_engine(url, hide_parameters=True, connect_args=args)
    try:
        async with engine.connect() as conn:
            try:
                row = (await conn.execute(text("SELECT version_num FROM alembic_version"))).first()
            except exc.DBAPIError as error:
                if _is_missing_table(error):
                    return None
                raise
            return None if row is None else str(row[0])
    except (OSError, exc.DBAPIError) as error:
        reason = _reason(error)
        if reason is None:
            raise
        raise _unreachable(url, reason) from None
    finally:
        await engine.dispose()


def _known_revisions() -> set[str]:
    from alembic.script import ScriptDirectory

    from portal.kernel.db.migrate import alembic_config

    script = ScriptDirectory.from_config(alembic_config("sqlite+aiosqlite://"))
    return {rev.revision for rev in script.walk_revisions()}


async def check_reachable(url: str) -> None:
    """PostgreSQL answers (a SQLite file is created by the command itself); else one line."""
    if not url.startswith("sqlite"):
        await _schema_revision(url)


async def check_database(url: str) -> None:
    """The database answers and holds the schema this version needs; else `StartupError`."""
    from portal.kernel.db.migrate import head_revision

    if url.startswith("sqlite"):
        path = Path(database_place(url))
        if not path.exists():
            raise StartupError(
                f"the SQLite database {path} does not exist (DATABASE_URL / PORTAL_DATA_DIR): "
                "run `portal init` or correct PORTAL_DATA_DIR"
            )
    revision = await _schema_revision(url)
    head = head_revision()
    if revision is None:
        raise StartupError(
            f"database at {database_place(url)} has no schema: run `portal migrate` (or "
            "`portal init` for a new installation)"
        )
    if revision == head:
        return
    if revision in _known_revisions():
        raise StartupError(
            f"database at {database_place(url)} has an older schema ({revision}; this "
            f"version needs {head}): run `portal migrate`"
        )
    raise StartupError(
        f"database at {database_place(url)} has schema {revision}, which this version of the "
        f"portal does not know (newest: {head}): install the matching portal version"
    )


def check_files(files_dir: Path) -> None:
    """The local file store's folder can be created and written (`PORTAL_DATA_DIR`)."""
    probe = files_dir / ".start-probe"
    try:
        files_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        probe.write_bytes(b"ok")
        probe.unlink()
    except OSError as error:
        raise StartupError(
            f"cannot write to the file store {files_dir} (PORTAL_DATA_DIR): "
            f"{error.strerror or type(error).__name__}; give the portal's user write access "
            "or correct PORTAL_DATA_DIR"
        ) from None


def check_listen(host: str, port: int) -> None:
    """The address can be listened on (checked just before the server binds it)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror:
        raise StartupError(
            f"cannot listen on {host}:{port} (PORTAL_HOST): the host name does not resolve; "
            "set PORTAL_HOST to an address of this machine, e.g. 127.0.0.1"
        ) from None
    family, kind, proto, _name, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                raise StartupError(
                    f"cannot listen on {host}:{port} (PORTAL_HOST/PORTAL_PORT): the address "
                    "is already in use; stop the other server or choose another PORTAL_PORT"
                ) from None
            if error.errno == errno.EACCES:
                raise StartupError(
                    f"cannot listen on {host}:{port} (PORTAL_PORT): permission denied; "
                    "use a port above 1023 behind the reverse proxy"
                ) from None
            if error.errno == errno.EADDRNOTAVAIL:
                raise StartupError(
                    f"cannot listen on {host}:{port} (PORTAL_HOST): not an address of this "
                    "machine; correct PORTAL_HOST"
                ) from None
            raise StartupError(
                f"cannot listen on {host}:{port} (PORTAL_HOST/PORTAL_PORT): "
                f"{error.strerror or type(error).__name__}"
            ) from None


def explain(error: BaseException, url: str | None) -> str:
    """One line for an exception met while starting or migrating (no SQL, no parameters)."""
    if isinstance(error, StartupError):
        return str(error)
    if url is not None:
        reason = _reason(error)
        if reason is not None:
            return str(_unreachable(url, reason))
        if isinstance(error, exc.SQLAlchemyError):
            return (
                f"the database at {database_place(url)} (DATABASE_URL) answered with an error "
                f"({' <- '.join(type(e).__name__ for e in _chain(error))}); run the command "
                "again with --debug for the details"
            )
    return (
        f"unexpected {type(error).__name__}; run the command again with --debug for the traceback"
    )
