"""Alembic environment. paycore runs it through `paycore.migrations`, which hands in a connection."""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from paycore.tables import metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        # SQLite cannot ALTER most things; batch mode rebuilds the table instead.
        render_as_batch=connection.dialect.name == "sqlite",
        # paycore emits BEGIN itself on SQLite (see paycore.db), so DDL there is transactional too.
        transactional_ddl=True,
        compare_type=True,
        transaction_per_migration=True,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations with `paycore db migrate`, not the alembic command line")
_run(connection)
