"""Rate limits by class of caller: 429 with Retry-After past the limit, buckets kept apart, shared
across processes through Redis, and a limiter whose storage is down lets requests through."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from paycore.app import create_app
from paycore.db import Database
from paycore.sandbox.credentials import webhook_secret
from paycore.sandbox.signing import SIGNATURE_HEADER, sign
from paycore.serving import uvicorn_config
from tests.conftest import make_settings
from tests.flows.helpers import Shop, open_shop


class ManualClock:
    """The limiter's only time source in these tests: set, never slept on nor read from the wall."""

    def __init__(self, now: float = 1_800_000_000.0) -> None:  # the start of a minute
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def limited_app(db: Database, clock: ManualClock | None = None, **overrides: Any) -> FastAPI:
    settings = make_settings(
        database_url=db.engine.url.render_as_string(hide_password=False),
        rate_limit_enabled=True,
        **overrides,
    )
    app = create_app(settings, database=db)
    app.state.rate_limiter.clock = clock or ManualClock()
    return app


@pytest.fixture
async def shop(db: Database) -> Shop:
    return await open_shop(db)


@asynccontextmanager
async def client_for(app: FastAPI, ip: str = "203.0.113.7") -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, client=(ip, 40000))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://paycore.test") as http:
            yield http
    finally:
        await app.state.rate_limiter.aclose()  # what the lifespan does at shutdown


def sandbox_event(app: FastAPI, shop: Shop) -> dict[str, Any]:
    """A webhook the sandbox provider really signed for `shop` (for no order: stored unmatched)."""
    body = json.dumps({"id": f"sbevt_{uuid.uuid4().hex}", "type": "payment.succeeded", "data": {}}).encode()
    header = sign(webhook_secret(app.state.settings, shop.tenant_id), int(time.time()), body)
    return {"content": body, "headers": {"content-type": "application/json", SIGNATURE_HEADER: header}}


class TestInMemory:
    async def test_past_the_limit_is_429_with_retry_after(self, db: Database, shop: Shop) -> None:
        clock = ManualClock()
        app = limited_app(db, clock, rate_limit_merchant_api="3/minute")
        async with client_for(app) as http:
            statuses = [(await http.get("/v1/tenant", headers=shop.secret)).status_code for _ in range(4)]
            refused = await http.get("/v1/tenant", headers=shop.secret)
            # Three in this minute; the sliding window lets one more in once a third of them has
            # slid out: 60 s to the next minute, then 20 s of it.
            assert int(refused.headers["retry-after"]) == 80
            clock.advance(79)
            assert (await http.get("/v1/tenant", headers=shop.secret)).status_code == 429
            clock.advance(1)
            assert (await http.get("/v1/tenant", headers=shop.secret)).status_code == 200
        assert statuses == [200, 200, 200, 429]
        assert refused.json()["error"]["code"] == "rate_limited"
        assert refused.json()["error"]["type"] == "rate_limit_error"
        assert refused.headers["x-request-id"]

    async def test_a_burst_across_a_minute_boundary_is_still_limited(self, db: Database, shop: Shop) -> None:
        # Issue 11, finding 15: requests straddling a minute boundary got a fresh allowance.
        clock = ManualClock(1_800_000_000.0 - 0.1)
        app = limited_app(db, clock, rate_limit_merchant_api="2/minute")
        async with client_for(app) as http:
            before = [(await http.get("/v1/tenant", headers=shop.secret)).status_code for _ in range(2)]
            clock.advance(0.2)
            after = (await http.get("/v1/tenant", headers=shop.secret)).status_code
            clock.advance(60)
            a_minute_later = (await http.get("/v1/tenant", headers=shop.secret)).status_code
        assert (before, after, a_minute_later) == ([200, 200], 429, 200)

    async def test_each_key_and_each_address_has_its_own_bucket(self, db: Database, shop: Shop) -> None:
        other = await open_shop(db)
        app = limited_app(db, rate_limit_merchant_api="1/minute", rate_limit_storefront="1/minute")
        async with (
            client_for(app, "203.0.113.1") as first,
            client_for(app, "203.0.113.2") as second,
        ):
            assert (await first.get("/v1/tenant", headers=shop.secret)).status_code == 200
            assert (await first.get("/v1/tenant", headers=other.secret)).status_code == 200  # another key
            assert (await first.get("/v1/tenant", headers=shop.secret)).status_code == 429
            # Storefront calls count per address, whatever key they carry.
            assert (await first.get("/v1/storefront/products", headers=shop.publishable)).status_code != 429
            assert (await first.get("/v1/storefront/products", headers=other.publishable)).status_code == 429
            assert (await second.get("/v1/storefront/products", headers=shop.publishable)).status_code != 429

    async def test_health_is_never_limited(self, db: Database) -> None:
        app = limited_app(db, rate_limit_storefront="1/minute", rate_limit_webhooks="1/minute")
        async with client_for(app) as http:
            assert {(await http.get("/health")).status_code for _ in range(5)} == {200}


