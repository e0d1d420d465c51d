"""API keys looked up once per process instead of once per request.

A key is cached by the SHA-256 of its text (what `authenticate_api_key` found: tenant, key id,
kind, mode, scopes, expiry). Revoking a key publishes `CacheKind.API_KEY` with its id after the
commit, and every process drops it (`paycore.invalidation`); how long an entry is trusted
otherwise is `InvalidationChannel.trusted_for`: `api_key_cache_seconds` while every process's
invalidations reach this one, `cache_unconfirmed_seconds` while they may not, nothing before start.

Refusals (unknown, revoked, expired keys — none of them can become valid again) are cached apart,
briefly and in a small LRU of their own, so a flood of made-up keys cannot push good keys out.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from paycore.auth.key_use import KeyUse
from paycore.auth.keys import hash_api_key
from paycore.auth.models import KeyKind, KeyMode, Scope
from paycore.auth.service import authenticate_api_key
from paycore.config import Settings
from paycore.db import Database
from paycore.errors import AuthenticationFailed
from paycore.invalidation.cache import TrustedCache
from paycore.invalidation.channel import CacheKind, InvalidationChannel

REFUSED_SECONDS = 10.0
REFUSED_ENTRIES = 1024


@dataclass(slots=True)
class KnownKey:
    key_id: str
    tenant_id: str
    tenant_slug: str
    kind: KeyKind
    mode: KeyMode
    scopes: frozenset[Scope]
    expires_at: datetime | None
    # Not frozen for this one: this process's idea of when the key was last recorded as used.
    last_used_at: datetime | None

    @property
    def livemode(self) -> bool:
        return self.mode is KeyMode.LIVE


@dataclass(frozen=True, slots=True)
class RefusedKey:
    message: str
    code: str


class ApiKeyCache:
    def __init__(
        self, settings: Settings, channel: InvalidationChannel, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.known: TrustedCache[str, KnownKey] = TrustedCache(
            channel,
            seconds=settings.api_key_cache_seconds,
            unconfirmed_seconds=settings.cache_unconfirmed_seconds,
            max_entries=settings.api_key_cache_entries,
            clock=clock,
        )
        self.refused: TrustedCache[str, RefusedKey] = TrustedCache(
            channel,
            seconds=REFUSED_SECONDS,
            unconfirmed_seconds=settings.cache_unconfirmed_seconds,
            max_entries=REFUSED_ENTRIES,
            clock=clock,
        )
        self.use = KeyUse()
        channel.subscribe(CacheKind.API_KEY, self.drop)

    def drop(self, key_id: str | None) -> None:
        if key_id is None:
            self.known.drop()
            self.refused.drop()
        else:
            self.known.drop_matching(lambda known: known.key_id == key_id)

    async def authenticate(self, database: Database, presented: str, *, now: datetime) -> KnownKey:
        """The key behind `presented` (already well-formed), or `AuthenticationFailed`."""
        digest = hash_api_key(presented)
        known = self.known.get(digest)
        if known is None:
            known = await self._load(database, presented, digest, now)
        if known.expires_at is not None and known.expires_at <= now:
            raise AuthenticationFailed("This API key has expired.", code="api_key_expired")
        return known

    async def _load(self, database: Database, presented: str, digest: str, now: datetime) -> KnownKey:
        refused = self.refused.get(digest)
        if refused is not None:
            raise AuthenticationFailed(refused.message, code=refused.code)
        generations = (self.known.generation, self.refused.generation)
        try:
            async with database.session(write=False) as session:
                found = await authenticate_api_key(session, presented, now=now)
        except AuthenticationFailed as exc:
            self.refused.put(digest, RefusedKey(exc.message, exc.code), generation=generations[1])
            raise
        known = KnownKey(
            key_id=found.key.id,
            tenant_id=found.tenant.id,
            tenant_slug=found.tenant.slug,
            kind=found.key.kind,
            mode=found.key.mode,
            scopes=frozenset(Scope(scope) for scope in found.key.scopes),
            expires_at=found.key.expires_at,
            last_used_at=found.key.last_used_at,
        )
        self.known.put(digest, known, generation=generations[0])
        return known
