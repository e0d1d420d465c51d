"""The webhook inbox: store first (and commit), apply after, retry what failed.

Once `store_event` returns, the event cannot be lost: applying it may fail (a bug, a lock
timeout) and is then retried with backoff by `retry_unapplied_events`, until it is applied or
marked `failed` for a person to look at and replay.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select, update

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


async def store_event(
    database: Database,
    *,
    tenant_id: str,
    provider: str,
    event: NeutralEvent,
    payload: dict[str, Any],
) -> str | None:
    """Insert into the inbox and commit. Returns the new row's id, or None for a duplicate."""
    event_id = new_id("evt")
    async with database.session(write=True) as session:
        result = await session.execute(
            upsert_insert(session, PaymentEvent.__table__)
            .values(
                id=event_id,
                tenant_id=tenant_id,
                livemode=event.livemode,
                provider=provider,
                provider_event_id=event.provider_event_id,
                type=event.type[:100],
                # What the provider signed may hold text no database stores (a NUL a buyer typed):
                # kept readable rather than refused, which would have the provider resend forever.
                payload=storable_document(payload),
                received_at=utcnow(),
                attempts=0,
                correlation_id=current_request_id(),
            )
            .on_conflict_do_nothing(index_elements=["tenant_id", "provider", "provider_event_id"])
        )
        stored = bool(getattr(result, "rowcount", 0))
    return event_id if stored else None


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
