"""Reading orders for the merchant, and cancelling one. Services take a session, never commit."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from paycore.audit.models import AuditEntry
from paycore.auth.context import TenantContext
from paycore.clock import utcnow
from paycore.customers.models import Customer
from paycore.errors import NotFound
from paycore.orders.effects import release_order
from paycore.orders.models import Order
from paycore.orders.rendering import OrderView, load_order_view
from paycore.orders.states import OrderEvent, OrderStatus
from paycore.orders.transitions import lock_order
from paycore.pagination import Page, paginate


@dataclass(frozen=True, slots=True)
class OrderDetail:
    view: OrderView
    timeline: list[AuditEntry]


async def get_order(session: AsyncSession, context: TenantContext, order_id: str) -> Order:
    order = await session.scalar(
        select(Order).where(
            Order.id == order_id,
            Order.tenant_id == context.tenant_id,
            Order.livemode == context.livemode,
            Order.deleted_at.is_(None),
        )
    )
    if order is None:
        raise NotFound(f"No such order: '{order_id}'.", param="id")
    return order


async def order_detail(session: AsyncSession, context: TenantContext, order_id: str) -> OrderDetail:
    order = await get_order(session, context, order_id)
    timeline = await session.scalars(
        select(AuditEntry)
        .where(
            AuditEntry.tenant_id == order.tenant_id,
            AuditEntry.entity_type == "order",
            AuditEntry.entity_id == order.id,
        )
        .order_by(AuditEntry.at, AuditEntry.id)
    )
    return OrderDetail(view=await load_order_view(session, order), timeline=list(timeline))


async def list_orders(
    session: AsyncSession,
    context: TenantContext,
    *,
    status: OrderStatus | None,
    customer_email: str | None,
    created_gte: datetime | None,
    created_lt: datetime | None,
    limit: int,
    cursor: str | None,
) -> Page[Order]:
    statement = select(Order).where(
        Order.tenant_id == context.tenant_id, Order.livemode == context.livemode, Order.deleted_at.is_(None)
    )
    if status is not None:
        statement = statement.where(Order.status == status)
    if customer_email:
        statement = statement.join(Customer, Customer.id == Order.customer_id).where(
            Customer.email == customer_email.strip().lower()
        )
    if created_gte is not None:
        statement = statement.where(Order.created_at >= created_gte)
    if created_lt is not None:
        statement = statement.where(Order.created_at < created_lt)
    return await paginate(
        session, statement, created_at=Order.created_at, id_column=Order.id, limit=limit, cursor=cursor
    )


async def cancel_order(session: AsyncSession, context: TenantContext, order_id: str) -> Order:
    """Cancel an unpaid order and release its stock. Cancelling a canceled order changes nothing;
    a paid one is refused (409 `invalid_transition`) — refund it instead."""
    order = await get_order(session, context, order_id)
    order = await lock_order(session, order_id=order.id, tenant_id=context.tenant_id)
    await release_order(session, order, OrderEvent.CANCEL, actor=context.actor, now=utcnow())
    return order
