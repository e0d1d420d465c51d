"""Writing outbox rows, inside the caller's transaction. Delivery is the worker's job.

A row's `dedupe_key` is unique per tenant, so writing the same message twice (a retried
transaction, a repeated event) leaves one row: the receiver gets it at least once, not N times.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from paycore.clock import utcnow
from paycore.db import dialect_insert, dialect_of, table_of
from paycore.ids import new_id
from paycore.logging import current_request_id
from paycore.outbox.models import OutboxChannel, OutboxMessage, OutboxStatus
from paycore.write_batch import held_rows


@cache
def _enqueue_statement(dialect_name: str) -> Any:
    """Built once per dialect (every state change enqueues), its values bound at execution."""
    return dialect_insert(dialect_name, table_of(OutboxMessage)).on_conflict_do_nothing(
        index_elements=["tenant_id", "dedupe_key"]
    )


def _insert_outbox(session: AsyncSession) -> Any:
    return _enqueue_statement(dialect_of(session))


async def enqueue(
    session: AsyncSession,
    *,
    tenant_id: str,
    livemode: bool,
    channel: OutboxChannel,
    topic: str,
    dedupe_key: str,
    payload: dict[str, Any],
    ordering_key: str | None = None,
) -> bool:
    """Add a message unless one with `dedupe_key` exists; True when this call added it. Inside
    `batched_writes` the row is held for the batch's one insert (True: it is on its way; a
    duplicate of an existing key is dropped then, as here)."""
    now = utcnow()
    row = {
        "id": new_id("msg"),
        "tenant_id": tenant_id,
        "livemode": livemode,
        "channel": channel.value,
        "topic": topic,
        "dedupe_key": dedupe_key,
        "ordering_key": ordering_key,
        "payload": payload,
        "status": OutboxStatus.PENDING.value,
        "attempts": 0,
        "next_attempt_at": now,
        "correlation_id": current_request_id(),
        "created_at": now,
        "updated_at": now,
    }
    held = held_rows(session, "outbox", _insert_outbox)
    if held is not None:
        held.append(row)
        return True
    result = await session.execute(_enqueue_statement(dialect_of(session)), row)
    return bool(getattr(result, "rowcount", 0))


async def emit_merchant_event(
    session: AsyncSession,
    *,
    tenant_id: str,
    livemode: bool,
    event_type: str,
    subject_key: str,
    data: dict[str, Any],
    order_id: str | None,
) -> bool:
    """A merchant webhook event. Its `id` is fixed here, so every retry carries the same webhook-id;
    events about one order share an ordering key, so they reach the merchant in order."""
    return await enqueue(
        session,
        tenant_id=tenant_id,
        livemode=livemode,
        channel=OutboxChannel.MERCHANT_WEBHOOK,
        topic=event_type,
        dedupe_key=f"{event_type}:{subject_key}",
        ordering_key=f"order:{order_id}" if order_id else None,
        payload={
            "id": new_id("whevt"),
            "type": event_type,
            "created": utcnow().isoformat(),
            "livemode": livemode,
            "data": {"object": data},
        },
    )


async def alert_ops(
    session: AsyncSession,
    *,
    tenant_id: str,
    livemode: bool,
    code: str,
    message: str,
    subject_key: str,
    details: dict[str, Any],
) -> bool:
    return await enqueue(
        session,
        tenant_id=tenant_id,
        livemode=livemode,
        channel=OutboxChannel.OPS_ALERT,
        topic=code,
        dedupe_key=f"ops:{code}:{subject_key}",
        payload={"code": code, "message": message, "details": details},
    )
