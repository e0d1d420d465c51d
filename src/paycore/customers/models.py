from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from paycore.db import Base, created_column, id_column, tenant_column, updated_column


class Customer(Base):
    __tablename__ = "customers"
    __table_args__ = (
        UniqueConstraint("tenant_id", "livemode", "email"),
        Index(None, "tenant_id", "livemode", "created_at", "id"),
    )

    id: Mapped[str] = id_column("cus")
    tenant_id: Mapped[str] = tenant_column()
    livemode: Mapped[bool]
    email: Mapped[str] = mapped_column(String(320))
    name: Mapped[str | None] = mapped_column(String(200))
    phone: Mapped[str | None] = mapped_column(String(32))
    total_orders: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = created_column()
    updated_at: Mapped[datetime] = updated_column()


class CustomerSpend(Base):
    """What a customer has paid, per currency: a shop may sell in several."""

    __tablename__ = "customer_spend"
    __table_args__ = (UniqueConstraint("tenant_id", "customer_id", "currency"),)

    id: Mapped[str] = id_column("cusp")
    tenant_id: Mapped[str] = tenant_column()
    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    currency: Mapped[str] = mapped_column(String(3))
    amount: Mapped[int] = mapped_column(BigInteger, default=0)
