"""One tenant's trouble at Razorpay is its own: its account's 429s (or refusals) never refuse
another tenant's checkouts, nor its own in the other mode. Only Razorpay failing as a whole (5xx,
time-outs, connection errors, seen by more than one merchant) opens the shared breaker, which then
refuses everyone at once.

The probe, at HTTP level: two merchants on one paycore, each with Razorpay keys for both modes,
their checkouts reaching a fake of Razorpay's API that rate-limits one account."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from paycore.app import create_app
from paycore.auth.models import KeyKind, KeyMode
from paycore.config import Settings
from paycore.db import Database
from paycore.payments.providers.registry import build_registry
from tests.conftest import make_settings
from tests.factories import make_api_key, make_tenant
from tests.flows.helpers import Shop, cart_with, checkout, create_product
from tests.providers.razorpay.fake import HOST, FakeRazorpay
from tests.providers.support import HostRouter, set_provider

THRESHOLD = 5  # PAYCORE_CIRCUIT_FAILURE_THRESHOLD's default: "five 429s"
BREAKER = "provider:razorpay"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return make_settings(database_url=settings.database_url, circuit_failure_threshold=THRESHOLD)


class Outage(httpx.AsyncBaseTransport):
    """The network between paycore and Razorpay: passes requests on, or times out while `down`."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.down = False

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self.down:
            raise httpx.ConnectTimeout("timed out connecting to Razorpay", request=request)
        return await self.inner.handle_async_request(request)


@dataclass
class Merchant:
    """One tenant with keys and Razorpay accounts in both modes."""

    test: Shop
    live: Shop
    ops: dict[str, str]  # a test-mode secret key with the ops scope
    test_key_id: str
    live_key_id: str


@dataclass
class Platform:
    db: Database
    http: httpx.AsyncClient
    fake: FakeRazorpay
    network: Outage


@pytest.fixture
async def platform(db: Database, settings: Settings) -> AsyncIterator[Platform]:
    """paycore's API with Razorpay behind the app's own breakers (those the ops summary shows)."""
    fake = FakeRazorpay()
    network = Outage(HostRouter({HOST: fake.app}))
    app = create_app(settings, database=db)
    registry = build_registry(settings, db, app.state.breakers, http_transport=network)
    app.state.providers = registry
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://paycore.test"
    ) as http:
        try:
            yield Platform(db, http, fake, network)
        finally:
            await registry.aclose()


