"""Moving an installation between stores without decrypting anything (O3).

`copy_database(src, dst)` copies every row, table by table in foreign-key order, from one
database to another (SQLite <-> PostgreSQL). The destination is migrated to the latest schema
first and must hold no cases and no staff accounts (the seed rows the migrations add are
replaced by the source's). Sealed columns are bytes and are copied as bytes: no key is loaded.
The source is read inside one transaction (a consistent snapshot on PostgreSQL with
REPEATABLE READ, and on SQLite in WAL mode). Self-references (a case linked to a case, a working
copy naming its original, a superior) are written in a second pass.

`copy_files(src, dst)` copies every object of one file store to another byte for byte (the
objects are ciphertext streams; their keys are kept).

`migrate_installation(settings, to_database, to_s3)` is `portal migrate-data`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import anyio.to_thread
from sqlalchemy import DateTime, Table, func, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

from portal.kernel.db.engine import Database
from portal.kernel.db.migrate import head_revision, upgrade_to_head
from portal.kernel.db.models import Base
from portal.kernel.progress import Progress
from portal.kernel.storage import FileStore

BATCH = 500


class MigrateError(Exception):
    pass


@dataclass
class CopyReport:
    rows: dict[str, int] = field(default_factory=dict)
    objects: int = 0
    bytes: int = 0

    def lines(self) -> list[str]:
        total = sum(self.rows.values())
        out = [f"database: {total} rows in {len(self.rows)} tables"]
        if self.objects or self.bytes:
            out.append(f"files: {self.objects} objects, {self.bytes} bytes (ciphertext)")
        return out


def tables() -> list[Table]:
    """Every table in foreign-key dependency order (parents first)."""
    return list(Base.metadata.sorted_tables)


def _self_refs(table: Table) -> list[str]:
    return [fk.parent.name for fk in table.foreign_keys if fk.column.table is table]


def _fix_value(column: Any, value: Any) -> Any:
    # SQLite hands back naive datetimes for timezone-aware columns; the portal stores UTC.
    if (
        isinstance(value, dt.datetime)
        and value.tzinfo is None
        and isinstance(column.type, DateTime)
        and column.type.timezone
    ):
        return value.replace(tzinfo=dt.UTC)
    return value


async def _revision(conn: AsyncConnection) -> str | None:
    try:
        row = (await conn.execute(text("SELECT version_num FROM alembic_version"))).first()
    except Exception:  # noqa: BLE001 - no table: not a portal database
        return None
    return None if row is None else str(row[0])


async def _assert_empty(conn: AsyncConnection) -> None:
    from portal.kernel.db.models import Case, User

    for model in (Case, User):
        count = (await conn.execute(select(func.count()).select_from(model))).scalar_one()
        if count:
            raise MigrateError(
                f"the destination database is not empty ({count} rows in "
                f"{model.__tablename__}); copy only into a new, empty database"
            )


async def _fix_sequences(conn: AsyncConnection) -> None:
    for table in tables():
        for col in table.primary_key.columns:
            if col.autoincrement is True or (
                col.autoincrement == "auto" and col.type.python_type is int
            ):
                top = (await conn.execute(select(func.max(col)))).scalar_one()
                await conn.execute(
                    text("SELECT setval(pg_get_serial_sequence(:t, :c), :v, false)"),
                    {"t": table.name, "c": col.name, "v": int(top or 0) + 1},
                )


async def copy_database(
    src_url: str,
    dst_url: str,
    *,
    progress: Progress | None = None,
) -> CopyReport:
    """Copy every row from ``src_url`` into the empty database at ``dst_url``."""
    if src_url == dst_url:
        raise MigrateError("source and destination are the same database")
    source = Database(src_url)
    try:
        async with source.read() as session:
            if not source.is_sqlite:
                await session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
            src_conn = await session.connection()
            head = head_revision()
            revision = await _revision(src_conn)
            if revision != head:
                raise MigrateError(
                    f"the source database is at schema {revision}, not {head}: "
                    "run `portal migrate` on it first"
                )
            await anyio.to_thread.run_sync(upgrade_to_head, dst_url)
            return await _copy_rows(src_conn, dst_url, progress)
    finally:
        await source.dispose()


async def _copy_rows(src: AsyncConnection, dst_url: str, progress: Progress | None) -> CopyReport:
    report = CopyReport()
    show = progress or Progress.off()
    engine = create_async_engine(dst_url, hide_parameters=True)
    if dst_url.startswith("sqlite"):
        from portal.kernel.db.engine import _sqlite_setup

        _sqlite_setup(engine, immediate=True)
    try:
        async with engine.begin() as dst:
            await _assert_empty(dst)
            for table in reversed(tables()):  # seed rows from the migrations give way
                await dst.execute(table.delete())
            everything = tables()
            for done, table in enumerate(everything):
                show.step("tables", done, len(everything))
                selfrefs = _self_refs(table)
                pk = [c.name for c in table.primary_key.columns]
                later: list[dict[str, Any]] = []
                count = 0
                result = await src.stream(select(table))
                async for chunk in result.mappings().partitions(BATCH):
                    rows = [
                        {c.name: _fix_value(c, row[c.name]) for c in table.columns} for row in chunk
                    ]
                    for row in rows:
                        refs = {name: row[name] for name in selfrefs if row[name] is not None}
                        if refs:
                            later.append({**{k: row[k] for k in pk}, **refs})
                            for name in refs:
                                row[name] = None
                    await dst.execute(table.insert(), rows)
                    count += len(rows)
                for ref in later:
                    where = [table.c[k] == ref[k] for k in pk]
                    values = {k: v for k, v in ref.items() if k not in pk}
                    await dst.execute(update(table).where(*where).values(**values))
                report.rows[table.name] = count
            show.step("tables", len(everything), len(everything))
            if dst.dialect.name == "postgresql":
                await _fix_sequences(dst)
            # verify: the same number of rows on both sides
            for table in tables():
                got = (await dst.execute(select(func.count()).select_from(table))).scalar_one()
                if got != report.rows[table.name]:
                    raise MigrateError(
                        f"{table.name}: copied {report.rows[table.name]}, found {got}"
                    )
    finally:
        await engine.dispose()
    return report


async def copy_files(
    src: FileStore, dst: FileStore, progress: Progress | None = None
) -> tuple[int, int]:
    """Copy every object byte for byte (ciphertext stays ciphertext); (objects, bytes)."""
    objects = size = 0
    keys = await src.keys()
    show = progress or Progress.off()
    show.step("files", 0, len(keys))
    for key in keys:
        writer = await dst.writer(key)
        try:
            async for chunk in src.read(key):
                await writer.write(chunk)
            size += await writer.commit()
        except BaseException:
            await writer.abort()
            raise
        objects += 1
        show.step("files", objects, len(keys))
    return objects, size


async def migrate_installation(
    settings: Any,
    *,
    to_database: str,
    to_s3: bool = False,
    progress: Progress | None = None,
) -> CopyReport:
    """`portal migrate-data`: the current database (and local files) into ``to_database``
    (and the S3 bucket named by PORTAL_S3_*). Nothing is decrypted; the source is left as it
    was, so the switch-over is: stop, migrate, point DATABASE_URL (and PORTAL_S3_BUCKET) at
    the copies, start."""
    from portal.kernel.services import file_store
    from portal.kernel.settings import Settings
    from portal.kernel.storage import LocalFileStore

    assert isinstance(settings, Settings)
    if not to_database.startswith(("postgresql+asyncpg://", "sqlite+aiosqlite://")):
        raise MigrateError("--to-database must be a postgresql+asyncpg:// (or sqlite) URL")
    if to_s3 and not settings.s3_bucket:
        raise MigrateError("--to-s3 needs PORTAL_S3_BUCKET (and its endpoint and keys) set")
    report = await copy_database(settings.database_url, to_database, progress=progress)
    if to_s3:
        source = LocalFileStore(settings.files_dir)
        target = file_store(settings)
        ensure = getattr(target, "ensure", None)
        if ensure is not None:
            await anyio.to_thread.run_sync(ensure)
        report.objects, report.bytes = await copy_files(source, target, progress)
    return report
