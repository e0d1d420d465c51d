"""The invalidation channel every cache subscribes to; this base class stays in one process."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable
from enum import StrEnum

from paycore.db import Database
from paycore.logging import get_logger

log = get_logger(__name__)

# Redis and PostgreSQL channel name alike.
CHANNEL = "paycore_invalidate"


class CacheKind(StrEnum):
    TENANT_STANDING = "tenant_standing"
    # Keyed by key id: revoked (or its scopes changed). None: every key (a tenant went away).
    API_KEY = "api_key"
    # Keyed by tenant id: that tenant's provider credentials were set or deleted.
    PROVIDER_CREDENTIALS = "provider_credentials"


# Called with the key to drop, or None for every entry of the kind.
Invalidate = Callable[[str | None], None]


def encode(kind: CacheKind, key: str | None) -> str:
    return json.dumps({"kind": kind.value, "key": key})


def decode(payload: str | bytes) -> tuple[CacheKind, str | None] | None:
    """None for anything that is not one of our messages (logged, never raised: a listener
    must outlive a stray publisher)."""
    try:
        message = json.loads(payload)
        kind = CacheKind(message["kind"])
        key = message["key"]
    except (ValueError, TypeError, KeyError):
        log.warning("cache_invalidation_malformed")
        return None
    if key is not None and not isinstance(key, str):
        log.warning("cache_invalidation_malformed")
        return None
    return kind, key


class InvalidationChannel:
    """Callbacks per kind, run at once in this process on `publish`. Subclasses also carry each
    message to the other processes and call `receive` there."""

    def __init__(self) -> None:
        self._subscribers: defaultdict[CacheKind, list[Invalidate]] = defaultdict(list)
        # Set by `start` (the app's lifespan). An app served without it never hears another
        # process, so its caches must not keep anything (`trusted_for`).
        self.started = False

    @property
    def hears_every_process(self) -> bool:
        """True while a publish from any process reaches this one. In one process only: other
        processes (a second server, `paycore keys revoke`) cannot reach it."""
        return False

    def trusted_for(self, seconds: float, *, unconfirmed: float) -> float:
        """How long a cached entry may be served: `seconds` while every process's invalidations
        reach this one; `unconfirmed` (short) while they may not (listener down, SQLite, no
        shared channel); nothing at all before `start`. This is the fail-closed bound."""
        if self.hears_every_process:
            return seconds
        return min(seconds, unconfirmed) if self.started else 0.0

    def subscribe(self, kind: CacheKind, invalidate: Invalidate) -> None:
        self._subscribers[kind].append(invalidate)

    async def publish(self, kind: CacheKind, key: str | None = None) -> None:
        """Call after the change committed: a process that drops its entry earlier could cache
        the old value again before the commit."""
        self._invalidate(kind, key)
        await self._broadcast(encode(kind, key))

    def receive(self, payload: str | bytes) -> None:
        decoded = decode(payload)
        if decoded is not None:
            self._invalidate(*decoded)

    def invalidate_everything(self) -> None:
        """After a gap in listening: messages sent meanwhile are lost, so nothing cached is trusted."""
        for kind in list(self._subscribers):
            self._invalidate(kind, None)

    def _invalidate(self, kind: CacheKind, key: str | None) -> None:
        for invalidate in self._subscribers.get(kind, ()):
            invalidate(key)

    async def _broadcast(self, payload: str) -> None:  # noqa: ARG002 (one process: nobody else to tell)
        return None

    async def start(self, database: Database) -> None:  # noqa: ARG002 (nothing to listen to)
        self.started = True

    async def open_for_publishing(self, database: Database) -> None:
        """Ready to publish without listening (a CLI command that changed something)."""

    async def stop(self) -> None:
        self.started = False
