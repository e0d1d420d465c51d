"""Rate limits by class of caller: 429 with Retry-After past the limit, buckets kept apart, shared
across processes through Redis, and a limiter whose storage is down lets requests through."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from paycore.app import create_app
from paycore.db import Database
from paycore.serving import uvicorn_config
from tests.conftest import make_settings
from tests.flows.helpers import Shop, open_shop


def limited_app(db: Database, **overrides: Any) -> FastAPI:
    settings = make_settings(
        database_url=db.engine.url.render_as_string(hide_password=False),
        rate_limit_enabled=True,
        **overrides,
    )
    return create_app(settings, database=db)


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


class TestInMemory:
    async def test_past_the_limit_is_429_with_retry_after(self, db: Database, shop: Shop) -> None:
        app = limited_app(db, rate_limit_merchant_api="3/minute")
        async with client_for(app) as http:
            statuses = [(await http.get("/v1/tenant", headers=shop.secret)).status_code for _ in range(4)]
            refused = await http.get("/v1/tenant", headers=shop.secret)
        assert statuses == [200, 200, 200, 429]
        assert refused.json()["error"]["code"] == "rate_limited"
        assert refused.json()["error"]["type"] == "rate_limit_error"
        assert 1 <= int(refused.headers["retry-after"]) <= 60
        assert refused.headers["x-request-id"]

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

    async def test_webhooks_count_per_provider_and_health_is_never_limited(self, db: Database) -> None:
        app = limited_app(db, rate_limit_webhooks="2/minute", rate_limit_storefront="1/minute")
        async with client_for(app) as http:
            codes = [
                (await http.post("/webhooks/sandbox/nobody", content=b"{}")).status_code for _ in range(3)
            ]
            assert codes[:2] != [429, 429] and codes[2] == 429
            assert (await http.post("/webhooks/stripe/nobody", content=b"{}")).status_code != 429
            assert {(await http.get("/health")).status_code for _ in range(5)} == {200}


class TestRedis:
    async def test_two_processes_share_one_limit(self, db: Database, shop: Shop, redis_url: str) -> None:
        # Each test's shop has a new key, so earlier runs' counts in Redis are someone else's.
        first_app = limited_app(db, rate_limit_merchant_api="4/minute", redis_url=redis_url)
        second_app = limited_app(db, rate_limit_merchant_api="4/minute", redis_url=redis_url)
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
