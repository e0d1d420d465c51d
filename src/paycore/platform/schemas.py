from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from paycore.schemas import DisplayText, StrictInput, UtcDatetime
from paycore.tenancy.models import SubscriptionStatus, TenantStatus

LIMIT_FIELD = Field(default=None, strict=True, ge=0, le=1_000_000_000, description="None: unlimited.")


class PlanIn(StrictInput):
    code: str = Field(min_length=1, max_length=63)
    name: str = Field(min_length=1, max_length=200)
    max_products: int | None = LIMIT_FIELD
    max_orders_per_month: int | None = LIMIT_FIELD
    features: list[str] = Field(
        default_factory=list,
        max_length=50,
        description="`server_template:<code>` lets the plan's tenants sell servers of that template.",
    )
    max_servers: int | None = Field(
        default=None,
        strict=True,
        ge=0,
        le=1_000_000,
        description="Servers alive on the panel; None: unlimited.",
    )
    max_server_memory_mb: int | None = Field(
        default=None, strict=True, ge=0, le=10**9, description="Their total memory in MB; None: unlimited."
    )


class PlanOut(BaseModel):
    id: str
    object: Literal["plan"] = "plan"
    code: str
    name: str
    max_products: int | None
    max_orders_per_month: int | None
    features: list[str]
    max_servers: int | None
    max_server_memory_mb: int | None
    created: datetime


class PlatformTenantIn(StrictInput):
    slug: str = Field(min_length=3, max_length=63)
    name: DisplayText = Field(min_length=1, max_length=200)
    plan: str | None = Field(
        default=None, max_length=63, description="A plan code; default: the unlimited plan."
    )


class SubscriptionIn(StrictInput):
    plan: str = Field(min_length=1, max_length=63)
    status: SubscriptionStatus = SubscriptionStatus.ACTIVE
    current_period_end: UtcDatetime | None = None


class SubscriptionOut(BaseModel):
    plan: str | None
    status: SubscriptionStatus | None
    current_period_end: datetime | None


class PlatformTenantOut(BaseModel):
    id: str
    object: Literal["tenant"] = "tenant"
    slug: str
    name: str
    status: TenantStatus
    may_sell: bool = Field(description="False when suspended or the subscription is not active or trialing.")
    subscription: SubscriptionOut
    created: datetime
