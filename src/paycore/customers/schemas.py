from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel


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
