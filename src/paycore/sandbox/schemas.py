from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from paycore.schemas import StrictInput


class ChaosIn(StrictInput):
    """Misbehave like real providers do, to see paycore keep its promises."""

    copies: int = Field(default=1, ge=1, le=50, description="Send each webhook this many times.")
    out_of_order: bool = Field(default=False, description="Send the events newest first.")
    delay_seconds: int = Field(default=0, ge=0, le=3600, description="Hold the webhooks back this long.")
    bad_signature: bool = Field(
        default=False, description="Sign with the wrong secret (paycore must refuse)."
    )
    amount_delta: int = Field(
        default=0, ge=-(10**9), le=10**9, description="Report this much more (or less)."
    )


class SandboxConfirmIn(StrictInput):
    outcome: Literal["succeed", "decline"]
    chaos: ChaosIn = Field(default_factory=ChaosIn)


class SandboxPaymentOut(BaseModel):
    id: str
    object: Literal["sandbox_payment"] = "sandbox_payment"
    merchant_reference: str
    amount: int
    currency: str
    status: str
