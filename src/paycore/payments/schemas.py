from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class WebhookReceivedOut(BaseModel):
    """What a provider hears back: any 2xx means "stored, do not send it again"."""

    received: Literal[True] = True
    duplicate: bool = Field(description="Already stored from an earlier delivery: nothing more was done.")
    event: str | None = Field(default=None, description="The stored event's id (absent on a duplicate).")
    result: str | None = Field(
        default=None,
        description=(
            "What applying it did: applied, ignored, unmatched, mismatch, failed, or queued (the "
            "worker retries it). Absent on a duplicate."
        ),
    )
