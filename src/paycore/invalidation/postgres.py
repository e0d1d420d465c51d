"""Invalidation over PostgreSQL: `pg_notify` to send, a dedicated `LISTEN` connection to hear."""

from __future__ import annotations

import asyncio
import contextlib

from sqlalchemy import text

from paycore.config import Settings
from paycore.db import Database
from paycore.invalidation.channel import CHANNEL, InvalidationChannel
from paycore.logging import get_logger
from paycore.pg_listen import listen_forever

log = get_logger(__name__)


class PostgresInvalidations(InvalidationChannel):
    def __init__(self, settings: Settings) -> None:
        super().__init__()
        self._settings = settings
        self._database: Database | None = None
        self._task: asyncio.Task[None] | None = None
        self.listening = asyncio.Event()

    @property
    def hears_every_process(self) -> bool:
        return self.listening.is_set()

    async def start(self, database: Database) -> None:
        self.started = True
        self._database = database
        self._task = asyncio.create_task(
            listen_forever(
                self._settings,
                CHANNEL,
                on_payload=self.receive,
                on_listening=self.invalidate_everything,
                listening=self.listening,
                name="cache_invalidation",
            )
        )

    async def open_for_publishing(self, database: Database) -> None:
        self._database = database

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self.started = False

    async def _broadcast(self, payload: str) -> None:
        if self._database is None:  # not started: an app served without its lifespan (tests)
            return
        try:
            async with self._database.engine.connect() as connection:
                await connection.execute(
                    text("SELECT pg_notify(:channel, :payload)"), {"channel": CHANNEL, "payload": payload}
                )
                await connection.commit()
        except Exception as exc:  # noqa: BLE001 (the change is committed; the TTL bounds staleness)
            log.warning("cache_invalidation_unsent", error=repr(exc))
