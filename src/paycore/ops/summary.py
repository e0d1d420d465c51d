"""`GET /ops/summary`: what an operator looks at first — for the caller's tenant and mode only, plus
this process's shared circuit breakers and the tenant's own, and the schema's migration state."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from paycore.auth.context import TenantContext
from paycore.circuit import Breakers
from paycore.clock import utcnow
from paycore.db import Database
from paycore.fulfillment.models import Fulfillment, FulfillmentStatus
from paycore.migrations import migration_status
from paycore.ops.schemas import OpsSummaryOut
from paycore.orders.models import Order
from paycore.orders.states import AttemptStatus
from paycore.outbox.models import OutboxMessage, OutboxStatus
from paycore.payments.models import PaymentAttempt, PaymentEvent

ATTENTION_LIST_LIMIT = 20


async def _counts(session: AsyncSession, column: Any, *conditions: Any) -> dict[str, int]:
    rows = await session.execute(select(column, func.count()).where(*conditions).group_by(column))
    return {str(getattr(key, "value", key)): int(count) for key, count in rows}


async def tenant_summary(
    session: AsyncSession, context: TenantContext, *, database: Database, breakers: Breakers
) -> OpsSummaryOut:
    now = utcnow()
    tenant = (Order.tenant_id == context.tenant_id, Order.livemode == context.livemode)
    since = now - timedelta(hours=24)
    payments = await session.execute(
        select(PaymentAttempt.status, PaymentAttempt.currency, func.count(), func.sum(PaymentAttempt.amount))
        .where(
            PaymentAttempt.tenant_id == context.tenant_id,
            PaymentAttempt.livemode == context.livemode,
            PaymentAttempt.created_at >= since,
        )
        .group_by(PaymentAttempt.status, PaymentAttempt.currency)
    )
    payments_24h: dict[str, Any] = {}
    for status, currency, count, amount in payments:
        entry = payments_24h.setdefault(status.value, {"count": 0, "amount": {}})
        entry["count"] += int(count)
        if status is AttemptStatus.SUCCEEDED:
            entry["amount"][currency] = int(amount or 0)
    events = (PaymentEvent.tenant_id == context.tenant_id, PaymentEvent.livemode == context.livemode)
    last_events = await session.execute(
        select(PaymentEvent.provider, func.max(PaymentEvent.received_at))
        .where(*events)
        .group_by(PaymentEvent.provider)
    )
    outbox = (OutboxMessage.tenant_id == context.tenant_id, OutboxMessage.livemode == context.livemode)
    oldest_due = await session.scalar(
        select(func.min(OutboxMessage.next_attempt_at)).where(
            *outbox,
            OutboxMessage.status.in_([OutboxStatus.PENDING, OutboxStatus.RETRYING]),
            OutboxMessage.next_attempt_at <= now,
        )
    )
    attention = list(
        await session.scalars(
            select(Fulfillment.id)
            .where(
                Fulfillment.tenant_id == context.tenant_id,
                Fulfillment.livemode == context.livemode,
                Fulfillment.status == FulfillmentStatus.NEEDS_ATTENTION,
            )
            .order_by(Fulfillment.updated_at.desc())
            .limit(ATTENTION_LIST_LIMIT)
        )
    )
    migrations = await migration_status(database.engine)
    return OpsSummaryOut.model_validate(
        {
            "livemode": context.livemode,
            "generated_at": now.isoformat(),
            "orders_by_status": await _counts(session, Order.status, *tenant, Order.deleted_at.is_(None)),
            "payments_last_24h": payments_24h,
            "webhook_events_by_result": await _counts(
                session, func.coalesce(PaymentEvent.result, "pending"), *events
            ),
            "last_webhook_received": {provider: at.isoformat() for provider, at in last_events},
            "outbox_by_status": await _counts(session, OutboxMessage.status, *outbox),
            "outbox_dead": (
                await _counts(
                    session, OutboxMessage.channel, *outbox, OutboxMessage.status == OutboxStatus.DEAD
                )
            ),
            "outbox_oldest_due_seconds": round((now - oldest_due).total_seconds(), 1) if oldest_due else 0.0,
            "fulfillments_needing_attention": attention,
            "circuit_breakers": breakers.states_for(context.tenant_id, livemode=context.livemode),
            "migrations": {
                "current": migrations.current,
                "head": migrations.head,
                "pending": migrations.pending,
            },
        }
    )
