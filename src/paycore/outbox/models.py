from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Index, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from paycore.db import Base, created_column, id_column, tenant_column, updated_column


class OutboxChannel(StrEnum):
    EMAIL = "email"
    WHATSAPP = "whatsapp"
    MERCHANT_WEBHOOK = "merchant_webhook"
    OPS_ALERT = "ops_alert"


class OutboxStatus(StrEnum):
    PENDING = "pending"
    RETRYING = "retrying"
    SENT = "sent"
    DEAD = "dead"
    # Never to be sent: a test-mode email to an address the tenant has not verified.
    SUPPRESSED = "suppressed"


class OutboxMessage(Base):
    """One message to deliver at least once; `dedupe_key` makes writing it twice a no-op."""

    __tablename__ = "outbox"
    __table_args__ = (
        UniqueConstraint("tenant_id", "dedupe_key"),
        Index(None, "status", "next_attempt_at"),
        Index(None, "tenant_id", "created_at"),
        Index(None, "ordering_key", "created_at"),
        # The claim's index: only rows still to deliver, in due order (sent rows pile up forever).
        Index(
            "ix_outbox_due",
            "next_attempt_at",
            postgresql_where=text("status IN ('pending', 'retrying')"),
            sqlite_where=text("status IN ('pending', 'retrying')"),
        ),
    )

    id: Mapped[str] = id_column("msg")
    tenant_id: Mapped[str] = tenant_column()
    livemode: Mapped[bool]
    channel: Mapped[OutboxChannel]
    # What the message is about, e.g. "order.paid" or "email.order_paid".
    topic: Mapped[str] = mapped_column(String(64))
    dedupe_key: Mapped[str] = mapped_column(String(200))
    # Messages with the same key (one order's merchant events) are delivered in creation order.
    ordering_key: Mapped[str | None] = mapped_column(String(80))
    payload: Mapped[dict[str, Any]]
    status: Mapped[OutboxStatus] = mapped_column(default=OutboxStatus.PENDING)
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = created_column()
    locked_until: Mapped[datetime | None]
    locked_by: Mapped[str | None] = mapped_column(String(200))
    last_error: Mapped[str | None] = mapped_column(Text)
    correlation_id: Mapped[str | None] = mapped_column(String(128))
    sent_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = created_column()
    updated_at: Mapped[datetime] = updated_column()
