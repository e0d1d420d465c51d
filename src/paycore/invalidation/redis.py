"""Invalidation over Redis pub/sub (works where PostgreSQL cannot LISTEN, e.g. behind PgBouncer)."""

from __future__ import annotations

import asyncio
import contextlib

from redis.asyncio import Redis
from redis.exceptions import RedisError

from paycore.db import Database
from paycore.invalidation.channel import CHANNEL, InvalidationChannel
from paycore.logging import get_logger
from paycore.pg_listen import MAX_RETRY_SECONDS

log = get_logger(__name__)


class RedisInvalidations(InvalidationChannel):
    def __init__(self, redis_url: str) -> None:
        super().__init__()
        self._redis_url = redis_url
        self._client: Redis | None = None
        self._task: asyncio.Task[None] | None = None
        self.listening = asyncio.Event()

    @property
    def hears_every_process(self) -> bool:
        return self.listening.is_set()

    async def start(self, database: Database) -> None:  # noqa: ARG002 (Redis carries it)
        self.started = True
        self._client = Redis.from_url(self._redis_url, socket_connect_timeout=5)
        self._task = asyncio.create_task(self._listen_forever())

    async def open_for_publishing(self, database: Database) -> None:  # noqa: ARG002 (Redis carries it)
        self._client = Redis.from_url(self._redis_url, socket_connect_timeout=5)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._client is not None:
            await self._client.aclose()
            self._client = None
        self.started = False

    async def _broadcast(self, payload: str) -> None:
        if self._client is None:  # not started: an app served without its lifespan (tests)
            return
        try:
            await self._client.publish(CHANNEL, payload)
        except (RedisError, OSError) as exc:  # the change is committed; the TTL bounds staleness
            log.warning("cache_invalidation_unsent", error=repr(exc))

    async def _listen_forever(self) -> None:
        assert self._client is not None
        delay = 1.0
        while True:
            pubsub = self._client.pubsub()
            try:
                await pubsub.subscribe(CHANNEL)
                async for message in pubsub.listen():
                    if message.get("type") == "subscribe":
                        self.listening.set()
                        delay = 1.0
                        # Messages sent while we were not subscribed are lost.
                        self.invalidate_everything()
                    elif message.get("type") == "message":
                        self.receive(message["data"])
                log.warning("cache_invalidation_listen_lost")
            except (RedisError, OSError) as exc:
                log.warning("cache_invalidation_listen_unavailable", error=repr(exc), retry_in=delay)
            finally:
                self.listening.clear()
                with contextlib.suppress(Exception):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]
            await asyncio.sleep(delay)
            delay = min(delay * 2, MAX_RETRY_SECONDS)
