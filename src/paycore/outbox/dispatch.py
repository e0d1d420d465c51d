"""Claiming due outbox rows and delivering them: at least once, in order per order, never lost.

A claim is one statement: `UPDATE outbox SET locked_until, locked_by WHERE id IN (SELECT … FOR
UPDATE SKIP LOCKED LIMIT n) RETURNING *` on PostgreSQL (any number of workers take disjoint rows);
on SQLite the same statement inside one `BEGIN IMMEDIATE` transaction. A worker that dies leaves
its rows locked only until `locked_until`; then anyone may claim them again.

A row whose `ordering_key` has an older row still undelivered waits for it (up to
`PAYCORE_WEBHOOK_ORDER_WAIT_MINUTES`), so one order's events reach the merchant in order.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, exists, or_, select, update
from sqlalchemy.orm import aliased

from paycore.clock import utcnow
from paycore.config import Settings
from paycore.db import Database, UTCDateTime
from paycore.logging import get_logger
from paycore.ops.metrics import OUTBOX_DELIVERIES
from paycore.outbox.channels.base import Channel, DeliveryOutcome
from paycore.outbox.models import OutboxChannel, OutboxMessage, OutboxStatus

log = get_logger(__name__)

# Delay before each retry; when they run out the row is `dead` (it stays, and can be replayed).
NOTIFICATION_DELAYS = (
    timedelta(minutes=1),
    timedelta(minutes=5),
    timedelta(minutes=15),
    timedelta(minutes=30),
)
# Svix's schedule (PROVIDERS.md §6): immediately, then 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h.
WEBHOOK_DELAYS = (
    timedelta(seconds=5),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=5),
    timedelta(hours=10),
    timedelta(hours=10),
)
_OPEN = (OutboxStatus.PENDING, OutboxStatus.RETRYING)


def retry_delays(channel: OutboxChannel) -> tuple[timedelta, ...]:
    return WEBHOOK_DELAYS if channel is OutboxChannel.MERCHANT_WEBHOOK else NOTIFICATION_DELAYS


def next_retry(
    channel: OutboxChannel, attempts_made: int, *, retry_after: float | None, rng: random.Random
) -> timedelta | None:
    """How long to wait before the next try after `attempts_made` failures; None: give up (dead).
    ±10 % jitter spreads retries of rows that failed together; a receiver's Retry-After wins if longer."""
    delays = retry_delays(channel)
    if attempts_made > len(delays):
        return None
    delay = delays[attempts_made - 1] * rng.uniform(0.9, 1.1)
    if retry_after is not None:
        delay = max(delay, timedelta(seconds=retry_after))
    return delay


def _claim_statement() -> Any:
    """Built once: composing it (the alias above all) costs more CPU than running it."""
    earlier = aliased(OutboxMessage)
    now = bindparam("now", type_=UTCDateTime())
    waits_for_earlier = exists().where(
        earlier.ordering_key == OutboxMessage.ordering_key,
        earlier.created_at < OutboxMessage.created_at,
        earlier.status.in_(_OPEN),
        earlier.created_at > bindparam("order_wait_cutoff", type_=UTCDateTime()),
    )
    due = (
        select(OutboxMessage.id)
        .where(
            # Matches the partial index ix_outbox_due, so a long backlog is read in order, not sorted.
            OutboxMessage.status.in_(_OPEN),
            OutboxMessage.next_attempt_at <= now,
            or_(OutboxMessage.locked_until.is_(None), OutboxMessage.locked_until < now),
            or_(OutboxMessage.ordering_key.is_(None), ~waits_for_earlier),
        )
        .order_by(OutboxMessage.next_attempt_at)
        .limit(bindparam("limit"))
        .with_for_update(skip_locked=True, of=OutboxMessage)
    )
    claim = (
        update(OutboxMessage)
        .where(OutboxMessage.id.in_(due.scalar_subquery()))
        .values(locked_until=bindparam("until", type_=UTCDateTime()), locked_by=bindparam("worker_id"))
        .returning(OutboxMessage)
    )
    return select(OutboxMessage).from_statement(claim).execution_options(populate_existing=True)


_CLAIM = _claim_statement()


async def claim_due_messages(
    database: Database,
    *,
    worker_id: str,
    limit: int,
    claim_for: timedelta,
    order_wait: timedelta,
    now: datetime | None = None,
) -> list[OutboxMessage]:
    now = now or utcnow()
    params = {
        "now": now,
        "order_wait_cutoff": now - order_wait,
        "limit": limit,
        "until": now + claim_for,
        "worker_id": worker_id,
    }
    async with database.session(write=True) as session:
        return list(await session.scalars(_CLAIM, params))


async def record_sent(database: Database, messages: list[OutboxMessage], *, worker_id: str) -> int:
    """Mark a batch's delivered rows sent in one statement (still only the rows we hold)."""
    if not messages:
        return 0
    now = utcnow()
    async with database.session(write=True) as session:
        written = await session.execute(
            update(OutboxMessage)
            .where(
                OutboxMessage.id.in_([message.id for message in messages]),
                OutboxMessage.locked_by == worker_id,
            )
            .values(
                status=OutboxStatus.SENT,
                sent_at=now,
                attempts=OutboxMessage.attempts + 1,
                last_error=None,
                locked_until=None,
                locked_by=None,
                updated_at=now,
            )
            .execution_options(synchronize_session=False)
        )
    for message in messages:
        OUTBOX_DELIVERIES.labels(channel=message.channel.value, result="sent").inc()
    return int(getattr(written, "rowcount", 0) or 0)


