"""Refunds: asked for by the merchant, or by paycore itself for money it must not keep
(a duplicate payment, a late payment whose stock is gone). Always through the provider."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from paycore.audit.service import Actor, record_audit
from paycore.auth.context import TenantContext
from paycore.clock import utcnow
from paycore.db import Database
from paycore.errors import InvalidRequest, NotFound
from paycore.logging import get_logger
from paycore.money import Money
from paycore.orders.effects import record_refund
from paycore.orders.models import Order
from paycore.orders.rendering import refund_event_object
from paycore.orders.states import REFUNDABLE, AttemptStatus, InvalidTransition, RefundStatus, can_move_refund
from paycore.orders.transitions import lock_order
from paycore.outbox.service import alert_ops, emit_merchant_event
from paycore.payments.models import PaymentAttempt, Refund, RefundKind
from paycore.payments.providers.base import (
    ProviderAccount,
    ProviderRequestRefused,
    RefundOutcome,
    RefundState,
)
from paycore.payments.providers.registry import ProviderRegistry
from paycore.tenancy.models import Tenant

log = get_logger(__name__)

# A claim on a refund's submission older than this was interrupted (a crash): ask again. Safe,
# since providers refund once per refund id.
SUBMISSION_CLAIM = timedelta(minutes=10)


async def pending_refund_total(session: AsyncSession, order_id: str) -> int:
    total = await session.scalar(
        select(func.coalesce(func.sum(Refund.amount), 0)).where(
            Refund.order_id == order_id,
            Refund.status == RefundStatus.PENDING,
            Refund.kind != RefundKind.DUPLICATE_PAYMENT,
        )
    )
    return int(total or 0)


async def paying_attempt(session: AsyncSession, order: Order) -> PaymentAttempt:
    attempt = await session.scalar(
        select(PaymentAttempt)
        .where(PaymentAttempt.order_id == order.id, PaymentAttempt.status == AttemptStatus.SUCCEEDED)
        .order_by(PaymentAttempt.succeeded_at)
        .limit(1)
    )
    if attempt is None:
        raise InvalidRequest("This order has no succeeded payment to refund.", code="nothing_to_refund")
    return attempt


def add_refund(
    session: AsyncSession,
    *,
    order: Order,
    attempt: PaymentAttempt,
    amount: int,
    kind: RefundKind,
    reason: str | None,
    actor: Actor,
) -> Refund:
    refund = Refund(
        tenant_id=order.tenant_id,
        livemode=order.livemode,
        order_id=order.id,
        payment_attempt_id=attempt.id,
        provider=attempt.provider,
        amount=amount,
        currency=attempt.currency,
        kind=kind,
        reason=reason,
    )
    session.add(refund)
    record_audit(
        session,
        actor=actor,
        action="refund.created",
        entity_type="order",
        entity_id=order.id,
        tenant_id=order.tenant_id,
        after={"refund": refund.id, "amount": amount, "kind": kind.value, "reason": reason},
    )
    return refund


async def settle_refund(
    session: AsyncSession, refund: Refund, *, provider_ref: str | None, actor: Actor, now: datetime
) -> bool:
    """The provider confirmed the refund. False when it was already settled (no-op)."""
    if not can_move_refund(refund.status, RefundStatus.SUCCEEDED):
        return False
    refund.status = RefundStatus.SUCCEEDED
    refund.succeeded_at = now
    refund.provider_ref = refund.provider_ref or provider_ref
    order = await lock_order(session, order_id=refund.order_id, tenant_id=refund.tenant_id)
    if refund.kind is RefundKind.DUPLICATE_PAYMENT:
        record_audit(
            session,
            actor=actor,
            action="refund.succeeded",
            entity_type="order",
            entity_id=order.id,
            tenant_id=order.tenant_id,
            after={"refund": refund.id, "amount": refund.amount, "reason": refund.reason},
        )
        await emit_merchant_event(
            session,
            tenant_id=order.tenant_id,
            livemode=order.livemode,
            event_type="refund.succeeded",
            subject_key=refund.id,
            order_id=order.id,
            data=await refund_event_object(session, order, refund),
        )
        return True
    await record_refund(session, order, refund, actor=actor, now=now)
    return True


async def fail_refund(session: AsyncSession, refund: Refund, *, reason: str | None, actor: Actor) -> bool:
    if not can_move_refund(refund.status, RefundStatus.FAILED):
        return False
    refund.status = RefundStatus.FAILED
    refund.failure_reason = reason
    record_audit(
        session,
        actor=actor,
        action="refund.failed",
        entity_type="order",
        entity_id=refund.order_id,
        tenant_id=refund.tenant_id,
        after={"refund": refund.id, "reason": reason},
    )
    await alert_ops(
        session,
        tenant_id=refund.tenant_id,
        livemode=refund.livemode,
        code="refund_failed",
        message=f"Refund {refund.id} failed at the provider: {reason or 'no reason given'}.",
        subject_key=refund.id,
        details={"order": refund.order_id, "amount": refund.amount},
    )
    return True


async def apply_refund_outcome(
    session: AsyncSession, refund_id: str, outcome: RefundOutcome, *, actor: Actor, now: datetime
) -> Refund:
    refund = await session.scalar(select(Refund).where(Refund.id == refund_id).with_for_update())
    assert refund is not None
    refund.submitted_at = refund.submitted_at or now
    if outcome.provider_ref and refund.provider_ref is None:
        refund.provider_ref = outcome.provider_ref
    if outcome.state is RefundState.SUCCEEDED:
        await settle_refund(session, refund, provider_ref=outcome.provider_ref, actor=actor, now=now)
    elif outcome.state is RefundState.FAILED:
        await fail_refund(session, refund, reason=outcome.failure_reason, actor=actor)
    return refund


async def _claim_submission(database: Database, refund_id: str) -> bool:
    """Only one caller asks the provider at a time: the request that made the refund, or the job."""
    now = utcnow()
    async with database.session(write=True) as session:
        claimed = await session.execute(
            update(Refund)
            .where(
                Refund.id == refund_id,
                Refund.status == RefundStatus.PENDING,
                or_(Refund.submitted_at.is_(None), Refund.submitted_at < now - SUBMISSION_CLAIM),
            )
            .values(submitted_at=now)
            .execution_options(synchronize_session=False)
        )
    return bool(getattr(claimed, "rowcount", 0))


async def _unclaim_submission(database: Database, refund_id: str) -> None:
    async with database.session(write=True) as session:
        await session.execute(
            update(Refund)
            .where(Refund.id == refund_id, Refund.status == RefundStatus.PENDING)
            .values(submitted_at=None)
            .execution_options(synchronize_session=False)
        )


async def submit_refund(
    database: Database, registry: ProviderRegistry, refund_id: str, *, actor: Actor
) -> Refund:
    """Ask the provider (outside any transaction), then record its answer. When the provider
    cannot be reached — or fails in a way we did not foresee — the refund stays pending and
    `submit_pending_refunds` asks again; the provider refunds once per refund id."""
    async with database.session(write=False) as session:
        refund = await session.get(Refund, refund_id)
        assert refund is not None
        attempt = await session.get(PaymentAttempt, refund.payment_attempt_id)
        tenant = await session.get(Tenant, refund.tenant_id)
        assert attempt is not None
        assert tenant is not None
    if not await _claim_submission(database, refund_id):
        return refund  # someone else is asking right now, or it is settled already
    provider = registry.get(refund.provider)
    account = ProviderAccount(tenant_id=tenant.id, tenant_slug=tenant.slug, livemode=refund.livemode)
    if attempt.provider_ref is None:
        outcome = RefundOutcome(
            provider_ref=None, state=RefundState.FAILED, failure_reason="payment has no provider reference"
        )
    else:
        try:
            outcome = await provider.refund(
                account, attempt.provider_ref, Money(refund.amount, refund.currency), refund.id
            )
        except ProviderRequestRefused as exc:
            # The provider said no for good (more than is refundable, a disputed charge, …):
            # a failed refund, alerted, rather than the same refusal every minute.
            outcome = RefundOutcome(provider_ref=None, state=RefundState.FAILED, failure_reason=str(exc))
        except Exception as exc:  # noqa: BLE001 (never lose track of a refund: retry it later)
            log.warning("refund_submission_deferred", refund=refund.id, error=repr(exc))
            await _unclaim_submission(database, refund_id)
            return refund
    async with database.session(write=True) as session:
        return await apply_refund_outcome(session, refund.id, outcome, actor=actor, now=utcnow())


async def request_refund(
    database: Database,
    registry: ProviderRegistry,
    context: TenantContext,
    *,
    order_id: str,
    amount: int | None,
    reason: str | None,
) -> Refund:
    """`POST /v1/orders/{id}/refunds`: refund `amount` (default: all that is left) of a paid order."""
    async with database.session(write=True) as session:
        order = await lock_order(session, order_id=order_id, tenant_id=context.tenant_id)
        if order.livemode != context.livemode:
            raise NotFound(f"No such order: '{order_id}'.", param="id")
        if order.status not in REFUNDABLE:
            raise InvalidTransition(f"An order that is {order.status.value} has no payment to refund.")
        refundable = order.amount_paid - order.amount_refunded - await pending_refund_total(session, order.id)
        amount = refundable if amount is None else amount
        if amount <= 0:
            raise InvalidRequest("Nothing is left to refund on this order.", code="nothing_to_refund")
        if amount > refundable:
            raise InvalidRequest(
                f"At most {Money(refundable, order.currency).format()} can be refunded.",
                code="amount_too_large",
                param="amount",
            )
        attempt = await paying_attempt(session, order)
        refund = add_refund(
            session,
            order=order,
            attempt=attempt,
            amount=amount,
            kind=RefundKind.REQUESTED,
            reason=reason,
            actor=context.actor,
        )
        await session.flush()
        refund_id = refund.id
    return await submit_refund(database, registry, refund_id, actor=context.actor)


async def submit_pending_refunds(database: Database, registry: ProviderRegistry, *, limit: int = 50) -> int:
    """Periodic job: refunds written but never answered by the provider (auto refunds, crashes)."""
    async with database.session(write=False) as session:
        refund_ids = list(
            await session.scalars(
                select(Refund.id)
                .where(
                    Refund.status == RefundStatus.PENDING,
                    or_(Refund.submitted_at.is_(None), Refund.submitted_at < utcnow() - SUBMISSION_CLAIM),
                )
                .order_by(Refund.created_at)
                .limit(limit)
            )
        )
    for refund_id in refund_ids:
        await submit_refund(database, registry, refund_id, actor=Actor(name="system:submit_refunds"))
    return len(refund_ids)
