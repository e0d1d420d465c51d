"""`last_used_at` of API keys, written off the request path.

A request notes that its key was used (at most once per `LAST_USED_RESOLUTION` per key and
process); a background task started with the app writes what was noted every `FLUSH_SECONDS`, in
one statement, and once more at shutdown. An app served without its lifespan (tests) has no such
task: the request writes its note itself, as before.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import datetime
from typing import Protocol

from paycore.auth.service import needs_touch, touch_api_keys
from paycore.db import Database
from paycore.logging import get_logger

log = get_logger(__name__)

FLUSH_SECONDS = 10.0


class UsedKey(Protocol):
    key_id: str
    last_used_at: datetime | None


class KeyUse:
    def __init__(self, *, flush_seconds: float = FLUSH_SECONDS) -> None:
        self._flush_seconds = flush_seconds
        self._pending: dict[str, datetime] = {}
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        return self._task is not None

    def note(self, key: UsedKey, now: datetime) -> bool:
        """True when this use is worth recording (the key's last recorded use is old enough)."""
        if not needs_touch(key.last_used_at, now):
            return False
        key.last_used_at = now
        self._pending[key.key_id] = now
        return True

    async def flush(self, database: Database) -> None:
        pending, self._pending = self._pending, {}
        if not pending:
            return
        async with database.session(write=True) as session:
            await touch_api_keys(session, key_ids=sorted(pending), now=max(pending.values()))

    async def start(self, database: Database) -> None:
        self._task = asyncio.create_task(self._flush_forever(database))

    async def stop(self, database: Database) -> None:
        if self._task is None:
            return
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None
        await self._flush_logging_failure(database)

    async def _flush_forever(self, database: Database) -> None:
        while True:
            await asyncio.sleep(self._flush_seconds)
            await self._flush_logging_failure(database)

    async def _flush_logging_failure(self, database: Database) -> None:
        try:
            await self.flush(database)
        except Exception as exc:  # noqa: BLE001 (a lost "last used" must not stop the flushing)
            log.warning("api_key_last_used_unwritten", error=repr(exc))
