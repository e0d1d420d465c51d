"""A tenant's standing — may it sell, and within which plan limits — cached per process.

Read on every merchant and storefront call, so it is cached for `TTL_SECONDS`; the platform API
publishes a `CacheKind.TENANT_STANDING` invalidation when it changes a tenant, and every process
drops that entry within a second (`paycore.invalidation`). The TTL is the fallback for a
message lost on a connection that looks alive; while a process is not listening at all, entries
live only `cache_unconfirmed_seconds`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from paycore.db import Database
from paycore.invalidation.channel import InvalidationChannel
from paycore.tenancy.models import Plan, Subscription, SubscriptionStatus, Tenant, TenantStatus

TTL_SECONDS = 600.0
_SELLING = frozenset({SubscriptionStatus.ACTIVE, SubscriptionStatus.TRIALING})


@dataclass(frozen=True, slots=True)
class Standing:
    tenant_status: TenantStatus
    subscription_status: SubscriptionStatus | None
    plan_code: str | None
    max_products: int | None
    max_orders_per_month: int | None
    features: tuple[str, ...]

    @property
    def may_sell(self) -> bool:
        return may_sell(self.tenant_status, self.subscription_status)


def may_sell(tenant_status: TenantStatus, subscription_status: SubscriptionStatus | None) -> bool:
    """Active, with a subscription that is active or trialing."""
    return tenant_status is TenantStatus.ACTIVE and subscription_status in _SELLING


async def load_standing(session: AsyncSession, tenant_id: str) -> Standing:
    row = (
        await session.execute(
            select(Tenant.status, Subscription.status, Plan)
            .select_from(Tenant)
            .outerjoin(Subscription, Subscription.tenant_id == Tenant.id)
            .outerjoin(Plan, Plan.id == Subscription.plan_id)
            .where(Tenant.id == tenant_id)
        )
    ).one_or_none()
    if row is None:
        return Standing(TenantStatus.SUSPENDED, None, None, None, None, ())
    tenant_status, subscription_status, plan = row
    return Standing(
        tenant_status=tenant_status,
        subscription_status=subscription_status,
        plan_code=plan.code if plan else None,
        max_products=plan.max_products if plan else None,
        max_orders_per_month=plan.max_orders_per_month if plan else None,
        features=tuple(plan.features) if plan else (),
    )


class StandingCache:
    def __init__(
        self,
        *,
        ttl: float = TTL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        channel: InvalidationChannel | None = None,
        unconfirmed_seconds: float = 1.0,
    ) -> None:
        self._ttl = ttl
        self._clock = clock
        # With a channel, an entry lives `ttl` only while every process's invalidations reach
        # this one; `unconfirmed_seconds` while they may not (fail closed: a suspension made
        # elsewhere takes effect within that); not at all before the app started.
        self._channel = channel
        self._unconfirmed = unconfirmed_seconds
        self._entries: dict[str, tuple[float, Standing]] = {}
        # Bumped by every drop: a load that raced a drop must not store what it read before it.
        self._generation = 0

    def _lifetime(self) -> float:
        if self._channel is None:
            return self._ttl
        return self._channel.trusted_for(self._ttl, unconfirmed=self._unconfirmed)

    async def get(self, database: Database, tenant_id: str) -> Standing:
        entry = self._entries.get(tenant_id)
        now = self._clock()
        if entry is not None and now - entry[0] < self._lifetime():
            return entry[1]
        generation = self._generation
        async with database.session(write=False) as session:
            standing = await load_standing(session, tenant_id)
        if generation == self._generation:
            self._entries[tenant_id] = (now, standing)
        return standing

    def drop(self, tenant_id: str | None = None) -> None:
        """Forget one tenant's standing, or everyone's (a plan changed)."""
        self._generation += 1
        if tenant_id is None:
            self._entries.clear()
        else:
            self._entries.pop(tenant_id, None)
