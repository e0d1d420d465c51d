"""Waking the worker early: PostgreSQL `LISTEN paycore_work` on a dedicated connection.

The migrations' trigger notifies on every commit that wrote outbox or fulfillment rows, so a
listening worker delivers within milliseconds instead of at its next poll. The connection is
re-opened with backoff when it drops; meanwhile, and on SQLite or behind PgBouncer (transaction
mode cannot LISTEN), polling alone keeps everything moving.
"""

from __future__ import annotations

import asyncio
import contextlib

from paycore.config import Settings
from paycore.pg_listen import listen_forever

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
        self._settings = settings
        self._task: asyncio.Task[None] | None = None
        self.listening = asyncio.Event()

    async def start(self) -> None:
        self._task = asyncio.create_task(
            listen_forever(
                self._settings,
                CHANNEL,
                on_payload=lambda _: self.notify(),
                # Anything written while we were not listening is due now.
                on_listening=self.notify,
                listening=self.listening,
                name="worker",
            )
        )

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


def wakeup_for(settings: Settings) -> Wakeup:
    if settings.is_sqlite or settings.database_pgbouncer:
        return Wakeup()
    return PostgresWakeup(settings)
