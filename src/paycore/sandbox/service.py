"""The sandbox provider's back office: payments, outcomes with chaos, refunds, status.

Services take a session and never commit. Webhooks are queued here and sent by `delivery.py`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from paycore.clock import utcnow
from paycore.db import table_of
from paycore.errors import Conflict, InvalidRequest, NotFound
from paycore.ids import new_id
from paycore.sandbox.models import SandboxDelivery, SandboxPayment, SandboxRefund
from paycore.tenancy.models import Tenant

SUCCEEDED = "succeeded"
DECLINED = "declined"
REQUIRES_ACTION = "requires_action"


@dataclass(frozen=True, slots=True)
class Chaos:
    """How badly the sandbox should behave when it reports an outcome (all off by default)."""

    copies: int = 1
    out_of_order: bool = False
    delay_seconds: int = 0
    bad_signature: bool = False
    amount_delta: int = 0


def _create_payment_statement() -> Any:
    """INSERT … SELECT … WHERE NOT EXISTS: one statement, built once, its values bound at execution."""
    payments = table_of(SandboxPayment)
    names = [
        "id",
        "tenant_id",
        "merchant_reference",
        "amount",
        "currency",
        "status",
        "amount_refunded",
        "return_url",
        "created_at",
        "updated_at",
    ]
    params = {name: bindparam(f"new_{name}", type_=payments.c[name].type) for name in names}
    known = select(payments.c.id).where(
        payments.c.tenant_id == params["tenant_id"],
        payments.c.merchant_reference == params["merchant_reference"],
    )
    new_row = select(*(param.label(name) for name, param in params.items())).where(~known.exists())
    return insert(payments).from_select(names, new_row).returning(payments.c.id)


_CREATE_PAYMENT = _create_payment_statement()


async def create_payment(
    session: AsyncSession,
    *,
    tenant_id: str,
    merchant_reference: str,
    amount: int,
    currency: str,
    return_url: str | None = None,
) -> SandboxPayment:
    """Idempotent on `merchant_reference`: asking again returns the same payment.

    One INSERT … SELECT … WHERE NOT EXISTS for a new reference (checkout's hot path: it may run
    in autocommit), and a read of the existing payment only when there is one.
    """
    now = utcnow()
    values: dict[str, Any] = {
        "id": new_id("sbpay"),
        "tenant_id": tenant_id,
        "merchant_reference": merchant_reference,
        "amount": amount,
        "currency": currency,
        "status": REQUIRES_ACTION,
        "amount_refunded": 0,
        "return_url": return_url,
        "created_at": now,
        "updated_at": now,
    }
    inserted = await session.execute(
        _CREATE_PAYMENT, {f"new_{name}": value for name, value in values.items()}
    )
    if inserted.first() is not None:
        return SandboxPayment(**values)
    payment = await session.scalar(
        select(SandboxPayment).where(
            SandboxPayment.tenant_id == tenant_id, SandboxPayment.merchant_reference == merchant_reference
        )
    )
    assert payment is not None
    return payment


async def find_payment(session: AsyncSession, *, merchant_reference: str) -> SandboxPayment:
    payment = await session.scalar(
        select(SandboxPayment).where(SandboxPayment.merchant_reference == merchant_reference)
    )
    if payment is None:
        raise NotFound("No sandbox payment for this attempt.", param="attempt_id")
    return payment


async def get_payment(session: AsyncSession, *, tenant_id: str, payment_id: str) -> SandboxPayment:
    payment = await session.scalar(
        select(SandboxPayment).where(SandboxPayment.id == payment_id, SandboxPayment.tenant_id == tenant_id)
    )
    if payment is None:
        raise NotFound(f"No sandbox payment '{payment_id}'.", param="payment_ref")
    return payment


def _event(event_type: str, data: dict[str, Any], now: datetime) -> dict[str, Any]:
    return {
        "id": new_id("sbevt"),
        "object": "event",
        "type": event_type,
        "created": int(now.timestamp()),
        "livemode": False,
        "data": data,
    }


def _payment_data(payment: SandboxPayment, *, amount: int | None = None) -> dict[str, Any]:
    return {
        "payment": {
            "id": payment.id,
            "merchant_reference": payment.merchant_reference,
            "amount": payment.amount if amount is None else amount,
            "currency": payment.currency,
            "status": payment.status,
        }
    }


async def _queue(
    session: AsyncSession, payment: SandboxPayment, events: list[dict[str, Any]], chaos: Chaos, now: datetime
) -> None:
    tenant = await session.get(Tenant, payment.tenant_id)
    assert tenant is not None
    ordered = list(reversed(events)) if chaos.out_of_order else events
    send_after = now + timedelta(seconds=chaos.delay_seconds)
    sequence = 0
    for event in ordered:
        for _ in range(chaos.copies):
            session.add(
                SandboxDelivery(
                    tenant_id=payment.tenant_id,
                    tenant_slug=tenant.slug,
                    event_id=event["id"],
                    body=event,
                    bad_signature=chaos.bad_signature,
                    sequence=sequence,
                    send_after=send_after,
                )
            )
            sequence += 1
    await session.flush()


async def confirm_payment(
    session: AsyncSession,
    *,
    merchant_reference: str,
    succeed: bool,
    chaos: Chaos,
    now: datetime | None = None,
) -> SandboxPayment:
    """The customer pays (or is declined). Deciding again the same way changes nothing."""
    now = now or utcnow()
    payment = await find_payment(session, merchant_reference=merchant_reference)
    outcome = SUCCEEDED if succeed else DECLINED
    if payment.status == outcome:
        return payment
    if payment.status != REQUIRES_ACTION:
        raise Conflict(f"This sandbox payment is already {payment.status}.", code="payment_already_decided")
    payment.status = outcome
    if succeed:
        events = [
            _event(
                "payment.processing",
                {"payment": {**_payment_data(payment)["payment"], "status": "processing"}},
                now,
            ),
            _event(
                "payment.succeeded", _payment_data(payment, amount=payment.amount + chaos.amount_delta), now
            ),
        ]
    else:
        events = [
            _event("payment.failed", {**_payment_data(payment), "failure_reason": "card_declined"}, now)
        ]
    await _queue(session, payment, events, chaos, now)
    return payment


async def refund_payment(
    session: AsyncSession, *, tenant_id: str, payment_id: str, amount: int, merchant_reference: str
) -> SandboxRefund:
    """Refund part or all of a succeeded payment; idempotent on `merchant_reference`."""
    existing = await session.scalar(
        select(SandboxRefund).where(
            SandboxRefund.tenant_id == tenant_id, SandboxRefund.merchant_reference == merchant_reference
        )
    )
    if existing is not None:
        return existing
    payment = await get_payment(session, tenant_id=tenant_id, payment_id=payment_id)
    if payment.status != SUCCEEDED:
        raise InvalidRequest("Only a succeeded payment can be refunded.", code="payment_not_refundable")
    if amount <= 0 or payment.amount_refunded + amount > payment.amount:
        raise InvalidRequest("The refund is more than what is left to refund.", code="amount_too_large")
    payment.amount_refunded += amount
    refund = SandboxRefund(
        tenant_id=tenant_id, payment_id=payment.id, merchant_reference=merchant_reference, amount=amount
    )
    session.add(refund)
    await session.flush()
    now = utcnow()
    event = _event(
        "refund.succeeded",
        {
            "refund": {
                "id": refund.id,
                "payment": payment.id,
                "merchant_reference": merchant_reference,
                "amount": amount,
                "currency": payment.currency,
            }
        },
        now,
    )
    await _queue(session, payment, [event], Chaos(), now)
    return refund
