from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from paycore.checkout.schemas import OrderLineOut, PaymentOut
from paycore.customers.schemas import EntitlementOut
from paycore.orders.states import OrderStatus, RefundStatus
from paycore.payments.models import RefundKind
from paycore.schemas import StrictInput


class RefundIn(StrictInput):
    amount: int | None = Field(
        default=None, strict=True, ge=1, description="Minor units; all that is left when omitted."
    )
    reason: str | None = Field(default=None, max_length=200)


class RefundOut(BaseModel):
    id: str
    object: Literal["refund"] = "refund"
    order_id: str
    amount: int
    currency: str
    status: RefundStatus
    kind: RefundKind = Field(description="requested, late_payment, duplicate_payment or provider.")
    reason: str | None
    failure_reason: str | None
    created: datetime


class TimelineEntry(BaseModel):
    at: datetime
    action: str
    actor: str
    details: dict[str, Any] | None = Field(description="What changed, as the audit log recorded it.")
    request_id: str | None


class OrderOut(BaseModel):
    id: str
    object: Literal["order"] = "order"
    number: str
    livemode: bool
    status: OrderStatus
    version: int
    customer_id: str
    currency: str
    subtotal: int
    discount: int
    total: int
    amount_paid: int
    amount_refunded: int
    provider: str
    review_reason: str | None
    expires_at: datetime
    paid_at: datetime | None
    fulfilled_at: datetime | None
    canceled_at: datetime | None
    created: datetime


class OrderCustomerOut(BaseModel):
    id: str
    email: str
    name: str | None


class OrderPromoOut(BaseModel):
    id: str
    code: str
    percent_off: int | None
    amount_off: int | None
    currency: str | None


class OrderObjectOut(OrderOut):
    """The order with everything a merchant needs to act on it: what `GET /v1/orders/{id}` answers
    (without the timeline) and what every merchant event about the order carries."""

    customer: OrderCustomerOut
    promo: OrderPromoOut | None
    items: list[OrderLineOut]
    payments: list[PaymentOut]
    refunds: list[RefundOut]
    entitlements: list[EntitlementOut]


class OrderDetailOut(OrderObjectOut):
    timeline: list[TimelineEntry]


class RefundEventOut(RefundOut):
    """`refund.succeeded`: the refund, and its order as the refund left it."""

    order: OrderObjectOut


class PaymentFailedEventOut(PaymentOut):
    """`payment.failed`: the attempt that failed, and its order (still payable)."""

    failure_reason: str | None
    order: OrderObjectOut
