"""Payment attempts: asking the provider for a payment session, and paying an unpaid order again.

An order stays payable while it is `pending_payment` and not expired (its stock stays reserved
all that time), so a declined card or a provider that did not answer is not a dead end: the
storefront or the merchant opens a new attempt, with the same provider or another one.

At most one attempt of an order is open (`created` or `requires_action`) at a time. A second one
is refused (409 `payment_attempt_open`) rather than the first canceled for it: not every provider
can cancel (a PayPal order, a Midtrans Snap page stay payable until they expire), and a cancel
racing the customer's own payment would decide nothing. The rule is checked under the order's row
lock (PostgreSQL `FOR UPDATE`; SQLite's single writer), so concurrent requests open one attempt.
An earlier attempt that still succeeds late is applied like any payment (`payments/apply.py`): on
an order already paid it is recorded and refunded, never paid twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import String, bindparam, case, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from paycore.audit.service import Actor, record_audit
from paycore.auth.context import TenantContext
from paycore.checkout.durability import require_durable_database
from paycore.checkout.receipts import receipt_token
from paycore.clock import utcnow
from paycore.config import Settings
from paycore.customers.models import Customer
from paycore.db import Database, table_of
from paycore.errors import Conflict, InvalidRequest, ProviderError, ServiceUnavailable
from paycore.logging import get_logger
from paycore.money import Money
from paycore.ops.metrics import CHECKOUTS, PROVIDER_CALL_FAILURES
from paycore.orders.models import Order, OrderItem
from paycore.orders.rendering import order_items
from paycore.orders.service import get_order
from paycore.orders.states import AttemptStatus, InvalidTransition, OrderStatus
from paycore.orders.transitions import lock_order
from paycore.payments.models import PaymentAttempt
from paycore.payments.providers.base import (
    PaymentProvider,
    PaymentRequest,
    PaymentSession,
    ProviderAccount,
    ProviderNotConfigured,
    ProviderRequestRefused,
    ProviderUnavailable,
)
from paycore.payments.providers.registry import ProviderRegistry

log = get_logger(__name__)

OPEN_ATTEMPT_STATUSES = (AttemptStatus.CREATED, AttemptStatus.REQUIRES_ACTION)
# How long past the provider call's own timeout a `created` attempt still counts as in flight.
_LOST_CALL_MARGIN_SECONDS = 60


def storefront_retry_path(order_id: str) -> str:
    return f"/v1/storefront/orders/{order_id}/payment_attempts"


@dataclass(frozen=True, slots=True)
class OpenedAttempt:
    order: Order
    items: list[OrderItem]
    attempt: PaymentAttempt


def account_for(context: TenantContext) -> ProviderAccount:
    return ProviderAccount(
        tenant_id=context.tenant_id, tenant_slug=context.tenant_slug, livemode=context.livemode
    )


async def ensure_provider_ready(provider: PaymentProvider, account: ProviderAccount) -> None:
    try:
        await provider.check_ready(account)
    except ProviderNotConfigured as exc:
        raise InvalidRequest(f"{exc}.", code="provider_not_configured", param="provider") from None


_attempts = table_of(PaymentAttempt)
# Built once (every checkout stores the provider's answer), its values bound at execution.
_ATTACH_PAYMENT_SESSION = (
    update(_attempts)
    .where(_attempts.c.id == bindparam("attempt"))
    .values(
        provider_ref=func.coalesce(_attempts.c.provider_ref, bindparam("answered_ref", type_=String())),
        redirect_url=bindparam("answered_url", type_=String()),
        client_data=bindparam("answered_data", type_=_attempts.c.client_data.type),
        status=case(
            (_attempts.c.status == AttemptStatus.CREATED, AttemptStatus.REQUIRES_ACTION),
            else_=_attempts.c.status,
        ),
        updated_at=bindparam("answered_at"),
    )
    .returning(*_attempts.c)
)


async def _attach_payment_session(
    session: AsyncSession, attempt_id: str, payment: PaymentSession
) -> PaymentAttempt:
    """Store what the provider answered. One conditional UPDATE: a webhook that already moved the
    attempt on (or stored the reference) is not undone. The attempt returned is not attached to
    the session."""
    row = (
        await session.execute(
            _ATTACH_PAYMENT_SESSION,
            {
                "attempt": attempt_id,
                "answered_ref": payment.provider_ref,
                "answered_url": payment.redirect_url,
                "answered_data": payment.client_data,
                "answered_at": utcnow(),
            },
        )
    ).one()
    return PaymentAttempt(**row._mapping)


async def _fail_unstarted_attempt(
    session: AsyncSession, attempt: PaymentAttempt, reason: str, *, actor: Actor
) -> None:
    """The provider gave the customer no page to pay on: the attempt is over, so the order can be
    paid again. Only from `created`: a webhook that already moved it on is not undone, and should
    the provider have made a payment after all, its late success still applies (failed → succeeded)."""
    failed = await session.execute(
        update(PaymentAttempt)
        .where(PaymentAttempt.id == attempt.id, PaymentAttempt.status == AttemptStatus.CREATED)
        .values(status=AttemptStatus.FAILED, failure_reason=reason, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    if getattr(failed, "rowcount", 0):
        record_audit(
            session,
            actor=actor,
            action="payment_attempt.failed",
            entity_type="order",
            entity_id=attempt.order_id,
            tenant_id=attempt.tenant_id,
            after={"attempt": attempt.id, "reason": reason},
        )


def _payable_order(order: Order, settings: Settings) -> dict[str, Any]:
    """What the caller of a failed attempt needs to pay the order again."""
    return {
        "id": order.id,
        "object": "order",
        "status": order.status.value,
        "expires_at": order.expires_at.isoformat(),
        "receipt_token": receipt_token(settings, order.id),
        "payment_attempts_url": storefront_retry_path(order.id),
    }


async def request_payment_session(
    database: Database,
    provider: PaymentProvider,
    settings: Settings,
    *,
    order: Order,
    attempt: PaymentAttempt,
    request: PaymentRequest,
    actor: Actor,
) -> PaymentAttempt:
    """Ask the provider for a payment session (outside any transaction) and store its answer.
    When it refuses or does not answer, the attempt fails and the error names the order and the
    way to pay it again."""
    try:
        payment = await provider.create_payment(request)  # timed and guarded by the registry's breaker
    except (ProviderNotConfigured, ProviderRequestRefused) as exc:
        # The provider refused our request (a revoked key, a currency it does not take): no
        # payment exists. Another provider may take it; the merchant must fix this one.
        CHECKOUTS.labels(outcome="provider_refused").inc()
        log.error("checkout_provider_refused", provider=provider.name, order=order.id, error=str(exc))
        async with database.session(write=True) as session:
            await _fail_unstarted_attempt(session, attempt, "provider_refused", actor=actor)
        raise ProviderError(
            f"The {provider.name} provider refused to start this payment. Order {order.id} stays "
            f"payable until {order.expires_at.isoformat()}: pay it with another payment method "
            f"through POST {storefront_retry_path(order.id)}.",
            code="provider_refused",
            extra={"order": _payable_order(order, settings)},
        ) from None
    except (ProviderUnavailable, TimeoutError) as exc:
        PROVIDER_CALL_FAILURES.labels(provider=provider.name, operation="create_payment").inc()
        CHECKOUTS.labels(outcome="provider_unavailable").inc()
        log.warning("checkout_provider_unavailable", provider=provider.name, order=order.id, error=repr(exc))
        async with database.session(write=True) as session:
            await _fail_unstarted_attempt(session, attempt, "provider_unavailable", actor=actor)
        raise ServiceUnavailable(
            f"The {provider.name} provider is not answering. Order {order.id} stays payable until "
            f"{order.expires_at.isoformat()}: try again through POST {storefront_retry_path(order.id)}.",
            code="provider_unavailable",
            extra={"order": _payable_order(order, settings)},
        ) from None
    # One conditional UPDATE: no transaction of its own.
    async with database.single_statement() as session:
        return await _attach_payment_session(session, attempt.id, payment)


async def _last_attempt(session: AsyncSession, order: Order) -> PaymentAttempt | None:
    attempt: PaymentAttempt | None = await session.scalar(
        select(PaymentAttempt)
        .where(PaymentAttempt.tenant_id == order.tenant_id, PaymentAttempt.order_id == order.id)
        .order_by(PaymentAttempt.created_at.desc(), PaymentAttempt.id.desc())
        .limit(1)
    )
    return attempt


async def _open_attempt_row(
    session: AsyncSession, context: TenantContext, settings: Settings, order_id: str, *, provider_name: str
) -> tuple[Order, PaymentAttempt, str]:
    """The writing transaction: under the order's lock, check it is payable and has no open
    attempt, then add the new attempt. The stock is the order's already: nothing is reserved."""
    scoped = await get_order(session, context, order_id)  # tenant, mode, not deleted
    order = await lock_order(session, order_id=scoped.id, tenant_id=context.tenant_id)
    now = utcnow()
    if order.status is not OrderStatus.PENDING_PAYMENT:
        raise InvalidTransition(f"An order that is {order.status.value} cannot be paid again.", param="id")
    if order.expires_at <= now:
        raise Conflict(
            "This order has expired; its items are no longer reserved. Check out again.",
            code="order_expired",
            param="id",
        )
    open_attempts = (
        await session.scalars(
            select(PaymentAttempt).where(
                PaymentAttempt.tenant_id == order.tenant_id,
                PaymentAttempt.order_id == order.id,
                PaymentAttempt.status.in_(OPEN_ATTEMPT_STATUSES),
            )
        )
    ).all()
    # A `created` attempt is one whose provider call has not come back. Every such call is cut
    # off after `provider_timeout_seconds`, so one much older than that was lost with its process
    # (a crash between the two transactions of checkout): it must not lock the order for good.
    lost_before = now - timedelta(seconds=settings.provider_timeout_seconds + _LOST_CALL_MARGIN_SECONDS)
    for open_attempt in open_attempts:
        if open_attempt.status is AttemptStatus.CREATED and open_attempt.created_at <= lost_before:
            await _fail_unstarted_attempt(session, open_attempt, "provider_answer_lost", actor=context.actor)
            continue
        raise Conflict(
            f"Payment attempt {open_attempt.id} of this order is still open: let the customer finish "
            "or abandon it (a decline or a failure ends it) before opening another.",
            code="payment_attempt_open",
        )
    attempt = PaymentAttempt(
        tenant_id=order.tenant_id,
        livemode=order.livemode,
        order_id=order.id,
        provider=provider_name,
        amount=order.total,
        currency=order.currency,
    )
    session.add(attempt)
    # The order names the provider it is being paid through: the latest attempt's.
    order.provider = provider_name
    order.updated_at = now
    await session.flush()
    record_audit(
        session,
        actor=context.actor,
        action="payment_attempt.created",
        entity_type="order",
        entity_id=order.id,
        tenant_id=order.tenant_id,
        after={"attempt": attempt.id, "provider": provider_name, "amount": order.total, "retry": True},
    )
    email = await session.scalar(select(Customer.email).where(Customer.id == order.customer_id))
    return order, attempt, email or ""


