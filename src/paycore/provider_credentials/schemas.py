from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from paycore.schemas import StrictInput


class ProviderCredentialsIn(StrictInput):
    """The mode is the API key's: a test key sets test credentials, a live key live ones."""

    credentials: dict[str, Any] | None = Field(
        default=None,
        description="The provider's keys (see docs/providers/). Required the first time; omitted: kept.",
    )
    webhook_secret: str | None = Field(
        default=None,
        min_length=8,
        max_length=500,
        pattern=r"^[\x21-\x7e]+$",  # printable ASCII: what providers issue (a NUL made a 500)
        description="The secret the provider signs webhooks with (PayPal: the webhook id). Omitted: kept.",
    )
    previous_webhook_secret_valid_hours: int = Field(
        default=0,
        ge=0,
        le=7 * 24,
        description="When the webhook secret changes, keep accepting the old one this long.",
    )


class ProviderCredentialsOut(BaseModel):
    object: Literal["provider_account"] = "provider_account"
    provider: str
    livemode: bool
    credentials: dict[str, str] = Field(description="Identifiers in full, secrets masked (`sk_test_…4242`).")
    webhook_secret: str | None = Field(description="Masked, or null when none is set (webhooks are refused).")
    previous_webhook_secret_expires_at: datetime | None
    webhook_url: str = Field(description="The URL to register at the provider.")
    created: datetime
    updated: datetime
