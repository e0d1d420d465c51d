"""The events paycore sends to a merchant's webhook endpoints, as models: the OpenAPI document's
`webhooks` section is drawn from them, so a merchant can generate a receiver's types.

The bodies are built where each change happens (`outbox.service.emit_merchant_event` wraps the
object); these models describe them and a test checks real deliveries against them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from paycore.fulfillment.models import FulfillmentStatus
from paycore.orders.schemas import OrderObjectOut, PaymentFailedEventOut, RefundEventOut


class FulfillmentObject(BaseModel):
    id: str
    object: Literal["fulfillment"]
    status: FulfillmentStatus
    error: str
    order: OrderObjectOut


# The order, refund and attempt objects are the API's own renderings (`orders/rendering.py`):
# an event carries the object as `GET /v1/orders/{id}` showed it at that version.
class OrderData(BaseModel):
    object: OrderObjectOut


class RefundData(BaseModel):
    object: RefundEventOut


class PaymentAttemptData(BaseModel):
    object: PaymentFailedEventOut


class FulfillmentData(BaseModel):
    object: FulfillmentObject


class _Event(BaseModel):
    id: str = Field(description="Also the `webhook-id` header: the same on every retry; drop repeats.")
    created: datetime
    livemode: bool


class OrderCreatedEvent(_Event):
    type: Literal["order.created"]
    data: OrderData


class OrderPaidEvent(_Event):
    type: Literal["order.paid"]
    data: OrderData


class OrderFulfilledEvent(_Event):
    type: Literal["order.fulfilled"]
    data: OrderData


class OrderCanceledEvent(_Event):
    type: Literal["order.canceled"]
    data: OrderData


class OrderExpiredEvent(_Event):
    type: Literal["order.expired"]
    data: OrderData


class OrderNeedsReviewEvent(_Event):
    type: Literal["order.needs_review"]
    data: OrderData


class OrderRefundedEvent(_Event):
    type: Literal["order.refunded"]
    data: OrderData


class PaymentFailedEvent(_Event):
    type: Literal["payment.failed"]
    data: PaymentAttemptData


class RefundSucceededEvent(_Event):
    type: Literal["refund.succeeded"]
    data: RefundData


class FulfillmentFailedEvent(_Event):
    type: Literal["fulfillment.failed"]
    data: FulfillmentData


# Every event type a merchant may subscribe to (`schemas.EVENT_TYPES`), what it carries and when.
EVENTS: dict[str, tuple[type[_Event], str]] = {
    "order.created": (OrderCreatedEvent, "A checkout made an order; it awaits payment."),
    "order.paid": (OrderPaidEvent, "The provider confirmed the payment: the order is paid. Ship now."),
    "order.fulfilled": (OrderFulfilledEvent, "Everything the order promised was delivered."),
    "order.canceled": (OrderCanceledEvent, "The unpaid order was canceled; its stock is released."),
    "order.expired": (OrderExpiredEvent, "Nobody paid in time; its stock is released."),
    "order.needs_review": (
        OrderNeedsReviewEvent,
        "Money arrived that does not fit the order (wrong amount, too late): `review_reason` says why.",
    ),
    "order.refunded": (OrderRefundedEvent, "The whole amount paid went back to the customer."),
    "payment.failed": (
        PaymentFailedEvent,
        "A payment attempt failed; the order stays payable until it expires.",
    ),
    "refund.succeeded": (RefundSucceededEvent, "A refund reached the customer (all or part of an order)."),
    "fulfillment.failed": (
        FulfillmentFailedEvent,
        "Delivering the order failed for good (a provisioning call refused or out of tries).",
    ),
}
