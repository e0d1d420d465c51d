"""Periodic job: ask providers about payments that stayed open, so a lost webhook never loses money.

What the provider's status API says is applied through the same door as a webhook: a synthetic
event, stored in the inbox under a stable id (so reconciling twice applies once), then applied.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import and_, func, or_, select, update

from paycore.clock import utcnow
from paycore.config import Settings
from paycore.db import Database
from paycore.logging import get_logger
from paycore.ops.metrics import PAYMENTS_RECONCILED, PROVIDER_CALL_FAILURES
from paycore.orders.models import Order
from paycore.orders.states import AttemptStatus, OrderStatus
from paycore.payments.inbox import apply_stored_event, store_event, synthetic_payload
from paycore.payments.models import PaymentAttempt
from paycore.payments.providers.base import (
    NeutralEvent,
    NeutralKind,
    ProviderAccount,
    ProviderNotConfigured,
    ProviderPaymentState,
    ProviderPaymentStatus,
    ProviderRequestRefused,
    ProviderUnavailable,
)
from paycore.payments.providers.registry import ProviderRegistry
from paycore.tenancy.models import Tenant

log = get_logger(__name__)

# After this long a payment nobody completed is no longer asked about.
GIVE_UP_AFTER = timedelta(days=7)
MAX_CHECK_INTERVAL = timedelta(hours=6)
# Orders a late payment could still be for.
_UNPAID = (OrderStatus.PENDING_PAYMENT, OrderStatus.EXPIRED, OrderStatus.CANCELED)
_KIND = {
    ProviderPaymentState.SUCCEEDED: NeutralKind.PAYMENT_SUCCEEDED,
    ProviderPaymentState.FAILED: NeutralKind.PAYMENT_FAILED,
    ProviderPaymentState.CANCELED: NeutralKind.PAYMENT_FAILED,
}


def next_check_delay(settings: Settings, checks: int) -> timedelta:
    """After the first look, each further one waits twice as long, up to six hours."""
    delay: timedelta = timedelta(minutes=settings.reconcile_after_minutes) * 2 ** min(checks, 16)
    return min(delay, MAX_CHECK_INTERVAL)


async def reconcile_open_payments(
    database: Database,
    registry: ProviderRegistry,
    settings: Settings,
    *,
    now: datetime | None = None,
    limit: int = 100,
) -> int:
    """Ask the provider about attempts that may still turn into money: open ones, ones we canceled
    when their order expired, and failed ones whose order has not been paid otherwise (Stripe and
    Razorpay let a customer pay again after a decline). Returns how many were settled."""
    now = now or utcnow()
    async with database.session(write=False) as session:
        rows = list(
            await session.execute(
                select(PaymentAttempt, Tenant)
                .join(Tenant, Tenant.id == PaymentAttempt.tenant_id)
                .join(Order, Order.id == PaymentAttempt.order_id)
                .where(
                    or_(
                        PaymentAttempt.status.in_(
                            [AttemptStatus.CREATED, AttemptStatus.REQUIRES_ACTION, AttemptStatus.CANCELED]
                        ),
                        and_(PaymentAttempt.status == AttemptStatus.FAILED, Order.status.in_(_UNPAID)),
                    ),
                    PaymentAttempt.provider_ref.is_not(None),
                    PaymentAttempt.created_at <= now - timedelta(minutes=settings.reconcile_after_minutes),
                    PaymentAttempt.created_at >= now - GIVE_UP_AFTER,
                    or_(PaymentAttempt.next_reconcile_at.is_(None), PaymentAttempt.next_reconcile_at <= now),
                )
                .order_by(func.coalesce(PaymentAttempt.next_reconcile_at, PaymentAttempt.created_at))
                .limit(limit)
            )
        )
    settled = 0
    for attempt, tenant in rows:
        if await _check_one(database, registry, settings, attempt, tenant):
            settled += 1
        else:
            await _back_off(database, settings, attempt, now)
    return settled


async def _check_one(
    database: Database,
    registry: ProviderRegistry,
    settings: Settings,
    attempt: PaymentAttempt,
    tenant: Tenant,
) -> bool:
    provider = registry.get(attempt.provider)
    account = ProviderAccount(tenant_id=tenant.id, tenant_slug=tenant.slug, livemode=attempt.livemode)
    assert attempt.provider_ref is not None
    try:
        if attempt.status in (AttemptStatus.CREATED, AttemptStatus.REQUIRES_ACTION):
            status = await provider.settle(account, attempt.provider_ref)
        else:  # expired or failed on our side: look, never capture
            status = await provider.fetch_status(account, attempt.provider_ref)
    except (ProviderUnavailable, TimeoutError) as exc:
        PROVIDER_CALL_FAILURES.labels(provider=provider.name, operation="fetch_status").inc()
        log.warning("reconcile_status_unavailable", attempt=attempt.id, error=repr(exc))
        return False
    except (ProviderNotConfigured, ProviderRequestRefused) as exc:
        # Keys removed or revoked: nothing to learn until they are back.
        log.warning("reconcile_status_refused", attempt=attempt.id, error=str(exc))
        return False
    if attempt.status in (AttemptStatus.CANCELED, AttemptStatus.FAILED) and (
        status.state is not ProviderPaymentState.SUCCEEDED
    ):
        return False  # closed on our side and the provider agrees nothing was paid (yet)
    if await apply_provider_status(
        database, registry, settings, attempt=attempt, status=status, source="reconcile"
    ):
        PAYMENTS_RECONCILED.labels(provider=provider.name, state=status.state.value).inc()
        return True
    return False


async def _back_off(database: Database, settings: Settings, attempt: PaymentAttempt, now: datetime) -> None:
    async with database.session(write=True) as session:
        await session.execute(
            update(PaymentAttempt)
            .where(PaymentAttempt.id == attempt.id)
            .values(
                reconcile_checks=PaymentAttempt.reconcile_checks + 1,
                next_reconcile_at=now + next_check_delay(settings, attempt.reconcile_checks),
            )
            .execution_options(synchronize_session=False)
        )


async def apply_provider_status(
    database: Database,
    registry: ProviderRegistry,
    settings: Settings,
    *,
    attempt: PaymentAttempt,
    status: ProviderPaymentStatus,
    source: str,
) -> bool:
    """What a provider's API said of an attempt, applied as a synthetic event. Still pending:
    nothing. The event id is stable per attempt and state, so saying it twice applies once.
    True when this call stored a new event."""
    kind = _KIND.get(status.state)
    if kind is None:
        return False
    event = NeutralEvent(
        provider_event_id=f"{source}:{attempt.id}:{status.state.value}",
        type=f"{source}.payment_{status.state.value}",
        kind=kind,
        livemode=attempt.livemode,
        payment_ref=attempt.provider_ref,
        merchant_reference=attempt.id,
        amount=status.amount,
    )
    event_id = await store_event(
        database,
        tenant_id=attempt.tenant_id,
        provider=attempt.provider,
        event=event,
        payload=synthetic_payload(event),
    )
    if event_id is None:
        return False
    await apply_stored_event(database, registry, settings, event_id)
    return True
