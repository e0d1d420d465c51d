from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from paycore.db import Base, created_column, id_column, tenant_column, updated_column


class CartStatus(StrEnum):
    OPEN = "open"
    CONVERTED = "converted"


class Cart(Base):
    __tablename__ = "carts"
    __table_args__ = (Index(None, "tenant_id", "livemode", "created_at"),)

    id: Mapped[str] = id_column("cart")
    tenant_id: Mapped[str] = tenant_column()
    livemode: Mapped[bool]
    status: Mapped[CartStatus] = mapped_column(default=CartStatus.OPEN)
    currency: Mapped[str | None] = mapped_column(String(3))
    order_id: Mapped[str | None] = mapped_column(String(40))
    deleted_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = created_column()
    updated_at: Mapped[datetime] = updated_column()


class CartItem(Base):
    __tablename__ = "cart_items"
    __table_args__ = (UniqueConstraint("tenant_id", "cart_id", "product_id"),)

    id: Mapped[str] = id_column("ci")
    tenant_id: Mapped[str] = tenant_column()
    cart_id: Mapped[str] = mapped_column(ForeignKey("carts.id", ondelete="CASCADE"))
    product_id: Mapped[str] = mapped_column(ForeignKey("products.id"))
    quantity: Mapped[int]
    created_at: Mapped[datetime] = created_column()
    updated_at: Mapped[datetime] = updated_column()
