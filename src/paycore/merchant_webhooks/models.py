from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from paycore.db import Base, created_column, id_column, tenant_column, updated_column


class WebhookEndpoint(Base):
    """Where a merchant wants events. While a secret is being rotated, the previous one keeps
    signing alongside it until `previous_secret_expires_at`, so receivers can switch at leisure.
    Both secrets are sealed at rest (`merchant_webhooks.sealing`)."""

    __tablename__ = "webhook_endpoints"
    __table_args__ = (Index(None, "tenant_id", "livemode", "created_at"),)

    id: Mapped[str] = id_column("we")
    tenant_id: Mapped[str] = tenant_column()
    livemode: Mapped[bool]
    url: Mapped[str] = mapped_column(String(2000))
    description: Mapped[str | None] = mapped_column(String(500))
    secret: Mapped[str] = mapped_column(String(200))
    previous_secret: Mapped[str | None] = mapped_column(String(200))
    previous_secret_expires_at: Mapped[datetime | None]
    # The key the secrets are sealed under; NULL: a row from before sealing, still plain text.
    secrets_key_id: Mapped[str | None] = mapped_column(String(32))
    # Event types this endpoint wants; ["*"] for all.
    events: Mapped[list[str]] = mapped_column(default=lambda: ["*"])
    enabled: Mapped[bool] = mapped_column(default=True)
    disabled_reason: Mapped[str | None] = mapped_column(String(200))
    # Start of the current run of failures (None while deliveries succeed): 5 days of it disables.
    failing_since: Mapped[datetime | None]
    deleted_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = created_column()
    updated_at: Mapped[datetime] = updated_column()


class WebhookAttempt(Base):
    """One HTTP attempt to deliver one event to one endpoint: kept for the merchant to inspect."""

    __tablename__ = "webhook_attempts"
    __table_args__ = (
        Index(None, "tenant_id", "endpoint_id", "at"),
        Index(None, "outbox_id", "endpoint_id"),
    )

    id: Mapped[str] = id_column("wha")
    tenant_id: Mapped[str] = tenant_column()
    endpoint_id: Mapped[str] = mapped_column(ForeignKey("webhook_endpoints.id", ondelete="CASCADE"))
    outbox_id: Mapped[str] = mapped_column(ForeignKey("outbox.id", ondelete="CASCADE"))
    event_id: Mapped[str] = mapped_column(String(40))
    event_type: Mapped[str] = mapped_column(String(64))
    succeeded: Mapped[bool]
    status_code: Mapped[int | None]
    latency_ms: Mapped[int]
    # No longer written (a body a merchant URL answered must not be shown back); emptied by 0013.
    response_excerpt: Mapped[str | None] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(String(500))
    at: Mapped[datetime] = created_column()
