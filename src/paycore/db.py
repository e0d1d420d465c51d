"""Engine, sessions and the declarative base, for SQLite and PostgreSQL alike.

SQLite allows one writer at a time. Write transactions here open with `BEGIN IMMEDIATE` (so the
write lock is taken up front, not half-way through), wait on a busy timeout, and are serialized
inside the process by one asyncio lock, so concurrent requests queue instead of failing with
"database is locked". PostgreSQL takes none of these paths.

Services receive an `AsyncSession` and never commit; `Database.session()` is the boundary that
commits (or rolls back) — used by request dependencies, CLI commands and worker jobs.
"""

from __future__ import annotations

import asyncio
import enum
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import JSON, DateTime, Enum, ForeignKey, MetaData, String, Table, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Connection, Dialect, make_url
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase, mapped_column
from sqlalchemy.pool import NullPool
from sqlalchemy.types import TypeDecorator

from paycore.clock import utcnow
from paycore.config import Settings
from paycore.ids import new_id

_WRITE_OPTION = "paycore_write"

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on both backends (SQLite drops the offset on its own)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:  # noqa: ARG002
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        try:
            return value.astimezone(UTC)
        except OverflowError:
            raise ValueError("datetime out of range") from None

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:  # noqa: ARG002
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


JSONDocument = JSON().with_variant(JSONB(), "postgresql")


def _enum_values(enum_class: type[enum.Enum]) -> list[str]:
    return [str(member.value) for member in enum_class]


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    # Enums are stored as their string values in a VARCHAR: adding a state later is a code
    # change, not a PostgreSQL ENUM migration or a SQLite table rebuild.
    type_annotation_map = {  # noqa: RUF012 (SQLAlchemy reads it as a class attribute)
        datetime: UTCDateTime(),
        dict[str, Any]: JSONDocument,
        list[str]: JSONDocument,
        enum.Enum: Enum(enum.Enum, native_enum=False, length=32, values_callable=_enum_values),
    }


