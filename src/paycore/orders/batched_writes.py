"""Audit and outbox rows of one state change, written in one statement each.

Applying a payment event writes several audit rows (the attempt, `order.paid`, `order.fulfilled`)
and several outbox rows (the email, the merchant events). Added one at a time they cost a round
trip each. Inside `batched_writes(session)` they are held and inserted together at the end of the
block — still inside the caller's transaction, so they commit (or not) with the change they
describe. Outside such a block every call writes at once, exactly as `record_audit` and the
outbox service do; the rows are the same either way.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession

from paycore.audit.models import AuditEntry
from paycore.audit.service import Actor, record_audit
from paycore.clock import utcnow
from paycore.db import upsert_insert
from paycore.ids import new_id
from paycore.logging import current_request_id, redact
from paycore.outbox.models import OutboxChannel, OutboxMessage, OutboxStatus
from paycore.outbox.service import alert_ops, emit_merchant_event, enqueue

_BATCH = "paycore.batched_writes"


@dataclass
class _Batch:
    audit: list[dict[str, Any]] = field(default_factory=list)
    outbox: list[dict[str, Any]] = field(default_factory=list)


def _batch(session: AsyncSession) -> _Batch | None:
    batch: _Batch | None = session.info.get(_BATCH)
    return batch


@asynccontextmanager
async def batched_writes(session: AsyncSession) -> AsyncIterator[None]:
    """Hold audit and outbox rows written in the block; insert them when it ends without error."""
    if _batch(session) is not None:  # nested: the outer block writes them
        yield
        return
    batch = session.info[_BATCH] = _Batch()
    try:
        yield
        if batch.audit:
            await session.execute(insert(AuditEntry).values(batch.audit))
        if batch.outbox:
            await session.execute(
                upsert_insert(session, OutboxMessage.__table__)
                .values(batch.outbox)
                .on_conflict_do_nothing(index_elements=["tenant_id", "dedupe_key"])
            )
    finally:
        session.info.pop(_BATCH, None)


def record_order_audit(
    session: AsyncSession,
    *,
    actor: Actor,
    action: str,
    entity_type: str,
    entity_id: str,
    tenant_id: str | None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> None:
    """`record_audit`, held for the batch when one is open."""
    batch = _batch(session)
    if batch is None:
        record_audit(
            session,
            actor=actor,
            action=action,
            entity_type=entity_type,
            entity_id=entity_id,
            tenant_id=tenant_id,
            before=before,
            after=after,
        )
        return
    batch.audit.append(
        {
            "tenant_id": tenant_id,
            "actor": actor.name,
            "action": action,
            "entity_type": entity_type,
            "entity_id": entity_id,
            "before": redact(before) if before is not None else None,
            "after": redact(after) if after is not None else None,
            "correlation_id": current_request_id(),
            "ip": actor.ip,
            "user_agent": actor.user_agent[:400] if actor.user_agent else None,
            # Taken now, not at the insert: the timeline orders rows by it.
            "at": utcnow(),
        }
    )


def _outbox_row(
    *,
    tenant_id: str,
    livemode: bool,
    channel: OutboxChannel,
    topic: str,
    dedupe_key: str,
    payload: dict[str, Any],
    ordering_key: str | None = None,
) -> dict[str, Any]:
    """The row `outbox.service.enqueue` writes."""
    now = utcnow()
    return {
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


async def enqueue_message(
    session: AsyncSession,
    *,
    tenant_id: str,
    livemode: bool,
    channel: OutboxChannel,
    topic: str,
    dedupe_key: str,
    payload: dict[str, Any],
) -> None:
    """`outbox.service.enqueue`, held for the batch when one is open."""
    batch = _batch(session)
    if batch is None:
        await enqueue(
            session,
            tenant_id=tenant_id,
            livemode=livemode,
            channel=channel,
            topic=topic,
            dedupe_key=dedupe_key,
            payload=payload,
        )
        return
    batch.outbox.append(
        _outbox_row(
            tenant_id=tenant_id,
            livemode=livemode,
            channel=channel,
            topic=topic,
            dedupe_key=dedupe_key,
            payload=payload,
        )
    )


async def emit_event(
    session: AsyncSession,
    *,
    tenant_id: str,
    livemode: bool,
    event_type: str,
    subject_key: str,
    data: dict[str, Any],
    order_id: str | None,
) -> None:
    """`outbox.service.emit_merchant_event`, held for the batch when one is open."""
    batch = _batch(session)
    if batch is None:
        await emit_merchant_event(
            session,
            tenant_id=tenant_id,
            livemode=livemode,
            event_type=event_type,
            subject_key=subject_key,
            data=data,
            order_id=order_id,
        )
        return
    batch.outbox.append(
        _outbox_row(
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
    )


async def alert(
    session: AsyncSession,
    *,
    tenant_id: str,
    livemode: bool,
    code: str,
    message: str,
    subject_key: str,
    details: dict[str, Any],
) -> None:
    """`outbox.service.alert_ops`, held for the batch when one is open."""
    batch = _batch(session)
    if batch is None:
        await alert_ops(
            session,
            tenant_id=tenant_id,
            livemode=livemode,
            code=code,
            message=message,
            subject_key=subject_key,
            details=details,
        )
        return
    batch.outbox.append(
        _outbox_row(
            tenant_id=tenant_id,
            livemode=livemode,
            channel=OutboxChannel.OPS_ALERT,
            topic=code,
            dedupe_key=f"ops:{code}:{subject_key}",
            payload={"code": code, "message": message, "details": details},
        )
    )