async def open_payment_attempt(
    database: Database,
    registry: ProviderRegistry,
    settings: Settings,
    context: TenantContext,
    order_id: str,
    *,
    provider_name: str | None,
    return_url: str | None,
) -> OpenedAttempt:
    """Pay an unpaid order again: a new attempt with `provider_name` (default: the last one's)."""
    async with database.session(write=False) as session:
        order = await get_order(session, context, order_id)  # another tenant's or mode's: 404 first
        last = await _last_attempt(session, order)
    if context.livemode:
        await require_durable_database(database)
    provider = registry.for_checkout(
        provider_name or (last.provider if last else order.provider), livemode=context.livemode
    )
    account = account_for(context)
    await ensure_provider_ready(provider, account)
    async with database.session(write=True) as session:
        order, attempt, email = await _open_attempt_row(
            session, context, settings, order_id, provider_name=provider.name
        )
        items = await order_items(session, order)
    request = PaymentRequest(
        account=account,
        attempt_id=attempt.id,
        order_id=order.id,
        order_number=order.number,
        amount=Money(order.total, order.currency),
        customer_email=email,
        return_url=return_url,
    )
    attempt = await request_payment_session(
        database, provider, settings, order=order, attempt=attempt, request=request, actor=context.actor
    )
    CHECKOUTS.labels(outcome="retried").inc()
    return OpenedAttempt(order=order, items=items, attempt=attempt)
