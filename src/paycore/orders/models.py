from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from paycore.catalog.models import ProductKind
from paycore.db import Base, created_column, id_column, tenant_column, updated_column
from paycore.orders.states import OrderStatus


class Order(Base):
    """`version` grows by one at every transition (compare-and-set) and rides on outgoing events."""

    __tablename__ = "orders"
    __table_args__ = (
        UniqueConstraint("tenant_id", "number"),
        Index(None, "tenant_id", "livemode", "created_at", "id"),
        Index(None, "tenant_id", "customer_id"),
        Index(None, "status", "expires_at"),
    )

    id: Mapped[str] = id_column("ord")
    tenant_id: Mapped[str] = tenant_column()
    livemode: Mapped[bool]
    number: Mapped[str] = mapped_column(String(20))
    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.id"))
    # The phone given at this checkout: order messages go there, never to a number someone else
    # attached to the customer's email later.
    contact_phone: Mapped[str | None] = mapped_column(String(32))
    cart_id: Mapped[str | None] = mapped_column(String(40))
    status: Mapped[OrderStatus] = mapped_column(default=OrderStatus.PENDING_PAYMENT)
    currency: Mapped[str] = mapped_column(String(3))
    subtotal: Mapped[int] = mapped_column(BigInteger)
    discount: Mapped[int] = mapped_column(BigInteger, default=0)
    total: Mapped[int] = mapped_column(BigInteger)
    amount_paid: Mapped[int] = mapped_column(BigInteger, default=0)
    amount_refunded: Mapped[int] = mapped_column(BigInteger, default=0)
    promo_code_id: Mapped[str | None] = mapped_column(ForeignKey("promo_codes.id"))
    provider: Mapped[str] = mapped_column(String(32))
    review_reason: Mapped[str | None] = mapped_column(String(64))
    expires_at: Mapped[datetime]
    paid_at: Mapped[datetime | None]
    fulfilled_at: Mapped[datetime | None]
    canceled_at: Mapped[datetime | None]
    version: Mapped[int] = mapped_column(default=1)
    deleted_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = created_column()
    updated_at: Mapped[datetime] = updated_column()


class OrderItem(Base):
    """A line as it was bought: name, price and fulfillment are copied, not referenced."""

    __tablename__ = "order_items"
    __table_args__ = (Index(None, "tenant_id", "order_id"),)

    id: Mapped[str] = id_column("oi")
    tenant_id: Mapped[str] = tenant_column()
    order_id: Mapped[str] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"))
    product_id: Mapped[str] = mapped_column(ForeignKey("products.id"))
    name: Mapped[str] = mapped_column(String(200))
    sku: Mapped[str | None] = mapped_column(String(100))
    kind: Mapped[ProductKind]
    fulfillment: Mapped[dict[str, Any]] = mapped_column(default=dict)
    unit_amount: Mapped[int] = mapped_column(BigInteger)
    quantity: Mapped[int]
    amount: Mapped[int] = mapped_column(BigInteger)
    # Whether checkout reserved stock for this line (so expiry knows what to release).
    stock_reserved: Mapped[bool] = mapped_column(default=False)
