"""Inspecting and replaying outbox rows (the `paycore outbox` commands), and sampling its depth."""

from __future__ import annotations

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from paycore.clock import utcnow
from paycore.ops.metrics import OUTBOX_DEPTH, OUTBOX_OLDEST_DUE_SECONDS
from paycore.outbox.models import OutboxChannel, OutboxMessage, OutboxStatus

_OPEN = (OutboxStatus.PENDING, OutboxStatus.RETRYING)


async def list_messages(
    session: AsyncSession, *, status: OutboxStatus | None, limit: int
) -> list[OutboxMessage]:
    statement = select(OutboxMessage).order_by(OutboxMessage.created_at.desc()).limit(limit)
    if status is not None:
        statement = statement.where(OutboxMessage.status == status)
    return list(await session.scalars(statement))


async def replay(session: AsyncSession, *, message_id: str | None = None, all_dead: bool = False) -> int:
    """Put dead rows back in line: their attempts start again from zero, due now."""
    statement = update(OutboxMessage).where(OutboxMessage.status == OutboxStatus.DEAD)
    if not all_dead:
        statement = statement.where(OutboxMessage.id == message_id)
    result = await session.execute(
        statement.values(
            status=OutboxStatus.PENDING,
            attempts=0,
            next_attempt_at=utcnow(),
            locked_until=None,
            locked_by=None,
        ).execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


async def sample_depth(session: AsyncSession) -> None:
    """Publish the outbox's depth and the age of its oldest due row as gauges."""
    now = utcnow()
    counts = {
        (channel, status): int(count)
        for channel, status, count in await session.execute(
            select(OutboxMessage.channel, OutboxMessage.status, func.count()).group_by(
                OutboxMessage.channel, OutboxMessage.status
            )
        )
    }
    for channel in OutboxChannel:
        for status in OutboxStatus:
            OUTBOX_DEPTH.labels(channel=channel.value, status=status.value).set(
                counts.get((channel, status), 0)
            )
    oldest = await session.scalar(
        select(func.min(OutboxMessage.next_attempt_at)).where(
            OutboxMessage.status.in_(_OPEN), OutboxMessage.next_attempt_at <= now
        )
    )
    OUTBOX_OLDEST_DUE_SECONDS.set((now - oldest).total_seconds() if oldest else 0.0)
