from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from paycore.db import Base, created_column, id_column, tenant_column, updated_column


class FulfillmentKind(StrEnum):
    STOCK = "stock"
    ENTITLEMENT = "entitlement"
    PROVISION = "provision"
    WEBHOOK = "webhook"


class FulfillmentStatus(StrEnum):
    PENDING = "pending"
    RETRYING = "retrying"
    SUCCEEDED = "succeeded"
    NEEDS_ATTENTION = "needs_attention"
    CANCELED = "canceled"


class Fulfillment(Base):
    """`external_ref` is what a provisioner is told, so a retry finds the first attempt's result."""

    __tablename__ = "fulfillments"
    __table_args__ = (
        UniqueConstraint("tenant_id", "external_ref"),
        UniqueConstraint("tenant_id", "order_item_id", "kind"),
        Index(None, "tenant_id", "order_id"),
        Index(None, "status", "next_attempt_at"),
        Index(
            "ix_fulfillments_due",
            "next_attempt_at",
            postgresql_where=text("kind = 'provision' AND status IN ('pending', 'retrying')"),
            sqlite_where=text("kind = 'provision' AND status IN ('pending', 'retrying')"),
        ),
    )

    id: Mapped[str] = id_column("ful")
    tenant_id: Mapped[str] = tenant_column()
    livemode: Mapped[bool]
    order_id: Mapped[str] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"))
    order_item_id: Mapped[str] = mapped_column(ForeignKey("order_items.id", ondelete="CASCADE"))
    kind: Mapped[FulfillmentKind]
    status: Mapped[FulfillmentStatus] = mapped_column(default=FulfillmentStatus.PENDING)
    external_ref: Mapped[str] = mapped_column(String(100))
    # What the provisioner calls the thing it made (a server id), once it has made it.
    result_ref: Mapped[str | None] = mapped_column(String(200))
    locked_by: Mapped[str | None] = mapped_column(String(200))
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime | None]
    locked_until: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    # Memory (MB) of a server on the operator's panel, counted against the tenant's quota from the
    # moment the quota admitted it (see fulfillment/operator_gate.py).
    server_memory_mb: Mapped[int | None]
    completed_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = created_column()
    updated_at: Mapped[datetime] = updated_column()


class Entitlement(Base):
    """What a customer may access because they paid (a course, a download)."""

    __tablename__ = "entitlements"
    __table_args__ = (
        UniqueConstraint("tenant_id", "order_id", "product_id"),
        Index(None, "tenant_id", "customer_id"),
    )

    id: Mapped[str] = id_column("ent")
    tenant_id: Mapped[str] = tenant_column()
    livemode: Mapped[bool]
    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.id"))
    product_id: Mapped[str] = mapped_column(ForeignKey("products.id"))
    order_id: Mapped[str] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"))
    granted_at: Mapped[datetime] = created_column()
    revoked_at: Mapped[datetime | None]
