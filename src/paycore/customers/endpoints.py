from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from paycore.auth.dependencies import ReadKeyDep
from paycore.customers import service
from paycore.customers.models import Customer
from paycore.customers.schemas import CustomerOut, EntitlementOut, entitlement_out
from paycore.dependencies import ReadSessionDep
from paycore.fulfillment.service import list_entitlements
from paycore.schemas import DEFAULT_LIMIT, CursorQuery, LimitQuery, ListOut

router = APIRouter(prefix="/v1", tags=["customers"])


def customer_out(customer: Customer, spend: dict[str, int]) -> CustomerOut:
    return CustomerOut(
        id=customer.id,
        livemode=customer.livemode,
        email=customer.email,
        name=customer.name,
        phone=customer.phone,
        total_orders=customer.total_orders,
        total_spent=spend,
        created=customer.created_at,
    )


@router.get("/customers", summary="List customers, newest first")
async def list_customers(
    context: ReadKeyDep,
    session: ReadSessionDep,
    email: Annotated[str | None, Query(max_length=320)] = None,
    limit: LimitQuery = DEFAULT_LIMIT,
    cursor: CursorQuery = None,
) -> ListOut[CustomerOut]:
    """Customers who placed an order, newest first; page with `limit` and `cursor`. Needs a secret key
    with the `read` scope."""
    page = await service.list_customers(session, context, email=email, limit=limit, cursor=cursor)
    spend = await service.spend_by_currency(session, [customer.id for customer in page.items])
    return ListOut(
        data=[customer_out(customer, spend[customer.id]) for customer in page.items],
        has_more=page.has_more,
        next_cursor=page.next_cursor,
    )


@router.get("/customers/{customer_id}", summary="A customer with their totals")
async def read_customer(customer_id: str, context: ReadKeyDep, session: ReadSessionDep) -> CustomerOut:
    """A customer with their number of paid orders and what they spent, per currency. Needs a secret
    key with the `read` scope."""
    customer = await service.get_customer(session, context, customer_id)
    spend = await service.spend_by_currency(session, [customer.id])
    return customer_out(customer, spend[customer.id])


@router.get("/entitlements", summary="What a customer may access (digital products, courses)")
async def read_entitlements(
    context: ReadKeyDep,
    session: ReadSessionDep,
    customer_email: Annotated[str, Query(min_length=3, max_length=320)],
    include_revoked: bool = False,
) -> ListOut[EntitlementOut]:
    """What a customer (by email) may access: digital products and courses they paid for. Revoked ones
    (after a refund) only with `include_revoked`. Needs a secret key with the `read` scope."""
    rows = await list_entitlements(
        session, context, customer_email=customer_email, include_revoked=include_revoked
    )
    data = [entitlement_out(entitlement, customer) for entitlement, customer in rows]
    return ListOut(data=data, has_more=False, next_cursor=None)
