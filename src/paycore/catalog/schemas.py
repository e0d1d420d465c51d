from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator, model_validator

from paycore.catalog.models import ProductKind
from paycore.money import MAX_AMOUNT, MoneyError, normalize_currency
from paycore.schemas import DisplayText, StrictInput, UtcDatetime
from paycore.validation_messages import FieldValueError

AMOUNT_DESCRIPTION = "Integer amount in the currency's minor units."
# strict: an amount must be a JSON integer; 25.0, "25" and true are refused, never coerced into money.
Amount = Field(strict=True, ge=0, le=MAX_AMOUNT, description=AMOUNT_DESCRIPTION)


def _currency(value: str) -> str:
    try:
        return normalize_currency(value)
    except MoneyError as exc:
        raise ValueError(str(exc)) from None


class FulfillmentSpec(StrictInput):
    """What paying does. `stock` for physical goods, `entitlement` for access, `provision` to call
    a provisioner (the worker issue delivers it)."""

    type: Literal["stock", "entitlement", "provision"]
    config: dict[str, Any] = Field(default_factory=dict)


class ProductCreate(StrictInput):
    name: DisplayText = Field(min_length=1, max_length=200)
    price: int = Amount
    currency: str = Field(min_length=3, max_length=3)
    kind: ProductKind
    sku: str | None = Field(default=None, min_length=1, max_length=100, pattern=r"^[A-Za-z0-9._:/-]+$")
    description: str | None = Field(default=None, max_length=2000)
    fulfillment: FulfillmentSpec | None = None
    active: bool = True

    _check_currency = field_validator("currency")(_currency)


class ProductUpdate(StrictInput):
    name: DisplayText | None = Field(default=None, min_length=1, max_length=200)
    # Not `= Amount`: that has no default, which made price required in every PATCH.
    price: int | None = Field(default=None, strict=True, ge=0, le=MAX_AMOUNT, description=AMOUNT_DESCRIPTION)
    description: str | None = Field(default=None, max_length=2000)
    fulfillment: FulfillmentSpec | None = None
    active: bool | None = None

    @field_validator("name", "price", "fulfillment", "active")
    @classmethod
    def _not_null(cls, value: object) -> object:
        # Left out means "unchanged"; null would write NULL into a required column (a 500).
        # Only `description` may be cleared with null.
        if value is None:
            raise ValueError("cannot be null; leave the field out to keep its value")
        return value

    @model_validator(mode="after")
    def _not_empty(self) -> ProductUpdate:
        if not self.model_fields_set:
            raise ValueError("send at least one field to change")
        return self


class InventoryIn(StrictInput):
    on_hand: int = Field(strict=True, ge=0, le=10**12)


class InventoryOut(BaseModel):
    object: Literal["inventory"] = "inventory"
    product_id: str
    tracked: bool
    on_hand: int | None
    reserved: int | None
    available: int | None


class ProductOut(BaseModel):
    id: str
    object: Literal["product"] = "product"
    livemode: bool
    sku: str | None
    name: str
    description: str | None
    price: int
    currency: str
    kind: ProductKind
    fulfillment: dict[str, Any] = Field(
        description="How a paid order of it is fulfilled, as set at creation; its shape depends on `kind`."
    )
    active: bool
    deleted: bool
    created: datetime
    updated: datetime


class StorefrontProductOut(BaseModel):
    id: str
    object: Literal["product"] = "product"
    name: str
    description: str | None
    price: int
    currency: str
    kind: ProductKind
    available: int | None = Field(description="Units in stock now; null when stock is not tracked.")


class PromoCodeCreate(StrictInput):
    code: str = Field(min_length=2, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")
    percent_off: int | None = Field(default=None, strict=True, ge=1, le=100)
    amount_off: int | None = Field(
        default=None, strict=True, ge=1, le=MAX_AMOUNT, description=AMOUNT_DESCRIPTION
    )
    currency: str | None = Field(default=None, min_length=3, max_length=3)
    usage_limit: int | None = Field(default=None, strict=True, ge=1, le=1_000_000_000)
    starts_at: UtcDatetime | None = None
    ends_at: UtcDatetime | None = None

    @field_validator("currency")
    @classmethod
    def _check_currency(cls, value: str | None) -> str | None:
        return None if value is None else _currency(value)

    @model_validator(mode="after")
    def _one_kind_of_discount(self) -> PromoCodeCreate:
        if (self.percent_off is None) == (self.amount_off is None):
            raise ValueError("give exactly one of percent_off or amount_off")
        if self.amount_off is not None and self.currency is None:
            raise FieldValueError("currency", "amount_off needs a currency")
        if self.percent_off is not None and self.currency is not None:
            raise FieldValueError("currency", "currency goes with amount_off, not percent_off")
        for moment in (self.starts_at, self.ends_at):
            if moment is not None and moment.tzinfo is None:
                raise ValueError("times need a UTC offset, like 2026-01-01T00:00:00Z")
        if self.starts_at and self.ends_at and self.ends_at <= self.starts_at:
            raise FieldValueError("ends_at", "ends_at must be after starts_at")
        return self


class PromoCodeOut(BaseModel):
    id: str
    object: Literal["promo_code"] = "promo_code"
    livemode: bool
    code: str
    percent_off: int | None
    amount_off: int | None
    currency: str | None
    usage_limit: int | None
    usage_count: int
    starts_at: datetime | None
    ends_at: datetime | None
    active: bool
    created: datetime
