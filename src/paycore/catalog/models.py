from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from paycore.db import Base, created_column, id_column, tenant_column, updated_column


class ProductKind(StrEnum):
    PHYSICAL = "physical"
    DIGITAL = "digital"
    SERVICE = "service"


class Product(Base):
    """`fulfillment` says what paying for it does: {"type": "stock" | "entitlement" | "provision", …}."""

    __tablename__ = "products"
    __table_args__ = (
        UniqueConstraint("tenant_id", "livemode", "sku"),
        Index(None, "tenant_id", "livemode", "created_at", "id"),
    )

    id: Mapped[str] = id_column("prod")
    tenant_id: Mapped[str] = tenant_column()
    livemode: Mapped[bool]
    sku: Mapped[str | None] = mapped_column(String(100))
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(String(2000))
    price: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    kind: Mapped[ProductKind]
    fulfillment: Mapped[dict[str, Any]] = mapped_column(default=dict)
    active: Mapped[bool] = mapped_column(default=True)
    deleted_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = created_column()
    updated_at: Mapped[datetime] = updated_column()


class Inventory(Base):
    """Stock of one product. A product without a row is not stock-tracked (digital goods)."""

    __tablename__ = "inventory"
    __table_args__ = (
        CheckConstraint("on_hand >= 0", name="on_hand_not_negative"),
        CheckConstraint("reserved >= 0", name="reserved_not_negative"),
        CheckConstraint("reserved <= on_hand", name="reserved_within_on_hand"),
        Index(None, "tenant_id"),
    )

    product_id: Mapped[str] = mapped_column(ForeignKey("products.id", ondelete="CASCADE"), primary_key=True)
    tenant_id: Mapped[str] = tenant_column()
    on_hand: Mapped[int] = mapped_column(BigInteger, default=0)
    reserved: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[datetime] = updated_column()


class PromoCode(Base):
    __tablename__ = "promo_codes"
    __table_args__ = (
        UniqueConstraint("tenant_id", "livemode", "code"),
        CheckConstraint("usage_count >= 0", name="usage_count_not_negative"),
        CheckConstraint("reserved >= 0", name="reserved_not_negative"),
        Index(None, "tenant_id", "livemode", "created_at", "id"),
    )

    id: Mapped[str] = id_column("promo")
    tenant_id: Mapped[str] = tenant_column()
    livemode: Mapped[bool]
    code: Mapped[str] = mapped_column(String(64))
    percent_off: Mapped[int | None]
    amount_off: Mapped[int | None] = mapped_column(BigInteger)
    currency: Mapped[str | None] = mapped_column(String(3))
    usage_limit: Mapped[int | None]
    usage_count: Mapped[int] = mapped_column(default=0)
    # Uses held by unpaid orders, so two checkouts cannot both take the last use.
    reserved: Mapped[int] = mapped_column(default=0)
    starts_at: Mapped[datetime | None]
    ends_at: Mapped[datetime | None]
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = created_column()
    updated_at: Mapped[datetime] = updated_column()
