"""The one door through which an order changes state: table check, compare-and-set, audit row."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from paycore.audit.service import Actor, record_audit
from paycore.errors import Conflict, NotFound
from paycore.orders.models import Order
from paycore.orders.states import OrderEvent, OrderStatus, next_order_status


class OrderChanged(Conflict):
    """Someone else changed the order between our read and our write; re-read and decide again."""

    code = "order_changed"


def order_snapshot(order: Order) -> dict[str, Any]:
    """The order as events and audit rows show it."""
    return {
        "id": order.id,
        "object": "order",
        "number": order.number,
        "livemode": order.livemode,
        "status": order.status.value,
        "version": order.version,
        "customer": order.customer_id,
        "currency": order.currency,
        "subtotal": order.subtotal,
        "discount": order.discount,
        "total": order.total,
        "amount_paid": order.amount_paid,
        "amount_refunded": order.amount_refunded,
        "review_reason": order.review_reason,
        "created": order.created_at.isoformat(),
        "paid_at": order.paid_at.isoformat() if order.paid_at else None,
    }


async def lock_order(session: AsyncSession, *, order_id: str, tenant_id: str) -> Order:
    """The order, re-read and row-locked (PostgreSQL) for a decision about its state."""
    order = await session.scalar(
        select(Order)
        .where(Order.id == order_id, Order.tenant_id == tenant_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if order is None:
        raise NotFound(f"No such order: '{order_id}'.", param="id")
    return order


async def transition(
    session: AsyncSession,
    order: Order,
    event: OrderEvent,
    *,
    actor: Actor,
    now: datetime,
    changes: dict[str, Any] | None = None,
    note: dict[str, Any] | None = None,
) -> bool:
    """Move `order` by `event`. False when it is already there (a no-op); raises `InvalidTransition`
    when the table refuses, `OrderChanged` when another transaction moved it first."""
    target = next_order_status(order.status, event)
    if target is None:
        return False
    before: OrderStatus = order.status
    result = await session.execute(
        update(Order)
        .where(Order.id == order.id, Order.status == before, Order.version == order.version)
        .values(status=target, version=Order.version + 1, updated_at=now, **(changes or {}))
        .execution_options(synchronize_session=False)
    )
    if not getattr(result, "rowcount", 0):
        raise OrderChanged("The order changed while this request was deciding; try again.")
    # The compare-and-set proves what the row holds now: set it on the object, not read it back.
    for name, value in {
        "status": target,
        "version": order.version + 1,
        "updated_at": now,
        **(changes or {}),
    }.items():
        set_committed_value(order, name, value)
    record_audit(
        session,
        actor=actor,
        action=f"order.{target.value}",
        entity_type="order",
        entity_id=order.id,
        tenant_id=order.tenant_id,
        before={"status": before.value},
        after={"status": target.value, "version": order.version, **(note or {})},
    )
    return True
