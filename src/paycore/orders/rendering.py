"""The one rendering of an order: what `GET /v1/orders/{id}` answers and what every merchant event
about an order carries in `data.object`. An event's object is rendered inside the transaction that
made the change and frozen in its outbox row, so it shows the order as it was at that version."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from paycore.catalog.models import PromoCode
from paycore.checkout.schemas import order_line_out, payment_out
from paycore.customers.models import Customer
from paycore.customers.schemas import entitlement_out
from paycore.fulfillment.models import Entitlement
from paycore.orders.models import Order, OrderItem
from paycore.orders.schemas import (
    OrderCustomerOut,
    OrderObjectOut,
    OrderPromoOut,
    PaymentFailedEventOut,
    RefundEventOut,
    RefundOut,
)
from paycore.payments.models import PaymentAttempt, Refund


@dataclass(frozen=True, slots=True)
class OrderView:
    """An order and the rows its rendering shows, read in the caller's transaction."""

    order: Order
    customer: Customer
    promo: PromoCode | None
    items: list[OrderItem]
    attempts: list[PaymentAttempt]
    refunds: list[Refund]
    entitlements: list[Entitlement]


async def order_items(session: AsyncSession, order: Order) -> list[OrderItem]:
    statement = select(OrderItem).where(OrderItem.order_id == order.id).order_by(OrderItem.id)
    return list(await session.scalars(statement))


async def load_order_view(
    session: AsyncSession, order: Order, *, items: list[OrderItem] | None = None
) -> OrderView:
    """`items`: the order's lines when the caller has them already (they never change)."""
    # populate_existing: rows changed in this transaction by Core UPDATEs (a refund settled,
    # entitlements revoked) must show as they are now, not as the session first loaded them.
    fresh = {"populate_existing": True}
    customer = await session.get(Customer, order.customer_id)
    assert customer is not None  # a foreign key
    promo = await session.get(PromoCode, order.promo_code_id) if order.promo_code_id else None
    attempts = await session.scalars(
        select(PaymentAttempt)
        .where(PaymentAttempt.order_id == order.id)
        .order_by(PaymentAttempt.created_at, PaymentAttempt.id)
        .execution_options(**fresh)
    )
    refunds = await session.scalars(
        select(Refund)
        .where(Refund.order_id == order.id)
        .order_by(Refund.created_at, Refund.id)
        .execution_options(**fresh)
    )
    entitlements = await session.scalars(
        select(Entitlement)
        .where(Entitlement.order_id == order.id)
        .order_by(Entitlement.granted_at, Entitlement.id)
        .execution_options(**fresh)
    )
    return OrderView(
        order=order,
        customer=customer,
        promo=promo,
        items=items if items is not None else await order_items(session, order),
        attempts=list(attempts),
        refunds=list(refunds),
        entitlements=list(entitlements),
    )


def order_fields(order: Order) -> dict[str, object]:
    return {
        "id": order.id,
        "number": order.number,
        "livemode": order.livemode,
        "status": order.status,
        "version": order.version,
        "customer_id": order.customer_id,
        "currency": order.currency,
        "subtotal": order.subtotal,
        "discount": order.discount,
        "total": order.total,
        "amount_paid": order.amount_paid,
        "amount_refunded": order.amount_refunded,
        "provider": order.provider,
        "review_reason": order.review_reason,
        "expires_at": order.expires_at,
        "paid_at": order.paid_at,
        "fulfilled_at": order.fulfilled_at,
        "canceled_at": order.canceled_at,
        "created": order.created_at,
    }


def refund_out(refund: Refund) -> RefundOut:
    return RefundOut(
        id=refund.id,
        order_id=refund.order_id,
        amount=refund.amount,
        currency=refund.currency,
        status=refund.status,
        kind=refund.kind,
        reason=refund.reason,
        failure_reason=refund.failure_reason,
        created=refund.created_at,
    )


def order_object_fields(view: OrderView) -> dict[str, object]:
    promo = view.promo
    return {
        **order_fields(view.order),
        "customer": OrderCustomerOut(id=view.customer.id, email=view.customer.email, name=view.customer.name),
        "promo": None
        if promo is None
        else OrderPromoOut(
            id=promo.id,
            code=promo.code,
            percent_off=promo.percent_off,
            amount_off=promo.amount_off,
            currency=promo.currency,
        ),
        "items": [order_line_out(item) for item in view.items],
        "payments": [payment_out(attempt) for attempt in view.attempts],
        "refunds": [refund_out(refund) for refund in view.refunds],
        "entitlements": [entitlement_out(entitlement, view.customer) for entitlement in view.entitlements],
    }


def order_object_json(view: OrderView) -> dict[str, Any]:
    return OrderObjectOut.model_validate(order_object_fields(view)).model_dump(mode="json")


async def order_event_object(session: AsyncSession, order: Order) -> dict[str, Any]:
    """`data.object` of an `order.*` event: the order as `GET /v1/orders/{id}` shows it now."""
    return order_object_json(await load_order_view(session, order))


async def refund_event_object(session: AsyncSession, order: Order, refund: Refund) -> dict[str, Any]:
    view = await load_order_view(session, order)
    order_object = OrderObjectOut.model_validate(order_object_fields(view))
    event = RefundEventOut.model_validate({**refund_out(refund).model_dump(), "order": order_object})
    return event.model_dump(mode="json")


async def payment_failed_event_object(
    session: AsyncSession, order: Order, attempt: PaymentAttempt
) -> dict[str, Any]:
    view = await load_order_view(session, order)
    order_object = OrderObjectOut.model_validate(order_object_fields(view))
    event = PaymentFailedEventOut.model_validate(
        {**payment_out(attempt).model_dump(), "failure_reason": attempt.failure_reason, "order": order_object}
    )
    return event.model_dump(mode="json")
