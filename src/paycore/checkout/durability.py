"""The durability gate: live money only on a database that keeps it.

Checked at every live-mode checkout (not cached), so an outage or a pending migration closes the
gate at once. Test mode works on any database.
"""

from __future__ import annotations

from sqlalchemy import text

from paycore.db import Database
from paycore.errors import ServiceUnavailable
from paycore.logging import get_logger
from paycore.migrations import migration_status

log = get_logger(__name__)

# What a storefront sees when the gate is shut: live payments are off, test mode still works.
GATE_CLOSED = "live_payments_unavailable"
LIVE_PAYMENTS_NEED_POSTGRES = (
    "Live-mode payments need PostgreSQL; this deployment runs on SQLite. "
    "Set PAYCORE_DATABASE_URL to a PostgreSQL database (docs/operations.md)."
)


async def require_durable_database(database: Database) -> None:
    if database.dialect_name != "postgresql":
        raise ServiceUnavailable(LIVE_PAYMENTS_NEED_POSTGRES, code=GATE_CLOSED)
    try:
        async with database.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
        status = await migration_status(database.engine)
    except Exception as exc:  # noqa: BLE001 (any failure of the probe closes the gate)
        log.warning("durability_probe_failed", error=repr(exc))
        raise ServiceUnavailable("The database is not answering; try again.", code=GATE_CLOSED) from None
    if not status.compatible:  # at head, or migrated ahead by a newer release
        raise ServiceUnavailable(
            "The database schema is not at the current version; try again after the deploy.",
            code=GATE_CLOSED,
        )
