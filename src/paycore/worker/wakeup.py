"""Waking the worker early: PostgreSQL `LISTEN paycore_work` on a dedicated connection.

The migrations' trigger notifies on every commit that wrote outbox or fulfillment rows, so a
listening worker delivers within milliseconds instead of at its next poll. The connection is
re-opened with backoff when it drops; meanwhile, and on SQLite or behind PgBouncer (transaction
mode cannot LISTEN), polling alone keeps everything moving.
"""

from __future__ import annotations

import asyncio
import contextlib

import asyncpg
from sqlalchemy.engine import make_url

from paycore.config import Settings
from paycore.logging import get_logger

log = get_logger(__name__)

CHANNEL = "paycore_work"


class Wakeup:
    """An event the worker waits on between polls; `notify` may be called from anywhere."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def notify(self) -> None:
        self._event.set()

    async def wait(self, seconds: float) -> bool:
        """True when woken, False after `seconds`."""
        try:
            await asyncio.wait_for(self._event.wait(), seconds)
        except TimeoutError:
            return False
        finally:
            self._event.clear()
        return True

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None


class PostgresWakeup(Wakeup):
    def __init__(self, settings: Settings) -> None:
        super().__init__()
        self._dsn = (
            make_url(settings.database_url).set(drivername="postgresql").render_as_string(hide_password=False)
        )
        self._timeout = settings.database_connect_timeout_seconds
        self._task: asyncio.Task[None] | None = None
        self.listening = asyncio.Event()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._listen_forever())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _listen_forever(self) -> None:
        delay = 1.0
        while True:
            lost = asyncio.Event()
            try:
                connection = await asyncpg.connect(self._dsn, timeout=self._timeout)
            except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
                log.warning("worker_listen_unavailable", error=repr(exc), retry_in=delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)
                continue
            try:
                connection.add_termination_listener(lambda _, lost=lost: lost.set())
                await connection.add_listener(CHANNEL, lambda *_: self.notify())
                self.listening.set()
                delay = 1.0
                self.notify()  # anything written while we were not listening is due now
                await lost.wait()
                log.warning("worker_listen_lost")
            finally:
                self.listening.clear()
                with contextlib.suppress(Exception):
                    await connection.close(timeout=2)


def wakeup_for(settings: Settings) -> Wakeup:
    if settings.is_sqlite or settings.database_pgbouncer:
        return Wakeup()
    return PostgresWakeup(settings)
