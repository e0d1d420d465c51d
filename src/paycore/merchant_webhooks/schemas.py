from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field, field_validator

from paycore.schemas import StrictInput

EVENT_TYPES = (
    "order.created",
    "order.paid",
    "order.fulfilled",
    "order.canceled",
    "order.expired",
    "order.needs_review",
    "order.refunded",
    "payment.failed",
    "refund.succeeded",
    "fulfillment.failed",
)


class EndpointCreate(StrictInput):
    url: str = Field(min_length=8, max_length=2000)
    events: list[str] = Field(default_factory=lambda: ["*"], min_length=1, max_length=len(EVENT_TYPES))
    description: str | None = Field(default=None, max_length=500)

    @field_validator("events")
    @classmethod
    def _known_events(cls, value: list[str]) -> list[str]:
        unknown = sorted(set(value) - {*EVENT_TYPES, "*"})
        if unknown:
            raise ValueError(
                f"unknown event type(s) {', '.join(unknown)}; choose from {', '.join(EVENT_TYPES)} or *"
            )
        return sorted(set(value))


class RotateSecretIn(StrictInput):
    previous_secret_valid_hours: int = Field(default=24, strict=True, ge=0, le=24 * 7)


class EndpointOut(BaseModel):
    id: str
    object: Literal["webhook_endpoint"] = "webhook_endpoint"
    livemode: bool
    url: str
    description: str | None
    events: list[str]
    enabled: bool
    disabled_reason: str | None
    failing_since: datetime | None
    previous_secret_expires_at: datetime | None
    created: datetime
    secret: str | None = Field(default=None, description="Shown only when created or rotated.")


class AttemptOut(BaseModel):
    id: str
    object: Literal["webhook_attempt"] = "webhook_attempt"
    event_id: str
    event_type: str
    succeeded: bool
    status_code: int | None
    latency_ms: int
    response_excerpt: str | None = Field(
        default=None, description="Always null: what an endpoint answers is not kept, only its status."
    )
    error: str | None
    at: datetime
