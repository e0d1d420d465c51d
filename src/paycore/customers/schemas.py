from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel

from paycore.customers.models import Customer
from paycore.fulfillment.models import Entitlement


class CustomerOut(BaseModel):
    id: str
    object: Literal["customer"] = "customer"
    livemode: bool
    email: str
    name: str | None
    phone: str | None
    total_orders: int
    total_spent: dict[str, int]
    created: datetime


class EntitlementOut(BaseModel):
    id: str
    object: Literal["entitlement"] = "entitlement"
    customer_id: str
    customer_email: str
    product_id: str
    order_id: str
    granted_at: datetime
    revoked_at: datetime | None
    active: bool


def entitlement_out(entitlement: Entitlement, customer: Customer) -> EntitlementOut:
    return EntitlementOut(
        id=entitlement.id,
        customer_id=customer.id,
        customer_email=customer.email,
        product_id=entitlement.product_id,
        order_id=entitlement.order_id,
        granted_at=entitlement.granted_at,
        revoked_at=entitlement.revoked_at,
        active=entitlement.revoked_at is None,
    )
