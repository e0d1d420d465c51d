from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from paycore.db import Base, created_column, id_column, tenant_column, updated_column


class SandboxPayment(Base):
    """The provider-side payment (think: a Stripe PaymentIntent)."""

    __tablename__ = "sandbox_payments"
    __table_args__ = (Index(None, "tenant_id", "merchant_reference"),)

    id: Mapped[str] = id_column("sbpay")
    tenant_id: Mapped[str] = tenant_column()
    merchant_reference: Mapped[str] = mapped_column(String(40))
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    # requires_action -> succeeded | declined
    status: Mapped[str] = mapped_column(String(32), default="requires_action")
    amount_refunded: Mapped[int] = mapped_column(BigInteger, default=0)
    # Where the pay page sends the customer back once the payment is decided (the storefront's).
    return_url: Mapped[str | None] = mapped_column(String(2000))
    created_at: Mapped[datetime] = created_column()
    updated_at: Mapped[datetime] = updated_column()


class SandboxDelivery(Base):
    """A webhook the sandbox still has to send (with the chaos it was asked for)."""

    __tablename__ = "sandbox_deliveries"
    __table_args__ = (Index(None, "delivered_at", "send_after"),)

    id: Mapped[str] = id_column("sbdl")
    tenant_id: Mapped[str] = tenant_column()
    tenant_slug: Mapped[str] = mapped_column(String(63))
    event_id: Mapped[str] = mapped_column(String(60))
    body: Mapped[dict[str, Any]]
    bad_signature: Mapped[bool] = mapped_column(default=False)
    sequence: Mapped[int] = mapped_column(default=0)
    send_after: Mapped[datetime] = created_column()
    attempts: Mapped[int] = mapped_column(default=0)
    delivered_at: Mapped[datetime | None]
    last_status: Mapped[int | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = created_column()


class SandboxRefund(Base):
    """A provider-side refund, keyed by the merchant's refund id so asking twice refunds once."""

    __tablename__ = "sandbox_refunds"
    __table_args__ = (UniqueConstraint("tenant_id", "merchant_reference"),)

    id: Mapped[str] = id_column("sbre")
    tenant_id: Mapped[str] = tenant_column()
    payment_id: Mapped[str] = mapped_column(ForeignKey("sandbox_payments.id", ondelete="CASCADE"))
    merchant_reference: Mapped[str] = mapped_column(String(40))
    amount: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = created_column()
