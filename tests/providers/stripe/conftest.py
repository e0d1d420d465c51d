from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import httpx
import pytest

from paycore.config import Settings
from paycore.db import Database
from paycore.payments.providers.base import ProviderCredentials
from paycore.payments.providers.registry import ProviderRegistry
from tests.providers.stripe.fake import FakeStripe
from tests.providers.support import HostRouter, api_client

SECRET_KEY = "sk_test_51PaycoreFakeKey0000000000abcd"
PUBLISHABLE_KEY = "pk_test_51PaycoreFakeKey0000000000wxyz"
WEBHOOK_SECRET = "whsec_paycore_test_webhook_secret_1"
CREDENTIALS = {"secret_key": SECRET_KEY, "publishable_key": PUBLISHABLE_KEY}


@dataclass
class MemoryCredentials:
    """A `CredentialSource` for adapter tests that need no database."""

    accounts: dict[bool, ProviderCredentials] = field(default_factory=dict)

    def put(self, *, livemode: bool, values: dict[str, str], webhook_secrets: tuple[str, ...] = ()) -> None:
        self.accounts[livemode] = ProviderCredentials(
            provider="stripe", livemode=livemode, values=values, webhook_secrets=webhook_secrets
        )

    async def get(self, tenant_id: str, provider: str, *, livemode: bool) -> ProviderCredentials | None:
        return self.accounts.get(livemode) if provider == "stripe" else None


@pytest.fixture
def fake_stripe() -> FakeStripe:
    return FakeStripe(secret_key=SECRET_KEY)


@pytest.fixture
def stripe_transport(fake_stripe: FakeStripe) -> HostRouter:
    return HostRouter({"api.stripe.com": fake_stripe.app})


@pytest.fixture
async def paycore(
    db: Database, settings: Settings, stripe_transport: HostRouter
) -> AsyncIterator[tuple[httpx.AsyncClient, ProviderRegistry]]:
    async with api_client(db, settings, stripe_transport) as pair:
        yield pair
