"""A payment provider that is down: checkouts fail with 503 until its breaker opens, then fail at
once without calling it; the orders stay payable-later (`pending_payment`) and ops can see why."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY

from paycore.app import create_app
from paycore.circuit import Breakers
from paycore.config import Settings
from paycore.db import Database
from paycore.money import Money
from paycore.payments.providers.base import (
    NeutralEvent,
    NeutralKind,
    PaymentRequest,
    PaymentSession,
    ProviderAccount,
    ProviderPaymentStatus,
    ProviderUnavailable,
    RefundOutcome,
    VerifiedWebhook,
    WebhookRejected,
)
from paycore.payments.providers.guarded import GuardedProvider
from paycore.payments.providers.registry import ProviderRegistry
from paycore.tenancy.models import Tenant
from tests.factories import make_api_key
from tests.flows.helpers import Shop, cart_with, checkout, create_product, open_shop

THRESHOLD = 3
BREAKER = "provider:flaky"


class FlakyProvider:
    """A provider whose API is down: every call waits a moment, then fails as unreachable."""

    name = "flaky"
    supports_livemode = False
    credentials_model = None
    secret_fields: frozenset[str] = frozenset()
    webhook_secret_required = False

    def __init__(self, delay: float = 0.2) -> None:
        self.delay = delay
        self.create_calls = 0

    async def check_ready(self, account: ProviderAccount) -> None:
        pass

    async def create_payment(self, request: PaymentRequest) -> PaymentSession:
        self.create_calls += 1
        await asyncio.sleep(self.delay)  # what a hanging upstream costs each caller
        raise ProviderUnavailable("flaky: 502 Bad Gateway")

    async def verify_webhook(
        self, account: ProviderAccount, headers: Mapping[str, str], body: bytes, now: datetime
    ) -> VerifiedWebhook:
        raise WebhookRejected("bad_signature", "flaky sends no webhooks")

    def to_neutral(self, payload: dict[str, Any], *, livemode: bool) -> NeutralEvent:
        return NeutralEvent(
            provider_event_id=str(payload.get("id")), type="x", kind=NeutralKind.IGNORED, livemode=False
        )

    async def settle(self, account: ProviderAccount, payment_ref: str) -> ProviderPaymentStatus:
        raise ProviderUnavailable("flaky: 502 Bad Gateway")

    async def fetch_status(self, account: ProviderAccount, payment_ref: str) -> ProviderPaymentStatus:
        raise ProviderUnavailable("flaky: 502 Bad Gateway")

    async def confirm(
        self, account: ProviderAccount, payment_ref: str, params: Mapping[str, Any]
    ) -> ProviderPaymentStatus:
        raise ProviderUnavailable("flaky: 502 Bad Gateway")

    async def refund(
        self, account: ProviderAccount, payment_ref: str, amount: Money, refund_id: str
    ) -> RefundOutcome:
        raise ProviderUnavailable("flaky: 502 Bad Gateway")


@dataclass
class Storefront:
    client: httpx.AsyncClient
    provider: FlakyProvider
    breakers: Breakers


@pytest.fixture
async def storefront(db: Database, settings: Settings) -> AsyncIterator[Storefront]:
    """The app with the flaky provider registered the way `build_registry` registers providers."""
    provider = FlakyProvider()
    breakers = Breakers(failure_threshold=THRESHOLD, reset_seconds=60)
    app = create_app(settings, database=db)
    app.state.breakers = breakers
    app.state.providers = ProviderRegistry({provider.name: GuardedProvider(provider, breakers)})
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url=settings.public_url
    ) as http:
        yield Storefront(client=http, provider=provider, breakers=breakers)


@pytest.fixture
async def shop(db: Database) -> Shop:
    return await open_shop(db)


async def attempt_checkout(front: Storefront, shop: Shop, product_id: str) -> httpx.Response:
    cart_id = await cart_with(front.client, shop, (product_id, 1))
    return await checkout(front.client, shop, cart_id, provider="flaky")


def rejections() -> float:
    labels = {"target": BREAKER, "scope": "shared"}
    return REGISTRY.get_sample_value("paycore_circuit_rejections_total", labels) or 0.0


class TestProviderDown:
    async def test_breaker_opens_and_later_checkouts_fail_without_calling_the_provider(
        self, db: Database, storefront: Storefront, shop: Shop
    ) -> None:
        """Down for everyone: the failures come from several merchants, so the shared breaker
        opens and a merchant that never called it yet is refused at once too."""
        other, late = await open_shop(db), await open_shop(db)
        shops = [shop, other, shop]
        products = {
            each.tenant_id: await create_product(storefront.client, each, stock=10)
            for each in (shop, other, late)
        }

        for expected_calls, each in enumerate(shops[:THRESHOLD], start=1):
            response = await attempt_checkout(storefront, each, products[each.tenant_id]["id"])
            assert response.status_code == 503
            assert response.json()["error"]["code"] == "provider_unavailable"
            assert storefront.provider.create_calls == expected_calls
        assert storefront.breakers.states_for(late.tenant_id, livemode=False) == {
            "shared": {BREAKER: "open"},
            "tenant": {},
        }

        refused_before = rejections()
        response = await attempt_checkout(storefront, late, products[late.tenant_id]["id"])
        assert response.status_code == 503
        assert response.json()["error"]["code"] == "provider_unavailable"
        assert storefront.provider.create_calls == THRESHOLD  # refused by the breaker, not the provider
        assert rejections() == refused_before + 1
        assert REGISTRY.get_sample_value("paycore_circuit_state", {"target": BREAKER}) == 2

        listed = await storefront.client.get("/v1/orders", params={"limit": 100}, headers=shop.secret)
        assert listed.status_code == 200
        orders = listed.json()["data"]
        assert len(orders) == shops[:THRESHOLD].count(shop)
        assert {entry["status"] for entry in orders} == {"pending_payment"}
        assert {entry["provider"] for entry in orders} == {"flaky"}

    async def test_failures_one_merchant_alone_sees_refuse_only_its_own_checkouts(
        self, db: Database, storefront: Storefront, shop: Shop
    ) -> None:
        """A provider failing for one merchant only may be that merchant's doing (a request the
        provider chokes on): its own breaker opens, the shared one waits for a second merchant."""
        other = await open_shop(db)
        product = await create_product(storefront.client, shop, stock=10)
        for _ in range(THRESHOLD):
            assert (await attempt_checkout(storefront, shop, product["id"])).status_code == 503
        assert (await attempt_checkout(storefront, shop, product["id"])).status_code == 503
        assert storefront.provider.create_calls == THRESHOLD  # its own breaker refused the last one
        assert storefront.breakers.states_for(shop.tenant_id, livemode=False) == {
            "shared": {BREAKER: "closed"},
            "tenant": {BREAKER: "open"},
        }

        elsewhere = await attempt_checkout(
            storefront, other, (await create_product(storefront.client, other))["id"]
        )
        assert elsewhere.status_code == 503  # the provider fails it too …
        assert storefront.provider.create_calls == THRESHOLD + 1  # … but it was asked
        # Now a second merchant has seen it fail: that is the provider's trouble, for everyone.
        assert storefront.breakers.states_for(other.tenant_id, livemode=False)["shared"] == {BREAKER: "open"}

    async def test_ops_summary_shows_the_open_breaker(
        self, db: Database, storefront: Storefront, shop: Shop
    ) -> None:
        async with db.session() as session:
            tenant = await session.get(Tenant, shop.tenant_id)
            assert tenant is not None
            ops_key = await make_api_key(session, tenant=tenant, scopes=["read", "ops"])
        ops = {"Authorization": f"Bearer {ops_key.plaintext}"}

        before = await storefront.client.get("/ops/summary", headers=ops)
        assert before.status_code == 200, before.text
        assert before.json()["circuit_breakers"] == {"shared": {BREAKER: "closed"}, "tenant": {}}

        product = await create_product(storefront.client, shop, stock=10)
        for _ in range(THRESHOLD):
            assert (await attempt_checkout(storefront, shop, product["id"])).status_code == 503

        summary = await storefront.client.get("/ops/summary", headers=ops)
        assert summary.status_code == 200, summary.text
        body = summary.json()
        assert body["circuit_breakers"] == {"shared": {BREAKER: "closed"}, "tenant": {BREAKER: "open"}}
        assert body["orders_by_status"] == {"pending_payment": THRESHOLD}
