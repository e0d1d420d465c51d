"""`paycore db copy`: every table of one paycore database into another (SQLite → PostgreSQL).

Tables go in foreign-key order, a batch per transaction, in primary-key order, each batch inserted
with ON CONFLICT DO NOTHING — so a copy that stopped half-way is resumed by running it again with
`--resume`: rows already there are skipped. It ends by comparing, table by table, the row count
and a checksum over every column of every row; any difference fails the copy. PostgreSQL
sequences are moved past the copied ids.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import Enum
from typing import Any

from sqlalchemy import Integer, Table, func, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from paycore.config import Settings, normalize_database_url
from paycore.db import create_engine
from paycore.migrations import migration_status
from paycore.tables import metadata

BATCH_SIZE = 1000

# Called after each batch: (table, rows copied in this table so far, rows in the source table).
Progress = Callable[[str, int, int], None]


class CopyError(Exception):
    """A copy that must not start or did not end identical; the message says why."""


@dataclass(frozen=True, slots=True)
class TableCheck:
    table: str
    source_rows: int
    target_rows: int
    source_checksum: str
    target_checksum: str

    @property
    def identical(self) -> bool:
        return self.source_rows == self.target_rows and self.source_checksum == self.target_checksum


def _engine(settings: Settings, url: str) -> AsyncEngine:
    return create_engine(settings, url=normalize_database_url(url))


async def _row_count(connection: AsyncConnection, table: Table) -> int:
    return int(await connection.scalar(select(func.count()).select_from(table)) or 0)


async def _precheck(source: AsyncEngine, target: AsyncEngine, *, resume: bool) -> None:
    source_status = await migration_status(source)
    target_status = await migration_status(target)
    if source_status.current != target_status.current:
        raise CopyError(
            f"the target is at migration {target_status.current}, the source at {source_status.current}: "
            "run `paycore db migrate` on both first"
        )
    if not source_status.at_head:
        raise CopyError("the source is not at the current migration: run `paycore db migrate` on it first")
    if not resume:
        async with target.connect() as connection:
            for table in metadata.sorted_tables:
                if await _row_count(connection, table):
                    raise CopyError(
                        f"the target holds rows ({table.name}): copy into an empty database, or --resume"
                    )


def _insert(dialect: str, table: Table) -> Any:
    statement = postgresql.insert(table) if dialect == "postgresql" else sqlite.insert(table)
    return statement.on_conflict_do_nothing()


async def _copy_table(
    source: AsyncEngine, target: AsyncEngine, table: Table, *, batch_size: int, progress: Progress | None
) -> None:
    (key,) = table.primary_key.columns
    async with source.connect() as reader:
        total = await _row_count(reader, table)
        copied = 0
        last: Any = None
        while True:
            query = select(table).order_by(key).limit(batch_size)
            if last is not None:
                query = query.where(key > last)
            rows = [dict(row._mapping) for row in await reader.execute(query)]
            if not rows:
                break
            async with target.begin() as writer:
                await writer.execute(_insert(target.dialect.name, table), rows)
            copied += len(rows)
            last = rows[-1][key.name]
            if progress is not None:
                progress(table.name, copied, total)
    if progress is not None and total == 0:
        progress(table.name, 0, 0)


async def _advance_sequences(target: AsyncEngine) -> None:
    if target.dialect.name != "postgresql":
        return
    async with target.begin() as connection:
        for table in metadata.sorted_tables:
            (key,) = table.primary_key.columns
            if not isinstance(key.type, Integer):
                continue
            sequence = await connection.scalar(
                text("SELECT pg_get_serial_sequence(:table, :column)"),
                {"table": table.name, "column": key.name},
            )
            if sequence is None:
                continue
            highest = await connection.scalar(select(func.max(key)))
            if highest is not None:
                await connection.execute(
                    text("SELECT setval(:sequence, :value)"), {"sequence": sequence, "value": highest}
                )


def _canonical(value: Any) -> Any:
    """One spelling per value, whichever database it was read from."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bytes):
        return value.hex()
    return value


async def _checksum(engine: AsyncEngine, table: Table) -> tuple[int, str]:
    (key,) = table.primary_key.columns
    digest = hashlib.sha256()
    count = 0
    async with engine.connect() as connection:
        result = await connection.stream(select(table).order_by(key))
        async for row in result:
            values = {name: _canonical(value) for name, value in row._mapping.items()}
            digest.update(json.dumps(values, sort_keys=True, default=str).encode())
            count += 1
    return count, digest.hexdigest()


async def compare(settings: Settings, source_url: str, target_url: str) -> list[TableCheck]:
    source, target = _engine(settings, source_url), _engine(settings, target_url)
    try:
        checks = []
        for table in metadata.sorted_tables:
            source_rows, source_sum = await _checksum(source, table)
            target_rows, target_sum = await _checksum(target, table)
            checks.append(TableCheck(table.name, source_rows, target_rows, source_sum, target_sum))
        return checks
    finally:
        await source.dispose()
        await target.dispose()


async def copy_database(
    settings: Settings,
    source_url: str,
    target_url: str,
    *,
    resume: bool = False,
    batch_size: int = BATCH_SIZE,
    progress: Progress | None = None,
) -> list[TableCheck]:
    """Copy, then compare; raises `CopyError` when the copy may not start or did not end identical."""
    source, target = _engine(settings, source_url), _engine(settings, target_url)
    try:
        await _precheck(source, target, resume=resume)
        for table in metadata.sorted_tables:
            await _copy_table(source, target, table, batch_size=batch_size, progress=progress)
        await _advance_sequences(target)
    finally:
        await source.dispose()
        await target.dispose()
    return await compare(settings, source_url, target_url)
