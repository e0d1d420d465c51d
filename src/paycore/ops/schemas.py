"""What /health, /ready and /ops/summary answer."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from paycore.schemas import ErrorDetail


class HealthOut(BaseModel):
    status: Literal["ok"] = "ok"


class CheckOut(BaseModel):
    ok: bool
    detail: str


class ReadyOut(BaseModel):
    status: Literal["ready"] = "ready"
    checks: dict[str, CheckOut] = Field(description="Each check by name: database, migrations, redis, …")
    warnings: list[str] | None = Field(
        default=None, description="Ready, with a caveat an operator must read (live payments on SQLite)."
    )


class NotReadyOut(BaseModel):
    """The error envelope (`code` `not_ready`), plus every check."""

    error: ErrorDetail
    checks: dict[str, CheckOut]


class PaymentsByStatus(BaseModel):
    count: int
    amount: dict[str, int] = Field(
        description="Succeeded payments only: minor units per currency (ISO 4217)."
    )


class BreakerStates(BaseModel):
    shared: dict[str, str] = Field(
        description="Breakers every tenant shares, by target: closed, open, half_open."
    )
    tenant: dict[str, str] = Field(description="This tenant's own breakers in this mode.")


class MigrationsOut(BaseModel):
    current: str | None
    head: str
    pending: list[str]


class OpsSummaryOut(BaseModel):
    """For the caller's tenant and mode only."""

    object: Literal["ops_summary"] = "ops_summary"
    livemode: bool
    generated_at: datetime
    orders_by_status: dict[str, int]
    payments_last_24h: dict[str, PaymentsByStatus] = Field(description="Payment attempts by status.")
    webhook_events_by_result: dict[str, int] = Field(
        description="Provider events by result: applied, ignored, unmatched, mismatch, failed, pending."
    )
    last_webhook_received: dict[str, datetime] = Field(description="By provider.")
    outbox_by_status: dict[str, int]
    outbox_dead: dict[str, int] = Field(description="Dead messages by channel: replay them after a fix.")
    outbox_oldest_due_seconds: float = Field(description="How long the oldest due message has waited.")
    fulfillments_needing_attention: list[str] = Field(
        description="Fulfillment ids, newest first (20 at most)."
    )
    circuit_breakers: BreakerStates
    migrations: MigrationsOut
