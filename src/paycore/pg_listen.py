"""One PostgreSQL `LISTEN` held open for the life of a process, re-opened with backoff.

Used by the worker's wake-up and by cache invalidation. It needs a direct server connection:
behind PgBouncer in transaction mode a `LISTEN` would be lost with its transaction.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

import asyncpg
from sqlalchemy.engine import make_url

from paycore.config import Settings
from paycore.logging import get_logger

log = get_logger(__name__)

MAX_RETRY_SECONDS = 30.0


def listen_dsn(settings: Settings) -> str:
    """asyncpg's DSN for the configured database (SQLAlchemy's URL names the driver)."""
    return make_url(settings.database_url).set(drivername="postgresql").render_as_string(hide_password=False)


async def listen_forever(
    settings: Settings,
    channel: str,
    *,
    on_payload: Callable[[str], None],
    on_listening: Callable[[], None],
    listening: asyncio.Event,
    name: str,
) -> None:
    """Listen on `channel` until cancelled. `on_listening` runs after every (re)connection:
    whatever was sent while nobody listened is lost, so the caller catches up then."""
    dsn = listen_dsn(settings)
    delay = 1.0
    while True:
        lost = asyncio.Event()
        try:
            connection = await asyncpg.connect(dsn, timeout=settings.database_connect_timeout_seconds)
        except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
            log.warning(f"{name}_listen_unavailable", error=repr(exc), retry_in=delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, MAX_RETRY_SECONDS)
            continue
        try:
            connection.add_termination_listener(lambda _, lost=lost: lost.set())
            await connection.add_listener(channel, lambda *args: on_payload(str(args[-1])))
            listening.set()
            delay = 1.0
            on_listening()
            await lost.wait()
            log.warning(f"{name}_listen_lost")
        finally:
            listening.clear()
            with contextlib.suppress(Exception):
                await connection.close(timeout=2)
