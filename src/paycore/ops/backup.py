"""Backups and restores of a paycore database.

PostgreSQL: `pg_dump` in its custom format (compressed, restorable table by table), restored with
`pg_restore` into an empty database. The password travels in `PGPASSWORD`, never on a command line
another user could read. SQLite: the online backup API, which copies a consistent snapshot while
paycore keeps running.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sqlite3
from datetime import datetime
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from paycore.clock import utcnow

PG_SUFFIX = ".dump"
SQLITE_SUFFIX = ".sqlite3"


class BackupError(Exception):
    """A backup or restore that could not be made; the message says why (no credentials)."""


def _is_postgres(url: URL) -> bool:
    return url.get_backend_name() == "postgresql"


def _libpq(url: URL) -> tuple[list[str], dict[str, str]]:
    """Connection arguments for pg_dump/pg_restore, and the environment carrying the password."""
    args = [
        "--host",
        url.host or "127.0.0.1",
        "--port",
        str(url.port or 5432),
        "--dbname",
        url.database or "",
    ]
    if url.username:
        args += ["--username", url.username]
    env = {**os.environ}
    if url.password:
        env["PGPASSWORD"] = str(url.password)
    return args, env


def _sqlite_path(url: URL) -> Path:
    if not url.database or url.database == ":memory:":
        raise BackupError("an in-memory SQLite database has nothing to back up")
    return Path(url.database)


async def _postgres_has_tables(database_url: str) -> bool:
    engine = create_async_engine(database_url, poolclass=NullPool)
    try:
        async with engine.connect() as connection:
            count = await connection.scalar(
                text("SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'")
            )
        return bool(count)
    finally:
        await engine.dispose()


async def _run(command: list[str], env: dict[str, str]) -> None:
    if shutil.which(command[0]) is None:
        raise BackupError(f"{command[0]} is not installed (Debian: postgresql-client)")
    process = await asyncio.create_subprocess_exec(
        *command, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    _, stderr = await process.communicate()
    if process.returncode != 0:
        raise BackupError(f"{command[0]} failed: {stderr.decode(errors='replace').strip()[:500]}")


def _sqlite_copy(source: Path, target: Path) -> None:
    with sqlite3.connect(source) as src, sqlite3.connect(target) as dst:
        src.backup(dst)
    src.close()
    dst.close()


async def backup(database_url: str, directory: Path, *, now: datetime | None = None) -> Path:
    """Write a backup of `database_url` into `directory`; returns the file."""
    url = make_url(database_url)
    directory.mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240 (CLI only: nothing else waits)
    stamp = (now or utcnow()).strftime("%Y%m%dT%H%M%SZ")
    if _is_postgres(url):
        target = directory / f"paycore-{stamp}{PG_SUFFIX}"
        args, env = _libpq(url)
        await _run(["pg_dump", "--format=custom", "--no-owner", "--file", str(target), *args], env)
        return target
    target = directory / f"paycore-{stamp}{SQLITE_SUFFIX}"
    source = _sqlite_path(url)
    if not source.exists():
        raise BackupError(f"no SQLite database at {source}")
    await asyncio.to_thread(_sqlite_copy, source, target)
    return target


async def restore(source: Path, target_url: str) -> None:
    """Restore a backup into an empty database (refuses one that holds tables)."""
    url = make_url(target_url)
    if not source.is_file():  # noqa: ASYNC240 (CLI only: nothing else waits)
        raise BackupError(f"no backup file at {source}")
    if source.suffix == PG_SUFFIX:
        if not _is_postgres(url):
            raise BackupError("a pg_dump backup restores into PostgreSQL only")
        if await _postgres_has_tables(target_url):
            raise BackupError("the target database already holds tables; restore into an empty one")
        args, env = _libpq(url)
        await _run(
            ["pg_restore", "--no-owner", "--exit-on-error", "--single-transaction", *args, str(source)], env
        )
        return
    if source.suffix != SQLITE_SUFFIX:
        raise BackupError(f"{source.name} is not a paycore backup ({PG_SUFFIX} or {SQLITE_SUFFIX})")
    if _is_postgres(url):
        raise BackupError("a SQLite backup restores into SQLite; to move to PostgreSQL use `paycore db copy`")
    target = _sqlite_path(url)
    if target.exists() and target.stat().st_size > 0:
        raise BackupError(f"{target} already exists; restore into a new file")
    target.parent.mkdir(parents=True, exist_ok=True)
    await asyncio.to_thread(_sqlite_copy, source, target)
