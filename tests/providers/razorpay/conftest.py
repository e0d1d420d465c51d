from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest

from paycore.payments.providers.base import ProviderAccount, ProviderCredentials
from paycore.payments.providers.common import ProviderHttp
from paycore.payments.providers.razorpay import RazorpayProvider
from tests.conftest import make_settings
from tests.providers.razorpay.fake import HOST, FakeRazorpay
from tests.providers.support import HostRouter

WEBHOOK_SECRET = "whsec_rzp_test_0123456789"
ACCOUNT = ProviderAccount(tenant_id="ten_1", tenant_slug="shop", livemode=False)


@dataclass
class StaticCredentials:
    """A `CredentialSource` holding one tenant's credentials per mode, in memory."""

    by_mode: dict[bool, ProviderCredentials] = field(default_factory=dict)

    async def get(self, tenant_id: str, provider: str, *, livemode: bool) -> ProviderCredentials | None:
        return self.by_mode.get(livemode) if tenant_id == ACCOUNT.tenant_id else None

    def put(
        self, fake: FakeRazorpay, *, livemode: bool = False, webhook_secrets: tuple[str, ...] = ()
    ) -> None:
        self.by_mode[livemode] = ProviderCredentials(
            provider="razorpay",
            livemode=livemode,
            values={"key_id": fake.key_id, "key_secret": fake.key_secret},
            webhook_secrets=webhook_secrets,
        )


@pytest.fixture
def fake() -> FakeRazorpay:
    return FakeRazorpay()


@pytest.fixture
def credentials(fake: FakeRazorpay) -> StaticCredentials:
    source = StaticCredentials()
    source.put(fake, webhook_secrets=(WEBHOOK_SECRET,))
    return source


@pytest.fixture
async def adapter(fake: FakeRazorpay, credentials: StaticCredentials) -> AsyncIterator[RazorpayProvider]:
    http = ProviderHttp(timeout=5, transport=HostRouter({HOST: fake.app}))
    try:
        yield RazorpayProvider(make_settings(), credentials, http)
    finally:
        await http.aclose()