class TestUnauthenticatedCallers:
    """Issue 11, finding 8: any bearer string that was not `pk_…` got a merchant bucket of its own."""

    async def test_made_up_bearers_share_their_address_bucket(self, db: Database, shop: Shop) -> None:
        app = limited_app(db, rate_limit_storefront="3/minute", rate_limit_merchant_api="100/minute")
        made_up = ["junk-1", "sk_test_" + "A" * 44, "plat_" + "B" * 44, "junk-4", "junk-5"]
        async with client_for(app, "198.51.100.9") as attacker, client_for(app, "198.51.100.10") as other:
            codes = [
                (await attacker.get("/v1/tenant", headers={"Authorization": f"Bearer {token}"})).status_code
                for token in made_up
            ]
            # A key that authenticates has its own bucket, even from the spent address.
            genuine = (await attacker.get("/v1/tenant", headers=shop.secret)).status_code
            elsewhere = (
                await other.get("/v1/tenant", headers={"Authorization": "Bearer junk-6"})
            ).status_code
        assert codes == [401, 401, 401, 429, 429]
        assert (genuine, elsewhere) == (200, 401)

    async def test_a_forwarded_for_header_buys_a_new_address_only_from_a_trusted_proxy(
        self, db: Database
    ) -> None:
        app = limited_app(db, rate_limit_storefront="2/minute", trusted_proxies="10.0.0.5")
        # What uvicorn wraps the app in when PAYCORE_TRUSTED_PROXIES is set (see uvicorn_config).
        served = ProxyHeadersMiddleware(app, trusted_hosts=app.state.settings.trusted_proxies)

        async def codes_from(peer: str) -> list[int]:
            transport = httpx.ASGITransport(app=served, client=(peer, 40000))
            async with httpx.AsyncClient(transport=transport, base_url="http://paycore.test") as http:
                return [
                    (
                        await http.get(
                            "/v1/tenant",
                            headers={"Authorization": f"Bearer junk-{n}", "X-Forwarded-For": f"192.0.2.{n}"},
                        )
                    ).status_code
                    for n in range(3)
                ]

        assert await codes_from("198.51.100.9") == [401, 401, 429]  # not a proxy: its own address
        assert await codes_from("10.0.0.5") == [401, 401, 401]  # the proxy: each customer's address

    async def test_ipv6_callers_count_per_64(self, db: Database) -> None:
        app = limited_app(db, rate_limit_storefront="2/minute")
        codes = []
        for suffix in ("1", "2", "3"):  # three addresses of one /64: one bucket
            async with client_for(app, f"2001:db8:1:2::{suffix}") as http:
                codes.append((await http.get("/v1/storefront/products")).status_code)
        async with client_for(app, "2001:db8:1:3::1") as neighbour:  # the next /64
            codes.append((await neighbour.get("/v1/storefront/products")).status_code)
        assert codes == [401, 401, 429, 401]

    async def test_made_up_bearers_do_not_grow_the_counters(self, db: Database) -> None:
        app = limited_app(db, rate_limit_storefront="1000/minute")
        async with client_for(app) as http:
            for number in range(50):
                await http.get("/v1/tenant", headers={"Authorization": f"Bearer made-up-{number}"})
            assert len(app.state.rate_limiter.counters) == 1  # this minute of this address

    async def test_the_counters_in_memory_are_capped(self, db: Database) -> None:
        app = limited_app(db, rate_limit_storefront="1000/minute", rate_limit_memory_max_keys=100)
        for number in range(150):
            async with client_for(app, f"10.9.{number // 250}.{number % 250}") as http:
                await http.get("/v1/storefront/products")
        assert len(app.state.rate_limiter.counters) == 100


