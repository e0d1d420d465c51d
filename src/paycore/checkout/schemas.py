from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, EmailStr, Field

from paycore.orders.models import OrderItem
from paycore.orders.states import AttemptStatus, OrderStatus
from paycore.payments.models import PaymentAttempt
from paycore.schemas import DisplayText, StrictInput

# The customer's name opens every email sent to them: long enough for any real name, too short
# to carry a message of someone else's choosing.
MAX_CUSTOMER_NAME = 100


class CustomerIn(StrictInput):
    email: EmailStr
    name: DisplayText | None = Field(default=None, max_length=MAX_CUSTOMER_NAME)
    phone: str | None = Field(default=None, min_length=5, max_length=32, pattern=r"^\+?[0-9 ()-]+$")


class CheckoutIn(StrictInput):
    cart_id: str = Field(min_length=1, max_length=40)
    customer: CustomerIn
    promo_code: str | None = Field(default=None, min_length=2, max_length=64)
    provider: str = Field(default="sandbox", min_length=1, max_length=32)
    return_url: str | None = Field(
        default=None,
        max_length=2000,
        pattern=r"^https?://[^\s]+$",
        description="Where the provider's page sends the customer back (PayPal, Midtrans), then confirm.",
    )


class ConfirmIn(StrictInput):
    """What the provider's page handed back to the storefront, passed on as is (Razorpay:
    `razorpay_order_id`, `razorpay_payment_id`, `razorpay_signature`; PayPal and the others: nothing)."""

    params: dict[str, Annotated[str, Field(max_length=500)]] = Field(default_factory=dict, max_length=20)


class OrderLineOut(BaseModel):
    id: str
    product_id: str
    name: str
    unit_amount: int
    quantity: int
    amount: int


def order_line_out(item: OrderItem) -> OrderLineOut:
    return OrderLineOut(
        id=item.id,
        product_id=item.product_id,
        name=item.name,
        unit_amount=item.unit_amount,
        quantity=item.quantity,
        amount=item.amount,
    )


class PaymentOut(BaseModel):
    id: str
    object: Literal["payment_attempt"] = "payment_attempt"
    provider: str
    status: AttemptStatus
    amount: int
    currency: str
    redirect_url: str | None
    client_data: dict[str, Any] = Field(
        description="What the provider's own page script needs (a client secret, a token); provider-specific."
    )


def payment_out(attempt: PaymentAttempt) -> PaymentOut:
    return PaymentOut(
        id=attempt.id,
        provider=attempt.provider,
        status=attempt.status,
        amount=attempt.amount,
        currency=attempt.currency,
        redirect_url=attempt.redirect_url,
        client_data=attempt.client_data,
    )


class StorefrontOrderOut(BaseModel):
    """What the customer may see of their order."""

    id: str
    object: Literal["order"] = "order"
    number: str
    livemode: bool
    status: OrderStatus
    currency: str
    subtotal: int
    discount: int
    total: int
    items: list[OrderLineOut]
    expires_at: datetime
    paid_at: datetime | None
    created: datetime


class CheckoutOut(BaseModel):
    order: StorefrontOrderOut
    receipt_token: str
    payment: PaymentOut
    redirect_url: str | None


class PaymentAttemptIn(StrictInput):
    """Pay an unpaid order again. Every field is optional: by default the last attempt's provider."""

    provider: str | None = Field(
        default=None, min_length=1, max_length=32, description="Default: the provider of the last attempt."
    )
    return_url: str | None = Field(
        default=None,
        max_length=2000,
        pattern=r"^https?://[^\s]+$",
        description="Where the provider's page sends the customer back, as at checkout.",
    )


class PaymentAttemptOpenedOut(BaseModel):
    """The new attempt, and the order it pays (still `pending_payment`)."""

    order: StorefrontOrderOut
    payment: PaymentOut
    redirect_url: str | None
