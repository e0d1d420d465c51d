from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from paycore.db import Base, created_column, id_column, tenant_column, updated_column
from paycore.orders.states import AttemptStatus, RefundStatus


class RefundKind(StrEnum):
    """Why a refund exists. Internal kinds decide how it is booked; the merchant's `reason` is text."""

    REQUESTED = "requested"  # asked for by the merchant: counts against the order
    LATE_PAYMENT = "late_payment"  # money for an order that could not be fulfilled: counts
    DUPLICATE_PAYMENT = "duplicate_payment"  # a second charge: does not touch the order's sums
    PROVIDER = "provider"  # made in the provider's dashboard, learned from its webhook: counts


class EventResult(StrEnum):
    APPLIED = "applied"
    IGNORED = "ignored"
    UNMATCHED = "unmatched"
    MISMATCH = "mismatch"
    FAILED = "failed"


class PaymentAttempt(Base):
    __tablename__ = "payment_attempts"
    __table_args__ = (
        UniqueConstraint("tenant_id", "provider", "provider_ref"),
        Index(None, "tenant_id", "order_id"),
        Index(None, "status", "created_at"),
    )

    id: Mapped[str] = id_column("pay")
    tenant_id: Mapped[str] = tenant_column()
    livemode: Mapped[bool]
    order_id: Mapped[str] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"))
    provider: Mapped[str] = mapped_column(String(32))
    provider_ref: Mapped[str | None] = mapped_column(String(200))
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    # What the provider reported as received (may differ from `amount`: a mismatch).
    amount_received: Mapped[int | None] = mapped_column(BigInteger)
    status: Mapped[AttemptStatus] = mapped_column(default=AttemptStatus.CREATED)
    redirect_url: Mapped[str | None] = mapped_column(String(2000))
    client_data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    failure_reason: Mapped[str | None] = mapped_column(String(500))
    succeeded_at: Mapped[datetime | None]
    # Reconciliation asks the provider about an open attempt again only after this, backing off
    # each time it is still open (so a week of abandoned checkouts does not crowd out new ones).
    reconcile_checks: Mapped[int] = mapped_column(default=0, server_default="0")
    next_reconcile_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = created_column()
    updated_at: Mapped[datetime] = updated_column()


class Refund(Base):
    __tablename__ = "refunds"
    __table_args__ = (
        UniqueConstraint("tenant_id", "provider", "provider_ref"),
        Index(None, "tenant_id", "order_id"),
        Index(None, "status", "created_at"),
    )

    id: Mapped[str] = id_column("re")
    tenant_id: Mapped[str] = tenant_column()
    livemode: Mapped[bool]
    order_id: Mapped[str] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"))
    payment_attempt_id: Mapped[str] = mapped_column(ForeignKey("payment_attempts.id"))
    provider: Mapped[str] = mapped_column(String(32))
    provider_ref: Mapped[str | None] = mapped_column(String(200))
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[RefundStatus] = mapped_column(default=RefundStatus.PENDING)
    kind: Mapped[RefundKind] = mapped_column(default=RefundKind.REQUESTED)
    reason: Mapped[str | None] = mapped_column(String(200))
    failure_reason: Mapped[str | None] = mapped_column(String(500))
    # Set by whoever is asking the provider (a claim): a pending refund without it is still to be
    # submitted, one whose claim is old was interrupted and is asked again (idempotent on our id).
    submitted_at: Mapped[datetime | None]
    succeeded_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = created_column()
    updated_at: Mapped[datetime] = updated_column()


class PaymentEvent(Base):
    """The webhook inbox. Stored (and committed) before it is applied, so it is never lost."""

    __tablename__ = "payment_events"
    __table_args__ = (
        UniqueConstraint("tenant_id", "provider", "provider_event_id"),
        Index(None, "processed_at", "next_attempt_at"),
        Index(None, "tenant_id", "received_at"),
    )

    id: Mapped[str] = id_column("evt")
    tenant_id: Mapped[str] = tenant_column()
    livemode: Mapped[bool]
    provider: Mapped[str] = mapped_column(String(32))
    provider_event_id: Mapped[str] = mapped_column(String(200))
    type: Mapped[str] = mapped_column(String(100))
    payload: Mapped[dict[str, Any]]
    received_at: Mapped[datetime] = created_column()
    processed_at: Mapped[datetime | None]
    result: Mapped[EventResult | None]
    error: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime | None]
    correlation_id: Mapped[str | None] = mapped_column(String(128))