class TestWebhooks:
    """Issue 11, finding 4: five junk posts to `/webhooks/stripe/nosuch` spent the one bucket
    every tenant's genuine Stripe webhooks counted against."""

    async def test_junk_spends_only_its_senders_budget(self, db: Database, shop: Shop) -> None:
        app = limited_app(db, rate_limit_webhooks="3/minute")
        junk = {"content": b"{}", "headers": {"Stripe-Signature": "t=1,v1=00"}}
        async with client_for(app, "198.51.100.66") as attacker, client_for(app, "192.0.2.10") as provider:
            probe = [(await attacker.post("/webhooks/stripe/nosuch", **junk)).status_code for _ in range(5)]
            forged = (await attacker.post(f"/webhooks/sandbox/{shop.slug}", **junk)).status_code
            genuine = [
                (
                    await provider.post(f"/webhooks/sandbox/{shop.slug}", **sandbox_event(app, shop))
                ).status_code
                for _ in range(3)
            ]
        assert probe == [404, 404, 404, 429, 429]
        assert forged == 429
        assert genuine == [200, 200, 200]

    async def test_bad_signatures_do_not_spend_the_tenants_bucket(self, db: Database, shop: Shop) -> None:
        app = limited_app(db, rate_limit_webhooks="2/minute")
        async with client_for(app, "192.0.2.10") as provider:
            for _ in range(2):
                forged = sandbox_event(app, shop)
                forged["content"] += b" "
                assert (await provider.post(f"/webhooks/sandbox/{shop.slug}", **forged)).status_code == 400
        async with client_for(app, "192.0.2.11") as provider:
            genuine = [
                (
                    await provider.post(f"/webhooks/sandbox/{shop.slug}", **sandbox_event(app, shop))
                ).status_code
                for _ in range(3)
            ]
        assert genuine == [200, 200, 429]

    async def test_verified_events_count_per_provider_and_tenant(self, db: Database, shop: Shop) -> None:
        other = await open_shop(db)
        app = limited_app(db, rate_limit_webhooks="2/minute")
        async with client_for(app, "192.0.2.10") as provider:
            mine = [
                (
                    await provider.post(f"/webhooks/sandbox/{shop.slug}", **sandbox_event(app, shop))
                ).status_code
                for _ in range(3)
            ]
            theirs = (
                await provider.post(f"/webhooks/sandbox/{other.slug}", **sandbox_event(app, other))
            ).status_code
        assert mine == [200, 200, 429]
        assert theirs == 200


class TestRedis:
    async def test_two_processes_share_one_limit(self, db: Database, shop: Shop, redis_url: str) -> None:
        # Each test's shop has a new key, so earlier runs' counts in Redis are someone else's.
        clock = ManualClock()
        first_app = limited_app(db, clock, rate_limit_merchant_api="4/minute", redis_url=redis_url)
        second_app = limited_app(db, clock, rate_limit_merchant_api="4/minute", redis_url=redis_url)
        headers = {"Authorization": shop.secret["Authorization"]}
        async with client_for(first_app) as first, client_for(second_app) as second:
            codes = [
                (await first.get("/v1/tenant", headers=headers)).status_code,
                (await second.get("/v1/tenant", headers=headers)).status_code,
                (await first.get("/v1/tenant", headers=headers)).status_code,
                (await second.get("/v1/tenant", headers=headers)).status_code,
                (await first.get("/v1/tenant", headers=headers)).status_code,
            ]
        assert codes == [200, 200, 200, 200, 429]

    async def test_redis_down_lets_requests_through(self, db: Database, shop: Shop) -> None:
        app = limited_app(db, rate_limit_merchant_api="1/minute", redis_url="redis://127.0.0.1:1/0")
        async with client_for(app) as http:
            codes = [(await http.get("/v1/tenant", headers=shop.secret)).status_code for _ in range(3)]
        assert codes == [200, 200, 200]


class TestClientAddress:
    def test_forwarded_for_is_believed_only_from_named_proxies(self) -> None:
        plain = uvicorn_config(
            "paycore.app:create_app_from_environment", make_settings(), host="127.0.0.1", port=1
        )
        assert plain.proxy_headers is False
        behind = uvicorn_config(
            "paycore.app:create_app_from_environment",
            make_settings(trusted_proxies="10.0.0.5,10.1.0.0/16"),
            host="127.0.0.1",
            port=1,
        )
        assert behind.proxy_headers is True
        assert behind.forwarded_allow_ips == "10.0.0.5,10.1.0.0/16"
