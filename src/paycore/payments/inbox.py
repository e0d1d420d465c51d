"""The webhook inbox: store first, apply after, retry what failed.

A webhook's event is stored and applied in one transaction, the application inside a SAVEPOINT
(`store_and_apply_event`): if applying fails, only the savepoint is rolled back and the stored
event still commits. So once the transaction commits the event cannot be lost: applying it may
fail (a bug, a lock timeout) and is then retried with backoff by `retry_unapplied_events`, until
it is applied or marked `failed` for a person to look at and replay.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, literal, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from paycore.clock import utcnow
from paycore.config import Settings
from paycore.db import Database, upsert_insert
from paycore.ids import new_id
from paycore.logging import current_request_id, get_logger
from paycore.money import Money
from paycore.ops.metrics import WEBHOOK_EVENTS
from paycore.orders.transitions import OrderChanged
from paycore.payments.apply import apply_neutral_event
from paycore.payments.models import EventResult, PaymentEvent
from paycore.payments.providers.base import NeutralEvent, NeutralKind
from paycore.payments.providers.registry import ProviderRegistry
from paycore.unstorable import storable_document

log = get_logger(__name__)

# Payload key marking an event paycore made itself (reconciliation): it carries the neutral form.
SYNTHETIC = "paycore_synthetic"
_IMMEDIATE_TRIES = 3


def retry_delay(attempts: int) -> timedelta:
    """30 s, 1 min, 2 min, … capped at one hour."""
    return timedelta(seconds=min(30 * 2 ** max(attempts - 1, 0), 3600))


def synthetic_payload(event: NeutralEvent) -> dict[str, Any]:
    data = asdict(event)
    data["kind"] = event.kind.value
    data["amount"] = (
        None if event.amount is None else {"amount": event.amount.amount, "currency": event.amount.currency}
    )
    return {SYNTHETIC: True, "event": data}


def neutral_from_payload(
    registry: ProviderRegistry, provider: str, payload: dict[str, Any], *, livemode: bool
) -> NeutralEvent:
    if payload.get(SYNTHETIC):
        data = dict(payload["event"])
        amount = data.pop("amount")
        data["kind"] = NeutralKind(data["kind"])
        return NeutralEvent(
            **data, amount=None if amount is None else Money(amount["amount"], amount["currency"])
        )
    return registry.get(provider).to_neutral(payload, livemode=livemode)


def _inbox_row(
    *, tenant_id: str, provider: str, event: NeutralEvent, payload: dict[str, Any], now: datetime
) -> dict[str, Any]:
    return {
        "id": new_id("evt"),
        "tenant_id": tenant_id,
        "livemode": event.livemode,
        "provider": provider,
        "provider_event_id": event.provider_event_id,
        "type": event.type[:100],
        # What the provider signed may hold text no database stores (a NUL a buyer typed): kept
        # readable rather than refused, which would have the provider resend forever.
        "payload": storable_document(payload),
        "received_at": now,
        "attempts": 0,
        "correlation_id": current_request_id(),
    }


async def store_event(
    database: Database,
    *,
    tenant_id: str,
    provider: str,
    event: NeutralEvent,
    payload: dict[str, Any],
) -> str | None:
    """Insert into the inbox and commit, unapplied. Returns the new row's id, or None for a duplicate."""
    row = _inbox_row(tenant_id=tenant_id, provider=provider, event=event, payload=payload, now=utcnow())
    async with database.session(write=True) as session:
        result = await session.execute(
            upsert_insert(session, PaymentEvent.__table__)
            .values(**row)
            .on_conflict_do_nothing(index_elements=["tenant_id", "provider", "provider_event_id"])
        )
        stored = bool(getattr(result, "rowcount", 0))
    return str(row["id"]) if stored else None


@dataclass(frozen=True, slots=True)
class Received:
    """What became of a delivered event: `event_id` None for a duplicate; `result` None when
    applying it failed and is left to the retry job (or another process applied it)."""

    event_id: str | None
    result: EventResult | None = None


def _same_event(tenant_id: str, provider: str, provider_event_id: str) -> Any:
    return and_(
        PaymentEvent.tenant_id == tenant_id,
        PaymentEvent.provider == provider,
        PaymentEvent.provider_event_id == provider_event_id,
    )


