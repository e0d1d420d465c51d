"""Periodic job: orders not paid by `expires_at` expire, and give back what they held."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.exc import DBAPIError

from paycore.audit.service import Actor
from paycore.clock import utcnow
from paycore.db import Database
from paycore.logging import get_logger
from paycore.ops.metrics import ORDERS_EXPIRED
from paycore.orders.effects import release_order
from paycore.orders.models import Order
from paycore.orders.states import AttemptStatus, OrderEvent, OrderStatus
from paycore.orders.transitions import OrderChanged, lock_order
from paycore.payments.models import PaymentAttempt

ACTOR = Actor(name="system:expire_orders")
log = get_logger(__name__)


async def expire_due_orders(database: Database, *, now: datetime | None = None, limit: int = 200) -> int:
    """Expire up to `limit` overdue orders, each in its own transaction; returns how many."""
    now = now or utcnow()
    async with database.session(write=False) as session:
        due = list(
            await session.execute(
                select(Order.id, Order.tenant_id)
                .where(Order.status == OrderStatus.PENDING_PAYMENT, Order.expires_at <= now)
                .order_by(Order.expires_at)
                .limit(limit)
            )
        )
    expired = 0
    for order_id, tenant_id in due:
        try:
            async with database.session(write=True) as session:
                # Attempts before the order: the same order as applying a payment takes its locks
                # in, so expiry and a racing payment wait on each other instead of deadlocking.
                await session.execute(
                    select(PaymentAttempt.id).where(PaymentAttempt.order_id == order_id).with_for_update()
                )
                order = await lock_order(session, order_id=order_id, tenant_id=tenant_id)
                if order.status is not OrderStatus.PENDING_PAYMENT:
                    continue  # paid or canceled since we looked
                await release_order(session, order, OrderEvent.EXPIRE, actor=ACTOR, now=now)
                # A payment the customer completes after this still counts (a late payment).
                await session.execute(
                    update(PaymentAttempt)
                    .where(
                        PaymentAttempt.order_id == order.id,
                        PaymentAttempt.status.in_([AttemptStatus.CREATED, AttemptStatus.REQUIRES_ACTION]),
                    )
                    .values(status=AttemptStatus.CANCELED, updated_at=now)
                    .execution_options(synchronize_session=False)
                )
            expired += 1
            ORDERS_EXPIRED.inc()
        except OrderChanged:
            continue  # a payment won the race; nothing to expire
        except DBAPIError:
            # A lock timeout or a deadlock on one order must not stop the rest of the batch.
            log.exception("order_expiry_failed", order=order_id)
    return expired
