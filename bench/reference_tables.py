"""The lean reference's tables (`bench/reference_checkout.py`): paycore's columns and indexes,
roughly, so that both write as much per row and keep as many indexes up to date."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB

# Index names made of all their columns, as paycore names them (two indexes may share a first column).
metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


def _id() -> Column[str]:
    return Column("id", String(40), primary_key=True)


def _tenant() -> Column[str]:
    return Column("tenant_id", ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False)


def _at(name: str, *, nullable: bool = False) -> Column[datetime]:
    return Column(name, DateTime(timezone=True), nullable=nullable)


tenants = Table(
    "tenants",
    metadata,
    _id(),
    Column("slug", String(63), nullable=False, unique=True),
    Column("name", String(200), nullable=False),
    Column("status", String(32), nullable=False),
    _at("created_at"),
)
api_keys = Table(
    "api_keys",
    metadata,
    _id(),
    _tenant(),
    Column("secret_hash", String(64), nullable=False, unique=True),
    Column("mode", String(8), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("scopes", JSONB, nullable=False),
    _at("expires_at", nullable=True),
    _at("revoked_at", nullable=True),
    _at("created_at"),
)
idempotent_requests = Table(
    "idempotent_requests",
    metadata,
    _id(),
    _tenant(),
    Column("livemode", Boolean, nullable=False),
    Column("api_key_id", String(40), nullable=False),
    Column("key", String(255), nullable=False),
    Column("method", String(10), nullable=False),
    Column("path", String(500), nullable=False),
    Column("request_hash", String(64), nullable=False),
    Column("state", String(32), nullable=False),
    Column("response_status", Integer),
    Column("response_body", Text),
    _at("created_at"),
    _at("completed_at", nullable=True),
    UniqueConstraint("tenant_id", "livemode", "api_key_id", "key"),
    Index(None, "created_at"),
)
products = Table(
    "products",
    metadata,
    _id(),
    _tenant(),
    Column("livemode", Boolean, nullable=False),
    Column("sku", String(100)),
    Column("name", String(200), nullable=False),
    Column("price", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("fulfillment", JSONB, nullable=False),
    Column("active", Boolean, nullable=False),
    _at("deleted_at", nullable=True),
    _at("created_at"),
    UniqueConstraint("tenant_id", "livemode", "sku"),
    Index(None, "tenant_id", "livemode", "created_at", "id"),
)
inventory = Table(
    "inventory",
    metadata,
    Column("product_id", ForeignKey("products.id", ondelete="CASCADE"), primary_key=True),
    _tenant(),
    Column("on_hand", BigInteger, nullable=False),
    Column("reserved", BigInteger, nullable=False),
    _at("updated_at"),
    CheckConstraint("on_hand >= 0", name="on_hand_not_negative"),
    CheckConstraint("reserved >= 0", name="reserved_not_negative"),
    CheckConstraint("reserved <= on_hand", name="reserved_within_on_hand"),
)
carts = Table(
    "carts",
    metadata,
    _id(),
    _tenant(),
    Column("livemode", Boolean, nullable=False),
    Column("status", String(32), nullable=False),
    Column("currency", String(3)),
    Column("order_id", String(40)),
    _at("created_at"),
    _at("updated_at"),
    Index(None, "tenant_id", "livemode", "created_at"),
)
cart_items = Table(
    "cart_items",
    metadata,
    _id(),
    _tenant(),
    Column("cart_id", ForeignKey("carts.id", ondelete="CASCADE"), nullable=False),
    Column("product_id", ForeignKey("products.id"), nullable=False),
    Column("quantity", Integer, nullable=False),
    _at("created_at"),
    UniqueConstraint("tenant_id", "cart_id", "product_id"),
)
customers = Table(
    "customers",
    metadata,
    _id(),
    _tenant(),
    Column("livemode", Boolean, nullable=False),
    Column("email", String(320), nullable=False),
    Column("name", String(200)),
    Column("phone", String(32)),
    _at("created_at"),
    _at("updated_at"),
    UniqueConstraint("tenant_id", "livemode", "email"),
    Index(None, "tenant_id", "livemode", "created_at", "id"),
)
orders = Table(
    "orders",
    metadata,
    _id(),
    _tenant(),
    Column("livemode", Boolean, nullable=False),
    Column("number", String(20), nullable=False),
    Column("customer_id", ForeignKey("customers.id"), nullable=False),
    Column("cart_id", String(40)),
    Column("status", String(32), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("subtotal", BigInteger, nullable=False),
    Column("total", BigInteger, nullable=False),
    Column("provider", String(32), nullable=False),
    Column("version", Integer, nullable=False),
    _at("expires_at"),
    _at("created_at"),
    _at("updated_at"),
    UniqueConstraint("tenant_id", "number"),
    Index(None, "tenant_id", "livemode", "created_at", "id"),
    Index(None, "tenant_id", "customer_id"),
    Index(None, "status", "expires_at"),
)
order_items = Table(
    "order_items",
    metadata,
    _id(),
    _tenant(),
    Column("order_id", ForeignKey("orders.id", ondelete="CASCADE"), nullable=False),
    Column("product_id", ForeignKey("products.id"), nullable=False),
    Column("name", String(200), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("fulfillment", JSONB, nullable=False),
    Column("unit_amount", BigInteger, nullable=False),
    Column("quantity", Integer, nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("stock_reserved", Boolean, nullable=False),
    Index(None, "tenant_id", "order_id"),
)
payment_attempts = Table(
    "payment_attempts",
    metadata,
    _id(),
    _tenant(),
    Column("livemode", Boolean, nullable=False),
    Column("order_id", ForeignKey("orders.id", ondelete="CASCADE"), nullable=False),
    Column("provider", String(32), nullable=False),
    Column("provider_ref", String(200)),
    Column("amount", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("status", String(32), nullable=False),
    _at("created_at"),
    _at("updated_at"),
    UniqueConstraint("tenant_id", "provider", "provider_ref"),
    Index(None, "tenant_id", "order_id"),
    Index(None, "status", "created_at"),
)
audit_log = Table(
    "audit_log",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("tenant_id", ForeignKey("tenants.id", ondelete="CASCADE")),
    Column("actor", String(120), nullable=False),
    Column("action", String(80), nullable=False),
    Column("entity_type", String(40), nullable=False),
    Column("entity_id", String(40), nullable=False),
    Column("after", JSONB),
    _at("at"),
    Index(None, "tenant_id", "entity_type", "entity_id", "at"),
)
outbox = Table(
    "outbox",
    metadata,
    _id(),
    _tenant(),
    Column("livemode", Boolean, nullable=False),
    Column("channel", String(32), nullable=False),
    Column("topic", String(64), nullable=False),
    Column("dedupe_key", String(200), nullable=False),
    Column("ordering_key", String(80)),
    Column("payload", JSONB, nullable=False),
    Column("status", String(32), nullable=False),
    Column("attempts", Integer, nullable=False),
    _at("next_attempt_at"),
    _at("created_at"),
    UniqueConstraint("tenant_id", "dedupe_key"),
    Index(None, "status", "next_attempt_at"),
    Index(None, "tenant_id", "created_at"),
    Index(None, "ordering_key", "created_at"),
    Index("ix_outbox_due", "next_attempt_at", postgresql_where=text("status IN ('pending', 'retrying')")),
)
