"""Customers: found or created at checkout by email; totals change only when an order is paid."""

from __future__ import annotations

from functools import cache
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from paycore.auth.context import TenantContext
from paycore.clock import utcnow
from paycore.customers.models import Customer, CustomerSpend
from paycore.db import dialect_insert, dialect_of, table_of
from paycore.errors import NotFound
from paycore.ids import new_id
from paycore.pagination import Page, paginate


@cache
def _insert_customer_statement(dialect_name: str) -> Any:
    """Built once per dialect (checkout's hot path), its values bound at execution."""
    customers = table_of(Customer)
    return (
        dialect_insert(dialect_name, customers)
        .on_conflict_do_nothing(index_elements=["tenant_id", "livemode", "email"])
        .returning(customers.c.id)
    )


async def find_or_create_customer(
    session: AsyncSession,
    *,
    tenant_id: str,
    livemode: bool,
    email: str,
    name: str | None,
    phone: str | None,
) -> Customer:
    """One customer per email (per tenant and mode), created by the first checkout that names it.

    Checkout's hot path: one INSERT for a new customer (its row is what was written, not read
    back); a returning customer is read, and written only to fill in what is missing. The
    customer returned is not attached to the session.
    """
    email = email.strip().lower()
    now = utcnow()
    table = table_of(Customer)
    values = {
        "id": new_id("cus"),
        "tenant_id": tenant_id,
        "livemode": livemode,
        "email": email,
        "name": name,
        "phone": phone,
        "total_orders": 0,
        "created_at": now,
        "updated_at": now,
    }
    # DO NOTHING, not DO UPDATE: an existing row is not locked (a paid order updates its totals).
    created = await session.execute(_insert_customer_statement(dialect_of(session)), values)
    if created.first() is not None:
        return Customer(**values)
    existing = (
        await session.execute(
            select(*table.c).where(
                table.c.tenant_id == tenant_id, table.c.livemode == livemode, table.c.email == email
            )
        )
    ).one()
    current = dict(existing._mapping)
    # Fill in what is missing, never overwrite: the storefront's key is public, so anyone may
    # check out under a customer's email, and must not change whom that customer's messages reach.
    missing: dict[str, object] = {}
    if name and not current["name"]:
        missing["name"] = name
    if phone and not current["phone"]:
        missing["phone"] = phone
    if missing:
        missing["updated_at"] = now
        await session.execute(update(table).where(table.c.id == current["id"]).values(missing))
    return Customer(**(current | missing))


async def spend_by_currency(session: AsyncSession, customer_ids: list[str]) -> dict[str, dict[str, int]]:
    rows = await session.scalars(select(CustomerSpend).where(CustomerSpend.customer_id.in_(customer_ids)))
    spend: dict[str, dict[str, int]] = {customer_id: {} for customer_id in customer_ids}
    for row in rows:
        spend[row.customer_id][row.currency] = row.amount
    return spend


async def get_customer(session: AsyncSession, context: TenantContext, customer_id: str) -> Customer:
    customer = await session.scalar(
        select(Customer).where(
            Customer.id == customer_id,
            Customer.tenant_id == context.tenant_id,
            Customer.livemode == context.livemode,
        )
    )
    if customer is None:
        raise NotFound(f"No such customer: '{customer_id}'.", param="id")
    return customer


async def list_customers(
    session: AsyncSession, context: TenantContext, *, email: str | None, limit: int, cursor: str | None
) -> Page[Customer]:
    statement = select(Customer).where(
        Customer.tenant_id == context.tenant_id, Customer.livemode == context.livemode
    )
    if email:
        statement = statement.where(Customer.email == email.strip().lower())
    return await paginate(
        session, statement, created_at=Customer.created_at, id_column=Customer.id, limit=limit, cursor=cursor
    )
