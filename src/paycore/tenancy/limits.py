"""Plan limits, checked inside the transaction that would pass them.

The plan's limit is read in that transaction, and where there is one the tenant's row is locked
before counting, so two concurrent creates cannot both take the last slot (SQLite writers are
serialized anyway). Limits count per mode: test-mode objects never use up a live quota, and a
merchant trying things out in test mode meets the same limits it will meet live.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import BindParameter, ScalarSelect, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from paycore.catalog.models import Product
from paycore.errors import PermissionDenied
from paycore.orders.models import Order
from paycore.tenancy.models import Plan, Subscription, Tenant


class PlanLimitReached(PermissionDenied):
    code = "plan_limit_reached"


def _plan_limit(tenant_id: str | BindParameter[str], column: str) -> ScalarSelect[int | None]:
    # Nested rather than joined: SQLite writes a RETURNING clause's columns unqualified, and
    # each name must resolve in its own FROM alone (a tenant has one subscription).
    plan_id = select(Subscription.plan_id).where(Subscription.tenant_id == tenant_id).scalar_subquery()
    return select(getattr(Plan, column)).where(Plan.id == plan_id).scalar_subquery()


def order_limit_of(tenant_id: str | BindParameter[str]) -> ScalarSelect[int | None]:
    """The plan's monthly order limit as a subquery, for a caller to read within a statement it
    sends anyway (checkout's cart update): no round trip of its own. Then `check_order_count`."""
    return _plan_limit(tenant_id, "max_orders_per_month")


async def _lock_tenant(session: AsyncSession, tenant_id: str) -> None:
    await session.execute(select(Tenant.id).where(Tenant.id == tenant_id).with_for_update())


async def _limit_locked(session: AsyncSession, tenant_id: str, column: str) -> int | None:
    limit: int | None = await session.scalar(select(_plan_limit(tenant_id, column)))
    if limit is not None:
        await _lock_tenant(session, tenant_id)
    return limit


def _refuse(name: str, limit: int) -> PlanLimitReached:
    return PlanLimitReached(f"The plan allows {limit} for {name}; upgrade the plan to add more.", param=name)


async def check_product_limit(session: AsyncSession, *, tenant_id: str, livemode: bool) -> None:
    limit = await _limit_locked(session, tenant_id, "max_products")
    if limit is None:
        return
    count = await session.scalar(
        select(func.count())
        .select_from(Product)
        .where(Product.tenant_id == tenant_id, Product.livemode == livemode, Product.deleted_at.is_(None))
    )
    if (count or 0) >= limit:
        raise _refuse("max_products", limit)


async def check_order_count(
    session: AsyncSession, *, tenant_id: str, livemode: bool, now: datetime, limit: int | None
) -> None:
    """The order limit already read (`order_limit_of`): where there is one, lock and count."""
    if limit is not None:
        await _lock_tenant(session, tenant_id)
        await _count_orders(session, tenant_id=tenant_id, livemode=livemode, now=now, limit=limit)


async def _count_orders(
    session: AsyncSession, *, tenant_id: str, livemode: bool, now: datetime, limit: int
) -> None:
    # A full count, but bounded: a month never holds more than `limit` orders (the next is
    # refused), and only plans with a limit count at all.
    month_start = now.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    count = await session.scalar(
        select(func.count())
        .select_from(Order)
        .where(Order.tenant_id == tenant_id, Order.livemode == livemode, Order.created_at >= month_start)
    )
    if (count or 0) >= limit:
        raise _refuse("max_orders_per_month", limit)
