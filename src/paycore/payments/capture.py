"""Capturing a payment the customer approved (PayPal's CHECKOUT.ORDER.APPROVED), right after the
webhook that said so is stored and applied — outside any transaction, as every provider call is.

If the capture cannot be made now, nothing is lost: the customer's return (`confirm`) and the
reconcile job ask the adapter again, and the adapter's capture is idempotent.
"""

from __future__ import annotations

from sqlalchemy import select

from paycore.config import Settings
from paycore.db import Database
from paycore.logging import get_logger
from paycore.ops.metrics import PROVIDER_CALL_FAILURES
from paycore.orders.states import AttemptStatus
from paycore.payments.models import PaymentAttempt
from paycore.payments.providers.base import (
    NeutralEvent,
    ProviderAccount,
    ProviderNotConfigured,
    ProviderRequestRefused,
    ProviderUnavailable,
)
from paycore.payments.providers.registry import ProviderRegistry
from paycore.payments.reconcile import apply_provider_status

log = get_logger(__name__)


async def capture_authorized(
    database: Database,
    registry: ProviderRegistry,
    settings: Settings,
    *,
    account: ProviderAccount,
    provider_name: str,
    event: NeutralEvent,
) -> bool:
    """True when the capture was made and its outcome applied."""
    if not event.payment_ref:
        return False
    async with database.session(write=False) as session:
        attempt = await session.scalar(
            select(PaymentAttempt).where(
                PaymentAttempt.tenant_id == account.tenant_id,
                PaymentAttempt.provider == provider_name,
                PaymentAttempt.provider_ref == event.payment_ref,
            )
        )
    if attempt is None or attempt.status not in (AttemptStatus.CREATED, AttemptStatus.REQUIRES_ACTION):
        return False
    provider = registry.get(provider_name)
    try:
        status = await provider.settle(account, event.payment_ref)
    except (ProviderUnavailable, TimeoutError, ProviderNotConfigured, ProviderRequestRefused) as exc:
        PROVIDER_CALL_FAILURES.labels(provider=provider_name, operation="capture").inc()
        log.warning("capture_deferred", provider=provider_name, attempt=attempt.id, error=str(exc))
        return False
    # The same source as the customer's return: both report the one capture, so they share an
    # inbox id and the order moves once whichever comes first.
    await apply_provider_status(
        database, registry, settings, attempt=attempt, status=status, source="confirm"
    )
    return True