def _configure_sqlite(engine: AsyncEngine, busy_timeout_ms: int) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _: Any) -> None:
        # Take transaction control away from the sqlite3 module so BEGIN is ours to emit.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Connection) -> None:
        immediate = connection.get_execution_options().get(_WRITE_OPTION, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def create_engine(settings: Settings, *, url: str | None = None) -> AsyncEngine:
    """Every engine hides statement parameters from its errors: a traceback that reaches a log
    must not carry what was being written (emails, hashes, sealed values)."""
    database_url = make_url(url or settings.database_url)
    if database_url.get_backend_name() == "sqlite":
        database = database_url.database
        if database and database != ":memory:" and not database.startswith("file:"):
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(database_url, hide_parameters=True)
        _configure_sqlite(engine, settings.database_busy_timeout_ms)
        return engine

    connect_args: dict[str, Any] = {
        "timeout": settings.database_connect_timeout_seconds,
        # JIT compiles plans for queries it guesses are big; for short OLTP statements the guess
        # costs far more than it saves (seen as 600 ms claims on a long outbox backlog).
        "server_settings": {"application_name": "paycore", "jit": "off"},
    }
    if settings.database_pgbouncer:
        # PgBouncer in transaction mode hands each transaction a different server connection:
        # no prepared statement may outlive its transaction, and names must never collide.
        connect_args |= {
            # PgBouncer forwards only the startup parameters it tracks.
            "server_settings": {"application_name": "paycore"},
            "statement_cache_size": 0,
            "prepared_statement_cache_size": 0,
            "prepared_statement_name_func": lambda: f"__paycore_{uuid.uuid4().hex}__",
        }
        return create_async_engine(
            database_url, poolclass=NullPool, connect_args=connect_args, hide_parameters=True
        )
    # No pre-ping: on asyncpg it costs three round trips per checkout. A connection that died is
    # discarded by the pool on its first error (the request answers 503, a retry succeeds), and
    # recycling bounds how long an idle connection may sit behind a proxy's idle timeout.
    return create_async_engine(
        database_url,
        pool_size=settings.database_pool_size,
        max_overflow=settings.database_max_overflow,
        pool_recycle=1800,
        connect_args=connect_args,
        hide_parameters=True,
    )


class _TaskReentrantLock:
    def __init__(self) -> None:
        self._lock = asyncio.Lock()
        self._owner: asyncio.Task[object] | None = None
        self._depth = 0

    @asynccontextmanager
    async def hold(self) -> AsyncIterator[None]:
        task = asyncio.current_task()
        if task is not None and self._owner is task:
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
            return
        async with self._lock:
            self._owner, self._depth = task, 1
            try:
                yield
            finally:
                self._owner, self._depth = None, 0


class Database:
    """Hands out sessions that commit at the end of their block.

    `bind` pins every session to one connection already inside a transaction (tests use it so
    each test's writes become savepoints of a transaction that is rolled back at the end).
    """

    def __init__(self, engine: AsyncEngine, *, bind: AsyncConnection | None = None) -> None:
        self.engine = engine
        self.is_sqlite = engine.dialect.name == "sqlite"
        self._bind = bind
        self._write_lock = asyncio.Lock() if self.is_sqlite else None
        # Sessions on one shared connection must take turns (concurrent tasks would interleave
        # their savepoints); nested sessions of the same task are fine.
        self._bound_turns = _TaskReentrantLock() if bind is not None else None
        self._sessions = async_sessionmaker(
            bind=bind or engine,
            expire_on_commit=False,
            join_transaction_mode="create_savepoint",
        )
        # PostgreSQL commits a statement sent outside a transaction on its own: a write that is
        # one statement saves the BEGIN and COMMIT round trips. Not for SQLite (its writes must
        # take the write lock) nor a bound connection (tests' writes stay savepoints).
        self._autocommit_sessions = (
            async_sessionmaker(
                bind=engine.execution_options(isolation_level="AUTOCOMMIT"), expire_on_commit=False
            )
            if bind is None and not self.is_sqlite
            else None
        )

    @property
    def dialect_name(self) -> str:
        return self.engine.dialect.name

    @asynccontextmanager
    async def session(self, *, write: bool = True) -> AsyncIterator[AsyncSession]:
        """A session in its own transaction: committed when the block ends, rolled back on error."""
        if self._bound_turns is not None:
            async with self._bound_turns.hold(), self._transaction(write=write) as session:
                yield session
        elif write and self._write_lock is not None:
            async with self._write_lock, self._transaction(write=True) as session:
                yield session
        else:
            async with self._transaction(write=write) as session:
                yield session

    @asynccontextmanager
    async def single_statement(self) -> AsyncIterator[AsyncSession]:
        """A session for a write that is one statement (and reads that need no common snapshot).

        On PostgreSQL each statement commits on its own (autocommit): no BEGIN, no COMMIT. Elsewhere
        it is `session(write=True)`. Whatever runs in it must be correct statement by statement.
        """
        if self._autocommit_sessions is None:
            async with self.session(write=True) as session:
                yield session
            return
        async with self._autocommit_sessions() as session:
            yield session

    @asynccontextmanager
    async def _transaction(self, *, write: bool) -> AsyncIterator[AsyncSession]:
        options = {_WRITE_OPTION: True} if write and self.is_sqlite else {}
        async with self._sessions(execution_options=options) as session:
            try:
                yield session
                await session.commit()
            except BaseException:
                await session.rollback()
                raise

    async def dispose(self) -> None:
        if self._bind is None:
            await self.engine.dispose()


def table_of(model: type[Base]) -> Table:
    """A model's Core table, for hot paths written as Core statements (`__table__` is typed as
    any FromClause)."""
    table = model.__table__
    assert isinstance(table, Table)
    return table


def upsert_insert(session: AsyncSession, table: Any) -> Any:
    """The dialect's INSERT construct, which knows `on_conflict_do_nothing/do_update`."""
    return dialect_insert(session.get_bind().dialect.name, table)


def dialect_insert(dialect_name: str, table: Any) -> Any:
    """`upsert_insert` by dialect name: for statements built once per dialect and reused (hot
    paths: a reused statement is neither rebuilt nor re-keyed for the compiled cache)."""
    if dialect_name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def dialect_of(session: AsyncSession) -> str:
    return session.get_bind().dialect.name


def id_column(prefix: str) -> Any:
    """A primary key holding an opaque `prefix_…` id, generated on insert."""
    return mapped_column(String(40), primary_key=True, default=lambda: new_id(prefix))


def tenant_column() -> Any:
    return mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))


def created_column() -> Any:
    return mapped_column(default=utcnow)


def updated_column() -> Any:
    return mapped_column(default=utcnow, onupdate=utcnow)
