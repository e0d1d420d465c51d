"""Concurrent deliveries of one event within this process: one stores it, the others wait.

A provider that retries eagerly sends the same event many times at once. Each copy that reaches
the inbox insert while the first is still applying waits there, on the unique index, holding a
database connection — a storm of copies can take the whole pool and starve every other request.
Here the copies in one process wait for the first instead, holding nothing: once it has stored
the event they answer "duplicate"; had it failed to store it, the next copy tries in its place
(so no copy is answered 200 for an event that was not stored). Across processes the insert's ON
CONFLICT remains the guard.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import TypeVar

T = TypeVar("T")


class InFlight:
    def __init__(self) -> None:
        self._running: dict[Hashable, asyncio.Future[bool]] = {}

    async def first_or_wait(self, key: Hashable, store: Callable[[], Awaitable[T]], stored: T) -> T:
        """Run `store` unless a call for `key` is running; then wait for it and answer `stored`
        when it succeeded (or run `store` in its place when it raised)."""
        while (running := self._running.get(key)) is not None:
            if await asyncio.shield(running):
                return stored
        done: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._running[key] = done
        succeeded = False
        try:
            result = await store()
            succeeded = True
            return result
        finally:
            del self._running[key]
            done.set_result(succeeded)
