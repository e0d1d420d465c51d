from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from paycore.carts.models import CartStatus
from paycore.schemas import StrictInput

Quantity = Field(strict=True, ge=1, le=1000)


class CartItemIn(StrictInput):
    product_id: str = Field(min_length=1, max_length=40)
    quantity: int = Quantity


class CartItemUpdate(StrictInput):
    quantity: int = Quantity


class CartCreate(StrictInput):
    items: list[CartItemIn] = Field(default_factory=list, max_length=100)


class CartItemOut(BaseModel):
    id: str
    object: Literal["cart_item"] = "cart_item"
    product_id: str
    name: str
    unit_amount: int
    quantity: int
    amount: int


class CartOut(BaseModel):
    id: str
    object: Literal["cart"] = "cart"
    livemode: bool
    status: CartStatus
    currency: str | None
    items: list[CartItemOut]
    subtotal: int
    order_id: str | None
    created: datetime