async def already_stored(
    database: Database, *, tenant_id: str, provider: str, provider_event_id: str
) -> bool:
    """True when the inbox already holds this event, committed.

    Read outside any transaction (on PostgreSQL one round trip, in autocommit) and without waiting
    on a lock: a provider resending what it delivered already — the common duplicate, a storm of
    them when a provider retries eagerly — is answered without opening a write transaction. A
    False here proves nothing: the insert's ON CONFLICT remains the one guard.
    """
    statement = select(literal(1)).where(_same_event(tenant_id, provider, provider_event_id)).limit(1)
    if database.dialect_name == "postgresql":
        async with database.engine.connect() as connection:
            autocommit = await connection.execution_options(isolation_level="AUTOCOMMIT")
            return (await autocommit.execute(statement)).first() is not None
    async with database.session(write=False) as session:
        return (await session.execute(statement)).first() is not None


async def store_and_apply_event(
    database: Database,
    settings: Settings,
    *,
    tenant_id: str,
    provider: str,
    event: NeutralEvent,
    payload: dict[str, Any],
) -> Received:
    """Store a verified event in the inbox and apply it, in one transaction.

    The insert comes first and claims the event (`processed_at` set): a concurrent delivery of the
    same event waits on ON CONFLICT for this transaction, then finds the row and is a duplicate.
    The application runs inside a SAVEPOINT: when it fails, the savepoint is rolled back, the row
    is marked for a retry, and the stored event still commits — a database error that outlives the
    savepoint (the connection lost) fails the whole request, and the provider sends it again.
    """
    now = utcnow()
    async with database.session(write=True) as session:
        event_id = await session.scalar(
            upsert_insert(session, PaymentEvent.__table__)
            .values(
                **_inbox_row(tenant_id=tenant_id, provider=provider, event=event, payload=payload, now=now),
                processed_at=now,
            )
            .on_conflict_do_nothing(index_elements=["tenant_id", "provider", "provider_event_id"])
            .returning(PaymentEvent.__table__.c.id)
        )
        if event_id is None:
            return Received(event_id=None)
        result = await _apply_in_savepoint(
            session, settings, event_id, tenant_id=tenant_id, provider=provider, event=event, now=now
        )
    if result is not None:
        WEBHOOK_EVENTS.labels(provider=provider, outcome=result.value).inc()
    else:
        WEBHOOK_EVENTS.labels(provider=provider, outcome="deferred").inc()
    return Received(event_id=event_id, result=result)


async def _apply_in_savepoint(
    session: AsyncSession,
    settings: Settings,
    event_id: str,
    *,
    tenant_id: str,
    provider: str,
    event: NeutralEvent,
    now: datetime,
) -> EventResult | None:
    error = "the order kept changing while applying"
    for _ in range(_IMMEDIATE_TRIES):
        try:
            async with session.begin_nested():
                outcome = await apply_neutral_event(
                    session, tenant_id=tenant_id, provider=provider, event=event, settings=settings, now=now
                )
        except OrderChanged:
            continue  # someone moved the order between our read and write: decide again
        except Exception as exc:  # the event must outlive any failure: log, schedule a retry
            log.exception("payment_event_apply_failed", event_id=event_id)
            error = f"{type(exc).__name__}: {exc}"
            break
        else:
            await session.execute(
                update(PaymentEvent)
                .where(PaymentEvent.id == event_id)
                .values(result=outcome.result)
                .execution_options(synchronize_session=False)
            )
            log.info(
                "payment_event_applied", event_id=event_id, result=outcome.result.value, note=outcome.note
            )
            return outcome.result
    # Left for the retry job (unclaimed, its first attempt counted), unless one attempt is all
    # it may have.
    final = settings.event_max_apply_attempts <= 1
    await session.execute(
        update(PaymentEvent)
        .where(PaymentEvent.id == event_id)
        .values(
            processed_at=None,
            attempts=1,
            error=error[:4000],
            result=EventResult.FAILED if final else None,
            next_attempt_at=None if final else now + retry_delay(1),
        )
        .execution_options(synchronize_session=False)
    )
    return EventResult.FAILED if final else None


