from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from paycore.config import Settings
from paycore.payments.providers.base import ProviderCredentials
from paycore.payments.providers.common import ProviderHttp
from paycore.payments.providers.paypal import PayPalProvider
from tests.conftest import make_settings
from tests.providers.paypal.fake import (
    API_HOST,
    CERT_HOST,
    CLIENT_ID,
    CLIENT_SECRET,
    LIVE_API_HOST,
    WEBHOOK_ID,
    FakePayPal,
)
from tests.providers.paypal.pki import pki
from tests.providers.support import HostRouter

TENANT = "ten_paypal_unit"


class MemoryCredentials:
    """A `CredentialSource` holding one tenant's PayPal accounts, for tests without a database."""

    def __init__(self) -> None:
        self.accounts: dict[bool, ProviderCredentials] = {}

    def put(
        self,
        *,
        livemode: bool = False,
        webhook_ids: tuple[str, ...] = (WEBHOOK_ID,),
        client_id: str = CLIENT_ID,
        client_secret: str = CLIENT_SECRET,
    ) -> None:
        self.accounts[livemode] = ProviderCredentials(
            provider="paypal",
            livemode=livemode,
            values={"client_id": client_id, "client_secret": client_secret},
            webhook_secrets=webhook_ids,
        )

    async def get(self, tenant_id: str, provider: str, *, livemode: bool) -> ProviderCredentials | None:
        assert (tenant_id, provider) == (TENANT, "paypal")
        return self.accounts.get(livemode)


@pytest.fixture
def fake() -> FakePayPal:
    return FakePayPal()


@pytest.fixture
def router(fake: FakePayPal) -> HostRouter:
    return HostRouter({API_HOST: fake.app, LIVE_API_HOST: fake.app, CERT_HOST: fake.app})


@pytest.fixture
def trust_roots(tmp_path: Path) -> str:
    path = tmp_path / "paypal-roots.pem"
    path.write_bytes(pki().root_pem)
    return str(path)


def paypal_settings(trust_roots: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "paypal_cert_trust_roots": trust_roots,
        "paypal_webhook_verification": "offline",
    }
    return make_settings(**{**values, **overrides})


@pytest.fixture
def accounts() -> MemoryCredentials:
    source = MemoryCredentials()
    source.put()
    return source


@pytest.fixture
async def http(router: HostRouter) -> AsyncIterator[ProviderHttp]:
    client = ProviderHttp(timeout=5, transport=router)
    yield client
    await client.aclose()


@pytest.fixture
def adapter(trust_roots: str, accounts: MemoryCredentials, http: ProviderHttp) -> PayPalProvider:
    return PayPalProvider(paypal_settings(trust_roots), accounts, http)
