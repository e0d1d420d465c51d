"""Running the Alembic history shipped in this package, from async code.

Forward-only: every revision's `downgrade` refuses. One history applies to SQLite and PostgreSQL.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

_SCRIPT_LOCATION = str(Path(__file__).parent)

# Any fixed 64-bit number: the advisory lock that keeps two `db migrate` runs from interleaving.
_MIGRATION_LOCK_KEY = 0x70617963_6F726531


@dataclass(frozen=True, slots=True)
class MigrationStatus:
    current: str | None
    head: str
    pending: list[str]
    # The database is at a revision this code does not know: a newer release migrated it. Our
    # migrations expand before they contract, so this code still runs on it (a rolling deploy
    # migrates first, while the old hosts serve on).
    ahead: bool = False

    @property
    def at_head(self) -> bool:
        return not self.pending and not self.ahead

    @property
    def compatible(self) -> bool:
        """This code may serve on the database: at head, or ahead of it."""
        return not self.pending


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", _SCRIPT_LOCATION)
    return config


@cache
def _script() -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config())


def head_revision() -> str:
    head = _script().get_current_head()
    assert head is not None, "the migration history is empty"
    return head


def _pending_after(current: str | None) -> list[str]:
    """Revisions between `current` and head, oldest first."""
    revisions = _script().iterate_revisions(head_revision(), current)
    return [revision.revision for revision in reversed(list(revisions))]


def all_revisions() -> list[str]:
    """The whole history, oldest first."""
    return _pending_after(None)


def _current(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


async def current_revision(connection: AsyncConnection) -> str | None:
    return await connection.run_sync(_current)


@cache
def _known_revisions() -> frozenset[str]:
    return frozenset(script.revision for script in _script().walk_revisions())


def is_known(revision: str | None) -> bool:
    """False for a revision a newer release wrote (asked on every `/ready`: the set is cached)."""
    return revision is None or revision in _known_revisions()


async def migration_status(engine: AsyncEngine) -> MigrationStatus:
    async with engine.connect() as connection:
        current = await current_revision(connection)
    if not is_known(current):
        return MigrationStatus(current=current, head=head_revision(), pending=[], ahead=True)
    return MigrationStatus(current=current, head=head_revision(), pending=_pending_after(current))


def _upgrade(connection: Connection) -> None:
    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


async def upgrade_to_head(engine: AsyncEngine) -> list[str]:
    """Apply every pending revision; returns those applied (empty when already at head)."""
    async with engine.connect() as connection:
        is_postgres = connection.dialect.name == "postgresql"
        if is_postgres:
            await connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": _MIGRATION_LOCK_KEY})
            await connection.commit()
        else:
            await connection.execution_options(paycore_write=True)
        try:
            current = await current_revision(connection)
            # Ahead of this code (a newer release migrated it): nothing of ours to apply.
            pending = _pending_after(current) if is_known(current) else []
            await connection.rollback()
            if pending:
                await connection.run_sync(_upgrade)
                await connection.commit()
            return pending
        finally:
            if is_postgres:
                await connection.execute(
                    text("SELECT pg_advisory_unlock(:key)"),
                    {"key": _MIGRATION_LOCK_KEY},
                )
                await connection.commit()
