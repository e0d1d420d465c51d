"""Customers: found or created at checkout by email; totals change only when an order is paid."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from paycore.auth.context import TenantContext
from paycore.clock import utcnow
from paycore.customers.models import Customer, CustomerSpend
from paycore.db import upsert_insert
from paycore.errors import NotFound
from paycore.ids import new_id
from paycore.pagination import Page, paginate


async def find_or_create_customer(
    session: AsyncSession,
    *,
    tenant_id: str,
    livemode: bool,
    email: str,
    name: str | None,
    phone: str | None,
) -> Customer:
    """One customer per email (per tenant and mode), created by the first checkout that names it."""
    email = email.strip().lower()
    now = utcnow()
    await session.execute(
        upsert_insert(session, Customer.__table__)
        .values(
            id=new_id("cus"),
            tenant_id=tenant_id,
            livemode=livemode,
            email=email,
            name=name,
            phone=phone,
            total_orders=0,
            created_at=now,
            updated_at=now,
        )
        .on_conflict_do_nothing(index_elements=["tenant_id", "livemode", "email"])
    )
    customer = await session.scalar(
        select(Customer).where(
            Customer.tenant_id == tenant_id, Customer.livemode == livemode, Customer.email == email
        )
    )
    assert customer is not None
    # Fill in what is missing, never overwrite: the storefront's key is public, so anyone may
    # check out under a customer's email, and must not change whom that customer's messages reach.
    if name and not customer.name:
        customer.name = name
    if phone and not customer.phone:
        customer.phone = phone
    return customer


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
