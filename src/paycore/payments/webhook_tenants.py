"""Which tenant a webhook URL names, cached per process.

Every provider webhook names its tenant by slug; reading the tenants table for each one was a
transaction of its own per event. A slug and the id it names never change (no code path renames
a tenant), so an entry stays right until the tenant is changed or removed: the platform API
publishes a `CacheKind.TENANT_STANDING` invalidation for every tenant change, and this cache
drops that tenant's entry when it hears it. The TTL bounds how long a missed message matters. An
unknown slug is never cached, so a tenant created a moment ago is found at once.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import select

from paycore.db import Database
from paycore.tenancy.models import Tenant

TTL_SECONDS = 600.0


@dataclass(frozen=True, slots=True)
class WebhookTenant:
    id: str
    slug: str


class WebhookTenants:
    def __init__(self, *, ttl: float = TTL_SECONDS, clock: Callable[[], float] = time.monotonic) -> None:
        self._ttl = ttl
        self._clock = clock
        self._entries: dict[str, tuple[float, WebhookTenant]] = {}
        # Bumped by every drop: a lookup that raced a drop must not store what it read before it.
        self._generation = 0

    async def by_slug(self, database: Database, slug: str) -> WebhookTenant | None:
        entry = self._entries.get(slug)
        now = self._clock()
        if entry is not None and entry[0] > now:
            return entry[1]
        generation = self._generation
        async with database.session(write=False) as session:
            row = (await session.execute(select(Tenant.id, Tenant.slug).where(Tenant.slug == slug))).first()
        if row is None:
            return None
        tenant = WebhookTenant(id=row.id, slug=row.slug)
        if generation == self._generation:
            self._entries[slug] = (now + self._ttl, tenant)
        return tenant

    def drop(self, tenant_id: str | None = None) -> None:
        """Forget one tenant (by id, as invalidations name it), or every tenant."""
        self._generation += 1
        if tenant_id is None:
            self._entries.clear()
            return
        for slug, (_, tenant) in list(self._entries.items()):
            if tenant.id == tenant_id:
                self._entries.pop(slug, None)
