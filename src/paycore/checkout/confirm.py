"""`POST /v1/checkout/{order_id}/confirm`: the customer is back from the provider.

The browser's word is not evidence. The provider adapter checks what it brought back (Razorpay's
signature), does what the provider needs at this point (PayPal: capture), and answers from the
provider's own API; that answer is applied like a webhook, through the inbox under a stable id, so
a confirm racing the webhook — or sent twice — moves the order once.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import select

from paycore.auth.context import TenantContext
from paycore.config import Settings
from paycore.db import Database
from paycore.errors import InvalidRequest, NotFound, ProviderError, ServiceUnavailable
from paycore.logging import get_logger
from paycore.ops.metrics import PROVIDER_CALL_FAILURES
from paycore.orders.models import Order
from paycore.payments.models import PaymentAttempt
from paycore.payments.providers.base import (
    ConfirmationRejected,
    ProviderAccount,
    ProviderNotConfigured,
    ProviderRequestRefused,
    ProviderUnavailable,
)
from paycore.payments.providers.registry import ProviderRegistry
from paycore.payments.reconcile import apply_provider_status

log = get_logger(__name__)


async def _latest_attempt(database: Database, context: TenantContext, order_id: str) -> PaymentAttempt:
    async with database.session(write=False) as session:
        order = await session.scalar(
            select(Order).where(
                Order.id == order_id, Order.tenant_id == context.tenant_id, Order.livemode == context.livemode
            )
        )
        if order is None:
            raise NotFound(f"No such order: '{order_id}'.", param="id")
        attempt = await session.scalar(
            select(PaymentAttempt)
            .where(PaymentAttempt.order_id == order.id, PaymentAttempt.tenant_id == context.tenant_id)
            .order_by(PaymentAttempt.created_at.desc(), PaymentAttempt.id.desc())
            .limit(1)
        )
    if attempt is None or attempt.provider_ref is None:
        raise InvalidRequest("This order has no payment at a provider yet.", code="payment_not_started")
    return attempt


async def confirm_return(
    database: Database,
    registry: ProviderRegistry,
    settings: Settings,
    context: TenantContext,
    *,
    order_id: str,
    params: Mapping[str, Any],
) -> None:
    attempt = await _latest_attempt(database, context, order_id)
    provider = registry.get(attempt.provider)
    account = ProviderAccount(
        tenant_id=context.tenant_id, tenant_slug=context.tenant_slug, livemode=attempt.livemode
    )
    assert attempt.provider_ref is not None
    try:
        status = await provider.confirm(account, attempt.provider_ref, params)
    except ConfirmationRejected as exc:
        log.warning(
            "checkout_confirmation_rejected", provider=provider.name, attempt=attempt.id, reason=str(exc)
        )
        raise InvalidRequest(
            f"The payment confirmation is not valid: {exc}.", code="confirmation_invalid"
        ) from None
    except (ProviderUnavailable, TimeoutError):
        PROVIDER_CALL_FAILURES.labels(provider=provider.name, operation="confirm").inc()
        raise ServiceUnavailable(
            f"The {provider.name} provider is not answering; the payment will be confirmed when it does.",
            code="provider_unavailable",
        ) from None
    except (ProviderNotConfigured, ProviderRequestRefused) as exc:
        log.error("checkout_confirmation_refused", provider=provider.name, attempt=attempt.id, error=str(exc))
        raise ProviderError(
            f"The {provider.name} provider refused to confirm this payment.", code="provider_refused"
        ) from None
    await apply_provider_status(
        database, registry, settings, attempt=attempt, status=status, source="confirm"
    )