async def _record_failure(
    database: Database, event_id: str, error: str, settings: Settings
) -> EventResult | None:
    async with database.session(write=True) as session:
        row = await session.get(PaymentEvent, event_id, with_for_update=True)
        assert row is not None
        row.attempts += 1
        row.error = error[:4000]
        if row.attempts >= settings.event_max_apply_attempts:
            row.result = EventResult.FAILED
            row.next_attempt_at = None
            return EventResult.FAILED
        row.next_attempt_at = utcnow() + retry_delay(row.attempts)
    return None


async def apply_stored_event(
    database: Database, registry: ProviderRegistry, settings: Settings, event_id: str
) -> EventResult | None:
    """Claim and apply one inbox row in its own transaction.

    Returns the result, or None when another process had already claimed it or when applying
    failed and was scheduled for a retry.
    """
    for _ in range(_IMMEDIATE_TRIES):
        try:
            async with database.session(write=True) as session:
                now = utcnow()
                # Claim and read in one statement: only the transaction that flips processed_at
                # gets a row back, so two appliers can never both apply.
                claimed = (
                    await session.execute(
                        update(PaymentEvent)
                        .where(PaymentEvent.id == event_id, PaymentEvent.processed_at.is_(None))
                        .values(processed_at=now)
                        .returning(
                            PaymentEvent.tenant_id,
                            PaymentEvent.provider,
                            PaymentEvent.payload,
                            PaymentEvent.livemode,
                        )
                        .execution_options(synchronize_session=False)
                    )
                ).one_or_none()
                if claimed is None:
                    return None
                tenant_id, provider, payload, livemode = claimed
                outcome = await apply_neutral_event(
                    session,
                    tenant_id=tenant_id,
                    provider=provider,
                    event=neutral_from_payload(registry, provider, payload, livemode=livemode),
                    settings=settings,
                    now=now,
                )
                await session.execute(
                    update(PaymentEvent)
                    .where(PaymentEvent.id == event_id)
                    .values(result=outcome.result, error=None, next_attempt_at=None)
                    .execution_options(synchronize_session=False)
                )
            WEBHOOK_EVENTS.labels(provider=provider, outcome=outcome.result.value).inc()
            log.info(
                "payment_event_applied", event_id=event_id, result=outcome.result.value, note=outcome.note
            )
            return outcome.result
        except OrderChanged:
            continue  # someone moved the order between our read and write: decide again
        except Exception as exc:  # the event must outlive any failure: log, schedule a retry
            log.exception("payment_event_apply_failed", event_id=event_id)
            final = await _record_failure(database, event_id, f"{type(exc).__name__}: {exc}", settings)
            provider = await _provider_of(database, event_id)
            WEBHOOK_EVENTS.labels(provider=provider, outcome="failed" if final else "deferred").inc()
            return final
    await _record_failure(database, event_id, "the order kept changing while applying", settings)
    return None


async def _provider_of(database: Database, event_id: str) -> str:
    async with database.session(write=False) as session:
        provider = await session.scalar(select(PaymentEvent.provider).where(PaymentEvent.id == event_id))
    return provider or "unknown"


async def retry_unapplied_events(
    database: Database,
    registry: ProviderRegistry,
    settings: Settings,
    *,
    limit: int = 100,
    now: datetime | None = None,
) -> int:
    """Periodic job: apply inbox rows whose first application failed, when their retry is due."""
    now = now or utcnow()
    async with database.session(write=False) as session:
        due = list(
            await session.scalars(
                select(PaymentEvent.id)
                .where(
                    PaymentEvent.processed_at.is_(None),
                    PaymentEvent.result.is_(None),
                    or_(PaymentEvent.next_attempt_at.is_(None), PaymentEvent.next_attempt_at <= now),
                    # Leave fresh rows to the request that stored them.
                    PaymentEvent.received_at <= now - timedelta(seconds=5),
                )
                .order_by(PaymentEvent.received_at)
                .limit(limit)
            )
        )
    for event_id in due:
        await apply_stored_event(database, registry, settings, event_id)
    return len(due)


async def replay_failed_event(database: Database, event_id: str) -> bool:
    """Put a `failed` event back in line (after the fix that makes it applicable has shipped)."""
    async with database.session(write=True) as session:
        result = await session.execute(
            update(PaymentEvent)
            .where(PaymentEvent.id == event_id, PaymentEvent.result == EventResult.FAILED)
            .values(result=None, attempts=0, next_attempt_at=utcnow(), error=None)
            .execution_options(synchronize_session=False)
        )
    return bool(getattr(result, "rowcount", 0))