def bearer(plaintext: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {plaintext}"}


async def merchant(platform: Platform, name: str) -> Merchant:
    async with platform.db.session() as session:
        tenant = await make_tenant(session)
        keys = {
            (mode, kind): await make_api_key(session, tenant=tenant, mode=mode, kind=kind)
            for mode in (KeyMode.TEST, KeyMode.LIVE)
            for kind in (KeyKind.SECRET, KeyKind.PUBLISHABLE)
        }
        ops = await make_api_key(session, tenant=tenant, scopes=["read", "ops"])
    shops = {
        mode: Shop(
            tenant_id=tenant.id,
            slug=tenant.slug,
            secret=bearer(keys[mode, KeyKind.SECRET].plaintext),
            publishable=bearer(keys[mode, KeyKind.PUBLISHABLE].plaintext),
        )
        for mode in (KeyMode.TEST, KeyMode.LIVE)
    }
    key_ids = {}
    for mode, shop in shops.items():
        key_id, key_secret = f"rzp_{mode.value}_{name}Account01", f"{name}_{mode.value}_secret_0123456789"
        platform.fake.other_keys[key_id] = key_secret
        await set_provider(platform.http, shop, "razorpay", {"key_id": key_id, "key_secret": key_secret})
        key_ids[mode] = key_id
    return Merchant(
        shops[KeyMode.TEST],
        shops[KeyMode.LIVE],
        bearer(ops.plaintext),
        key_ids[KeyMode.TEST],
        key_ids[KeyMode.LIVE],
    )


async def pay_with_razorpay(platform: Platform, shop: Shop) -> httpx.Response:
    product = await create_product(platform.http, shop, price=49900, currency="INR")
    cart_id = await cart_with(platform.http, shop, (product["id"], 1))
    return await checkout(platform.http, shop, cart_id, provider="razorpay")


def live_mode_exists(db: Database) -> bool:
    """Live checkouts pass the durability gate on PostgreSQL only (checkout/durability.py)."""
    return db.dialect_name == "postgresql"


async def razorpay_breakers_seen_by(platform: Platform, who: Merchant) -> tuple[str, dict[str, str]]:
    """The shared Razorpay breaker's state and the merchant's own breakers (test mode), as its
    ops summary shows them."""
    summary = await platform.http.get("/ops/summary", headers=who.ops)
    assert summary.status_code == 200, summary.text
    seen: dict[str, Any] = summary.json()["circuit_breakers"]
    return seen["shared"][BREAKER], seen["tenant"]


class TestOneAccountsTrouble:
    async def test_a_rate_limited_account_refuses_only_its_own_checkouts_in_that_mode(
        self, db: Database, platform: Platform
    ) -> None:
        a, b = await merchant(platform, "Alpha"), await merchant(platform, "Bravo")
        platform.fake.rate_limited.add(a.test_key_id)

        for _ in range(THRESHOLD):
            throttled = await pay_with_razorpay(platform, a.test)
            assert (throttled.status_code, throttled.json()["error"]["code"]) == (503, "provider_unavailable")
        calls = len(platform.fake.calls)
        refused = await pay_with_razorpay(platform, a.test)
        assert (refused.status_code, refused.json()["error"]["code"]) == (503, "provider_unavailable")
        assert len(platform.fake.calls) == calls  # A's own breaker is open: Razorpay was not called

        for _ in range(THRESHOLD + 1):
            other = await pay_with_razorpay(platform, b.test)
            assert other.status_code == 201, other.text
            assert other.json()["payment"]["client_data"]["key_id"] == b.test_key_id
        if live_mode_exists(db):
            for shop, key_id in ((b.live, b.live_key_id), (a.live, a.live_key_id)):
                live = await pay_with_razorpay(platform, shop)
                assert live.status_code == 201, live.text
                assert live.json()["payment"]["client_data"]["key_id"] == key_id

        assert await razorpay_breakers_seen_by(platform, b) == ("closed", {BREAKER: "closed"})
        assert await razorpay_breakers_seen_by(platform, a) == ("closed", {BREAKER: "open"})

    async def test_refusals_of_a_bad_key_open_no_breaker(self, db: Database, platform: Platform) -> None:
        a, b = await merchant(platform, "Alpha"), await merchant(platform, "Bravo")
        platform.fake.other_keys[a.test_key_id] = "revoked_at_razorpay_000"  # A's secret no longer works

        for _ in range(THRESHOLD + 1):
            calls = len(platform.fake.calls)
            refused = await pay_with_razorpay(platform, a.test)
            assert (refused.status_code, refused.json()["error"]["code"]) == (502, "provider_refused")
            assert len(platform.fake.calls) == calls + 1  # asked every time: a 401 is not an outage
        assert (await pay_with_razorpay(platform, b.test)).status_code == 201
        assert await razorpay_breakers_seen_by(platform, a) == ("closed", {BREAKER: "closed"})


class TestRazorpayDown:
    @pytest.mark.parametrize("failure", ["http_500", "connect_timeout"])
    async def test_provider_failures_open_the_shared_breaker_for_everyone(
        self, db: Database, platform: Platform, failure: str
    ) -> None:
        a, b = await merchant(platform, "Alpha"), await merchant(platform, "Bravo")
        newcomer = await merchant(platform, "Charlie")
        if failure == "http_500":
            platform.fake.fail_next = [500] * THRESHOLD
        else:
            platform.network.down = True

        for number in range(THRESHOLD):  # two merchants' checkouts fail in turn: Razorpay is down
            down = await pay_with_razorpay(platform, (a, b)[number % 2].test)
            assert (down.status_code, down.json()["error"]["code"]) == (503, "provider_unavailable")
        calls = len(platform.fake.calls)
        platform.network.down = False  # Razorpay is back, but the breaker has not probed yet
        for shop in (newcomer.test, b.test, a.test):
            refused = await pay_with_razorpay(platform, shop)
            assert (refused.status_code, refused.json()["error"]["code"]) == (503, "provider_unavailable")
        if live_mode_exists(db):
            refused = await pay_with_razorpay(platform, newcomer.live)
            assert (refused.status_code, refused.json()["error"]["code"]) == (503, "provider_unavailable")
        assert len(platform.fake.calls) == calls  # refused at once, without waiting on Razorpay

        # The newcomer's own breaker never saw a failure: the shared one refused it first.
        assert await razorpay_breakers_seen_by(platform, newcomer) == ("open", {})

    async def test_server_errors_only_one_merchant_sees_refuse_only_its_checkouts(
        self, db: Database, platform: Platform
    ) -> None:
        """Razorpay answering 500 to one merchant's requests alone may be that merchant's doing:
        not yet evidence that Razorpay is down for everyone."""
        a, b = await merchant(platform, "Alpha"), await merchant(platform, "Bravo")
        platform.fake.fail_next = [500] * THRESHOLD
        for _ in range(THRESHOLD):
            assert (await pay_with_razorpay(platform, a.test)).status_code == 503
        assert (await pay_with_razorpay(platform, b.test)).status_code == 201
        assert await razorpay_breakers_seen_by(platform, a) == ("closed", {BREAKER: "open"})