async def record_outcome(
    database: Database,
    message: OutboxMessage,
    outcome: DeliveryOutcome,
    *,
    worker_id: str,
    rng: random.Random,
    now: datetime | None = None,
) -> str:
    """Write what happened, if the row is still ours; returns `sent`, `suppressed`, `retry`,
    `dead` or `lost`."""
    now = now or utcnow()
    attempts = message.attempts + 1
    values: dict[str, object] = {
        "attempts": attempts,
        "locked_until": None,
        "locked_by": None,
        "updated_at": now,
    }
    if outcome.ok:
        result = "sent"
        values |= {"status": OutboxStatus.SENT, "sent_at": now, "last_error": None}
    elif outcome.suppressed:
        result = "suppressed"
        values |= {"status": OutboxStatus.SUPPRESSED, "last_error": outcome.detail}
    else:
        delay = (
            None
            if outcome.permanent
            else next_retry(message.channel, attempts, retry_after=outcome.retry_after, rng=rng)
        )
        result = "dead" if delay is None else "retry"
        values |= {"last_error": outcome.detail}
        if delay is None:
            values["status"] = OutboxStatus.DEAD
        else:
            values |= {"status": OutboxStatus.RETRYING, "next_attempt_at": now + delay}
    async with database.session(write=True) as session:
        written = await session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == message.id, OutboxMessage.locked_by == worker_id)
            .values(**values)
            .execution_options(synchronize_session=False)
        )
    if not getattr(written, "rowcount", 0):
        # Our claim ran out and another worker took the row: its result is the one that counts.
        return "lost"
    OUTBOX_DELIVERIES.labels(channel=message.channel.value, result=result).inc()
    if result == "dead":
        log.warning(
            "outbox_message_dead", outbox_id=message.id, channel=message.channel.value, error=outcome.detail
        )
    return result


async def release_claims(database: Database, *, worker_id: str, message_ids: list[str]) -> None:
    """Give rows back without an attempt (a stopping worker): claimable again at once."""
    if not message_ids:
        return
    async with database.session(write=True) as session:
        await session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id.in_(message_ids), OutboxMessage.locked_by == worker_id)
            .values(locked_until=None, locked_by=None)
            .execution_options(synchronize_session=False)
        )


class OutboxDispatcher:
    """One worker's outbox loop body: claim a batch, deliver it concurrently, record each result."""

    def __init__(
        self,
        database: Database,
        channels: Mapping[OutboxChannel, Channel],
        settings: Settings,
        *,
        worker_id: str,
        concurrency: int = 16,
    ) -> None:
        self.database = database
        self.channels = channels
        self.settings = settings
        self.worker_id = worker_id
        self._limit = asyncio.Semaphore(concurrency)
        self._rng = random.Random()  # noqa: S311 (jitter, not secrecy)

    async def _deliver_one(self, message: OutboxMessage) -> DeliveryOutcome:
        """Deliver; a failure is recorded at once (its retry time is its own), a success is
        returned to be recorded with the batch's other successes in one statement."""
        async with self._limit:
            channel = self.channels.get(message.channel)
            if channel is None:
                outcome = DeliveryOutcome.failed(f"no {message.channel.value} channel in this worker")
            else:
                try:
                    outcome = await channel.deliver(message)
                except Exception as exc:  # a channel bug must not lose the row: retry it later
                    log.exception(
                        "outbox_channel_failed", outbox_id=message.id, channel=message.channel.value
                    )
                    outcome = DeliveryOutcome.failed(f"{type(exc).__name__}: {exc}")
            if not outcome.ok:
                await record_outcome(self.database, message, outcome, worker_id=self.worker_id, rng=self._rng)
            return outcome

    async def process_batch(self, stop: asyncio.Event) -> int:
        """Claim and deliver one batch; returns how many rows were claimed. When `stop` is set while
        the batch runs, rows still in flight after the shutdown grace are released, not abandoned."""
        if stop.is_set():
            return 0
        messages = await claim_due_messages(
            self.database,
            worker_id=self.worker_id,
            limit=self.settings.worker_batch_size,
            claim_for=timedelta(seconds=self.settings.worker_claim_seconds),
            order_wait=timedelta(minutes=self.settings.webhook_order_wait_minutes),
        )
        if not messages:
            return 0
        tasks = {asyncio.create_task(self._deliver_one(message)): message for message in messages}
        everything: asyncio.Future[Any] = asyncio.gather(*tasks)
        stopping: asyncio.Future[Any] = asyncio.create_task(stop.wait())
        await asyncio.wait([everything, stopping], return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        unfinished = [task for task in tasks if not task.done()]
        if unfinished:
            _, still = await asyncio.wait(unfinished, timeout=self.settings.worker_shutdown_seconds)
            for task in still:
                task.cancel()
            await asyncio.gather(*still, return_exceptions=True)
            await release_claims(
                self.database, worker_id=self.worker_id, message_ids=[tasks[task].id for task in still]
            )
        await asyncio.gather(everything, return_exceptions=True)
        delivered = [
            message
            for task, message in tasks.items()
            if not task.cancelled() and task.exception() is None and task.result().ok
        ]
        await record_sent(self.database, delivered, worker_id=self.worker_id)
        return len(messages)
