"""Applying one verified provider event to paycore's books: the only path by which money moves
an order. Runs inside the transaction that claimed the event, so it happens once or not at all.

What each kind of event does:
- payment succeeded: the attempt succeeds and the money is recorded. If amount and currency match,
  a pending order is paid; an expired or canceled one is paid if its stock can be taken again,
  else sent to review and (by default) refunded. A wrong amount sends the order to review. A
  second payment for an already-paid order is recorded, alerted and refunded.
- payment failed: the attempt fails; the order stays payable until it expires.
- payment pending (or authorized, awaiting our capture): the attempt waits.
- payment under the provider's fraud review: the attempt waits, ops are alerted.
- refund succeeded / failed: the refund is settled, or failed and alerted. A refund made at the
  provider directly (not through paycore) is recorded too.
- an event for no known payment is `unmatched`; a succeeded one raises an ops alert.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import case, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from paycore.audit.service import Actor, record_audit
from paycore.config import Settings
from paycore.orders.effects import mark_paid, send_to_review, take_stock_for_late_payment
from paycore.orders.models import Order
from paycore.orders.rendering import payment_failed_event_object
from paycore.orders.states import AttemptStatus, OrderStatus, can_move_attempt
from paycore.outbox.service import alert_ops, emit_merchant_event
from paycore.payments.models import EventResult, PaymentAttempt, Refund, RefundKind
from paycore.payments.providers.base import NeutralEvent, NeutralKind
from paycore.payments.refunds import (
    add_refund,
    fail_refund,
    settle_refund,
)
from paycore.write_batch import batched_writes

# The review reason of an order paid too late to have stock left.
LATE_PAYMENT_OUT_OF_STOCK = "late_payment_out_of_stock"

# Orders that already hold (or held) their money: another payment for them is a duplicate.
_ALREADY_SETTLED = frozenset(
    {
        OrderStatus.PAID,
        OrderStatus.FULFILLED,
        OrderStatus.PARTIALLY_REFUNDED,
        OrderStatus.REFUNDED,
        OrderStatus.NEEDS_REVIEW,
    }
)


@dataclass(frozen=True, slots=True)
class ApplyOutcome:
    result: EventResult
    note: str


async def _find_attempt(
    session: AsyncSession,
    *,
    tenant_id: str,
    provider: str,
    livemode: bool,
    payment_ref: str | None,
    attempt_id: str | None,
) -> tuple[PaymentAttempt, Order] | None:
    """The attempt an event is about and its order, both locked, in one statement: by the
    provider's reference, or by our attempt id when the provider echoes it (a webhook can outrun
    checkout's second transaction, which is the one that stores the provider's reference). The
    order is read here once and never again in this application."""
    matches = []
    if payment_ref:
        matches.append(PaymentAttempt.provider_ref == payment_ref)
    if attempt_id:
        matches.append(PaymentAttempt.id == attempt_id)
    if not matches:
        return None
    row = (
        await session.execute(
            select(PaymentAttempt, Order)
            .join(Order, Order.id == PaymentAttempt.order_id)
            # The mode must agree: evidence signed by the test account never moves a live order
            # (a test PaymentIntent can carry any attempt id in its metadata).
            .where(
                PaymentAttempt.tenant_id == tenant_id,
                PaymentAttempt.provider == provider,
                PaymentAttempt.livemode == livemode,
                Order.tenant_id == tenant_id,
                or_(*matches),
            )
            # Should the two ever name different attempts, the provider's reference wins.
            .order_by(case((PaymentAttempt.provider_ref == payment_ref, 0), else_=1))
            .limit(1)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    ).one_or_none()
    if row is None:
        return None
    attempt, order = row
    if attempt.provider_ref is None and payment_ref:
        attempt.provider_ref = payment_ref
    return attempt, order


def _audit_attempt(
    session: AsyncSession, attempt: PaymentAttempt, action: str, actor: Actor, details: dict[str, object]
) -> None:
    record_audit(
        session,
        actor=actor,
        action=f"payment_attempt.{action}",
        entity_type="order",
        entity_id=attempt.order_id,
        tenant_id=attempt.tenant_id,
        after={"attempt": attempt.id, **details},
    )


async def _payment_succeeded(
    session: AsyncSession,
    attempt: PaymentAttempt,
    order: Order,
    event: NeutralEvent,
    *,
    actor: Actor,
    now: datetime,
    settings: Settings,
) -> ApplyOutcome:
    if attempt.status is AttemptStatus.SUCCEEDED:
        if event.payment_ref and attempt.provider_ref and event.payment_ref != attempt.provider_ref:
            # A different charge at the provider for the same attempt (two payment sessions, say):
            # real money the order does not need. Record it as its own payment, then give it back.
            return await _another_charge(session, attempt, order, event, actor=actor, now=now)
        return ApplyOutcome(EventResult.IGNORED, "attempt already succeeded")
    received = event.amount
    attempt.status = AttemptStatus.SUCCEEDED
    attempt.succeeded_at = now
    attempt.amount_received = received.amount if received is not None else None
    _audit_attempt(
        session,
        attempt,
        "succeeded",
        actor,
        {"amount": attempt.amount_received, "currency": received.currency if received else None},
    )
    matches = (
        received is not None and received.currency == order.currency and received.amount == attempt.amount
    )
    received_amount = received.amount if received is not None and received.currency == order.currency else 0

    if order.status in _ALREADY_SETTLED:
        return await _money_the_order_does_not_need(session, order, attempt, actor=actor)

    if not matches:
        await send_to_review(
            session,
            order,
            reason="amount_mismatch",
            actor=actor,
            now=now,
            amount_received=received_amount,
            details={
                "expected": {"amount": attempt.amount, "currency": attempt.currency},
                "received": {"amount": received.amount, "currency": received.currency} if received else None,
                "attempt": attempt.id,
            },
        )
        return ApplyOutcome(EventResult.MISMATCH, "amount or currency differs from the order")

    if order.status is OrderStatus.PENDING_PAYMENT:
        await mark_paid(
            session,
            order,
            actor=actor,
            now=now,
            amount_paid=received_amount,
            late=False,
            notify_whatsapp=settings.whatsapp_enabled,
        )
        return ApplyOutcome(EventResult.APPLIED, "order paid")

    # Expired or canceled: the money is real, the reservation is gone.
    if await take_stock_for_late_payment(session, order):
        await mark_paid(
            session,
            order,
            actor=actor,
            now=now,
            amount_paid=received_amount,
            late=True,
            notify_whatsapp=settings.whatsapp_enabled,
        )
        return ApplyOutcome(
            EventResult.APPLIED, f"late payment on a {order.status.value} order, stock taken again"
        )
    await send_to_review(
        session,
        order,
        reason=LATE_PAYMENT_OUT_OF_STOCK,
        actor=actor,
        now=now,
        amount_received=received_amount,
        details={"attempt": attempt.id},
    )
    if settings.late_payment_auto_refund:
        add_refund(
            session,
            order=order,
            attempt=attempt,
            amount=received_amount,
            kind=RefundKind.LATE_PAYMENT,
            reason=None,
            actor=actor,
        )
    return ApplyOutcome(EventResult.APPLIED, "late payment without stock: order in review")


async def _another_charge(
    session: AsyncSession,
    attempt: PaymentAttempt,
    order: Order,
    event: NeutralEvent,
    *,
    actor: Actor,
    now: datetime,
) -> ApplyOutcome:
    received = event.amount
    extra = PaymentAttempt(
        tenant_id=attempt.tenant_id,
        livemode=attempt.livemode,
        order_id=attempt.order_id,
        provider=attempt.provider,
        provider_ref=event.payment_ref,
        amount=attempt.amount,
        currency=attempt.currency,
        amount_received=received.amount
        if received is not None and received.currency == attempt.currency
        else 0,
        status=AttemptStatus.SUCCEEDED,
        succeeded_at=now,
    )
    session.add(extra)
    await session.flush()
    _audit_attempt(
        session, extra, "succeeded", actor, {"amount": extra.amount_received, "second_charge": True}
    )
    return await _money_the_order_does_not_need(session, order, extra, actor=actor)


async def _money_the_order_does_not_need(
    session: AsyncSession, order: Order, attempt: PaymentAttempt, *, actor: Actor
) -> ApplyOutcome:
    """A second payment for an order already paid (or under review): keep the record, give it back."""
    amount = attempt.amount_received or 0
    await alert_ops(
        session,
        tenant_id=order.tenant_id,
        livemode=order.livemode,
        code=RefundKind.DUPLICATE_PAYMENT.value,
        message=f"Order {order.number} received a second payment ({attempt.id}); it is being refunded.",
        subject_key=attempt.id,
        details={
            "order": order.id,
            "attempt": attempt.id,
            "amount": amount,
            "order_status": order.status.value,
        },
    )
    if amount > 0:
        add_refund(
            session,
            order=order,
            attempt=attempt,
            amount=amount,
            kind=RefundKind.DUPLICATE_PAYMENT,
            reason=None,
            actor=actor,
        )
    return ApplyOutcome(EventResult.APPLIED, "duplicate payment recorded and refunded")


async def _payment_failed(
    session: AsyncSession, attempt: PaymentAttempt, order: Order, event: NeutralEvent, *, actor: Actor
) -> ApplyOutcome:
    if not can_move_attempt(attempt.status, AttemptStatus.FAILED):
        return ApplyOutcome(EventResult.IGNORED, f"attempt is {attempt.status.value}")
    attempt.status = AttemptStatus.FAILED
    attempt.failure_reason = event.failure_reason
    _audit_attempt(session, attempt, "failed", actor, {"reason": event.failure_reason})
    await emit_merchant_event(
        session,
        tenant_id=attempt.tenant_id,
        livemode=attempt.livemode,
        event_type="payment.failed",
        subject_key=attempt.id,
        order_id=order.id,
        data=await payment_failed_event_object(session, order, attempt),
    )
    return ApplyOutcome(EventResult.APPLIED, "attempt failed; order still payable")


def _payment_pending(attempt: PaymentAttempt) -> ApplyOutcome:
    if attempt.status is AttemptStatus.CREATED:
        attempt.status = AttemptStatus.REQUIRES_ACTION
        return ApplyOutcome(EventResult.APPLIED, "attempt waiting for the customer")
    return ApplyOutcome(EventResult.IGNORED, f"attempt is {attempt.status.value}")


async def _payment_under_review(
    session: AsyncSession, attempt: PaymentAttempt, event: NeutralEvent, *, provider: str
) -> ApplyOutcome:
    """The provider holds the payment for a fraud review. The order stays unpaid (and may expire
    as usual); the merchant decides in the provider's dashboard, and that decision arrives as a
    success (paid, or a late payment if the order expired meanwhile) or a failure."""
    if attempt.status is not AttemptStatus.CREATED and attempt.status is not AttemptStatus.REQUIRES_ACTION:
        return ApplyOutcome(EventResult.IGNORED, f"attempt is {attempt.status.value}")
    attempt.status = AttemptStatus.REQUIRES_ACTION
    await alert_ops(
        session,
        tenant_id=attempt.tenant_id,
        livemode=attempt.livemode,
        code="payment_under_review",
        message=(
            f"{provider} is holding payment {event.payment_ref} for a fraud review: approve or deny it "
            "in the provider's dashboard. The order stays unpaid until then."
        ),
        subject_key=event.provider_event_id,
        details={"attempt": attempt.id, "order": attempt.order_id, "payment_ref": event.payment_ref},
    )
    return ApplyOutcome(EventResult.APPLIED, "payment held for the provider's fraud review")


async def _find_refund(
    session: AsyncSession, *, tenant_id: str, provider: str, event: NeutralEvent
) -> Refund | None:
    conditions = []
    if event.refund_ref:
        conditions.append(Refund.provider_ref == event.refund_ref)
    if event.merchant_reference:
        conditions.append(Refund.id == event.merchant_reference)
    for condition in conditions:
        refund = await session.scalar(
            select(Refund)
            .where(
                Refund.tenant_id == tenant_id,
                Refund.provider == provider,
                Refund.livemode == event.livemode,
                condition,
            )
            .with_for_update()
        )
        if refund is not None:
            return refund
    return None


async def _refund_event(
    session: AsyncSession, *, tenant_id: str, provider: str, event: NeutralEvent, actor: Actor, now: datetime
) -> ApplyOutcome:
    refund = await _find_refund(session, tenant_id=tenant_id, provider=provider, event=event)
    if refund is None:
        found = await _find_attempt(
            session,
            tenant_id=tenant_id,
            provider=provider,
            livemode=event.livemode,
            payment_ref=event.payment_ref,
            attempt_id=None,
        )
        if event.kind is not NeutralKind.REFUND_SUCCEEDED:
            return ApplyOutcome(EventResult.UNMATCHED, "no refund or payment matches")
        if found is None or event.amount is None:
            # Money went back that the books cannot place: until someone does, paycore would let
            # the merchant refund it again.
            await alert_ops(
                session,
                tenant_id=tenant_id,
                livemode=event.livemode,
                code="unmatched_refund",
                message=f"A {provider} refund ({event.refund_ref}) matches no payment paycore knows.",
                subject_key=event.provider_event_id,
                details={"refund_ref": event.refund_ref, "payment_ref": event.payment_ref},
            )
            return ApplyOutcome(EventResult.UNMATCHED, "no refund or payment matches")
        # Refunded at the provider directly: record it so the books agree with the provider.
        attempt, order = found
        refund = add_refund(
            session,
            order=order,
            attempt=attempt,
            amount=event.amount.amount,
            kind=RefundKind.PROVIDER,
            reason="refunded at the provider",
            actor=actor,
        )
        refund.provider_ref = event.refund_ref
        await session.flush()
    if event.kind is NeutralKind.REFUND_SUCCEEDED:
        settled = await settle_refund(session, refund, provider_ref=event.refund_ref, actor=actor, now=now)
        return ApplyOutcome(EventResult.APPLIED if settled else EventResult.IGNORED, "refund settled")
    failed = await fail_refund(session, refund, reason=event.failure_reason, actor=actor)
    return ApplyOutcome(EventResult.APPLIED if failed else EventResult.IGNORED, "refund failed")


async def apply_neutral_event(
    session: AsyncSession,
    *,
    tenant_id: str,
    provider: str,
    event: NeutralEvent,
    settings: Settings,
    now: datetime,
) -> ApplyOutcome:
    # The audit and outbox rows of the whole application go in one insert each, at the end.
    async with batched_writes(session):
        return await _apply(
            session, tenant_id=tenant_id, provider=provider, event=event, settings=settings, now=now
        )


async def _apply(
    session: AsyncSession,
    *,
    tenant_id: str,
    provider: str,
    event: NeutralEvent,
    settings: Settings,
    now: datetime,
) -> ApplyOutcome:
    actor = Actor(name=f"provider:{provider}")
    if event.kind is NeutralKind.IGNORED:
        return ApplyOutcome(EventResult.IGNORED, f"event type {event.type!r} is not one paycore acts on")
    if event.kind in (NeutralKind.REFUND_SUCCEEDED, NeutralKind.REFUND_FAILED):
        return await _refund_event(
            session, tenant_id=tenant_id, provider=provider, event=event, actor=actor, now=now
        )
    found = await _find_attempt(
        session,
        tenant_id=tenant_id,
        provider=provider,
        livemode=event.livemode,
        payment_ref=event.payment_ref,
        attempt_id=event.merchant_reference,
    )
    if found is None:
        if event.kind is NeutralKind.PAYMENT_SUCCEEDED:
            await alert_ops(
                session,
                tenant_id=tenant_id,
                livemode=event.livemode,
                code="unmatched_payment",
                message=f"A {provider} payment ({event.payment_ref}) succeeded that matches no order.",
                subject_key=event.provider_event_id,
                details={"payment_ref": event.payment_ref, "reference": event.merchant_reference},
            )
        return ApplyOutcome(EventResult.UNMATCHED, "no payment attempt matches")
    attempt, order = found
    if event.kind is NeutralKind.PAYMENT_SUCCEEDED:
        return await _payment_succeeded(
            session, attempt, order, event, actor=actor, now=now, settings=settings
        )
    if event.kind is NeutralKind.PAYMENT_FAILED:
        return await _payment_failed(session, attempt, order, event, actor=actor)
    if event.kind in (NeutralKind.PAYMENT_PENDING, NeutralKind.PAYMENT_AUTHORIZED):
        return _payment_pending(attempt)
    if event.kind is NeutralKind.PAYMENT_NEEDS_REVIEW:
        return await _payment_under_review(session, attempt, event, provider=provider)
    await alert_ops(
        session,
        tenant_id=tenant_id,
        livemode=event.livemode,
        code="dispute_opened",
        message=f"A dispute was opened on {provider} payment {event.payment_ref}.",
        subject_key=event.provider_event_id,
        details={"attempt": attempt.id, "order": attempt.order_id},
    )
    return ApplyOutcome(EventResult.APPLIED, "dispute recorded and alerted")
