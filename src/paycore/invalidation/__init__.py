"""Cache invalidation across processes: `publish(kind, key)` after a change commits, and every
process that subscribed a callback for `kind` drops that key within a second.

Redis pub/sub carries it when Redis is configured (it also works behind PgBouncer); otherwise
PostgreSQL `LISTEN/NOTIFY`; on SQLite (one process) or PgBouncer without Redis it stays in the
process, and each cache's own TTL bounds how stale another process may be.
"""

from __future__ import annotations

from paycore.config import Settings
from paycore.db import Database
from paycore.invalidation.channel import CacheKind, InvalidationChannel
from paycore.logging import get_logger

__all__ = ["CacheKind", "InvalidationChannel", "invalidations_for", "publish_from_outside"]

log = get_logger(__name__)


def invalidations_for(settings: Settings) -> InvalidationChannel:
    if settings.redis_url is not None:
        from paycore.invalidation.redis import RedisInvalidations

        return RedisInvalidations(settings.redis_url.get_secret_value())
    if settings.database_url.startswith("postgresql") and not settings.database_pgbouncer:
        from paycore.invalidation.postgres import PostgresInvalidations

        return PostgresInvalidations(settings)
    if not settings.is_sqlite:
        log.warning(
            "cache_invalidation_local_only",
            why="PgBouncer cannot LISTEN and no Redis is configured: other processes see "
            "suspensions and key changes only when their cache entries expire",
        )
    return InvalidationChannel()


async def publish_from_outside(
    settings: Settings, database: Database, kind: CacheKind, key: str | None
) -> None:
    """Tell every server process, from one that does not serve (a CLI command), after the change
    committed. On SQLite nobody can be told: the servers' short unconfirmed TTL bounds it."""
    channel = invalidations_for(settings)
    await channel.open_for_publishing(database)
    try:
        await channel.publish(kind, key)
    finally:
        await channel.stop()
