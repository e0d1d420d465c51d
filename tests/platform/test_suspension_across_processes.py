"""Finding 14: a suspension made through one API process is enforced by every other process
within a second, not when that process's cached standing expires (600 s).

Two apps, each with its own engine and its own listener, as two `paycore serve` processes would
be: the first caches the tenant's standing, the platform suspends the tenant through the second,
and the first must refuse the tenant's next call."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import httpx
import pytest

from paycore.app import create_app
from paycore.audit.service import Actor
from paycore.db import Database, create_engine
from paycore.migrations import upgrade_to_head
from paycore.platform.service import create_platform_key
from tests.conftest import make_settings
from tests.flows.helpers import Shop, open_shop

# The promise: every process sees the change within a second.
DEADLINE_SECONDS = 1.0


@asynccontextmanager
async def api_process(**settings: Any) -> AsyncIterator[httpx.AsyncClient]:
    """One app with its own engine, started by its own lifespan, as one API process."""
    app = create_app(make_settings(**settings))
    async with app.router.lifespan_context(app):
        listening = getattr(app.state.invalidations, "listening", None)
        if listening is not None:
            await asyncio.wait_for(listening.wait(), timeout=10)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            yield client


async def seed(url: str) -> tuple[Shop, dict[str, str]]:
    engine = create_engine(make_settings(database_url=url))
    try:
        await upgrade_to_head(engine)
        database = Database(engine)
        shop = await open_shop(database)
        async with database.session() as session:
            created = await create_platform_key(session, name="ops", actor=Actor(name="test:platform"))
    finally:
        await engine.dispose()
    return shop, {"Authorization": f"Bearer {created.plaintext}"}


async def refused_within_deadline(client: httpx.AsyncClient, shop: Shop) -> httpx.Response:
    deadline = time.monotonic() + DEADLINE_SECONDS
    while True:
        response = await client.get("/v1/orders", headers=shop.secret)
        if response.status_code != 200 or time.monotonic() >= deadline:
            return response
        await asyncio.sleep(0.02)


async def suspend_through_one_and_probe_the_other(url: str, **settings: Any) -> None:
    shop, platform = await seed(url)
    async with AsyncExitStack() as stack:
        serving = await stack.enter_async_context(api_process(database_url=url, **settings))
        operating = await stack.enter_async_context(api_process(database_url=url, **settings))
        # The serving process has the tenant's standing (may sell) in its cache.
        assert (await serving.get("/v1/orders", headers=shop.secret)).status_code == 200

        suspended = await operating.post(f"/v1/platform/tenants/{shop.tenant_id}/suspend", headers=platform)
        assert (suspended.status_code, suspended.json()["may_sell"]) == (200, False)

        response = await refused_within_deadline(serving, shop)
        assert (response.status_code, response.json()["error"]["code"]) == (403, "tenant_suspended")

        reactivated = await operating.post(
            f"/v1/platform/tenants/{shop.tenant_id}/reactivate", headers=platform
        )
        assert reactivated.status_code == 200
        deadline = time.monotonic() + DEADLINE_SECONDS
        while (response := await serving.get("/v1/orders", headers=shop.secret)).status_code != 200:
            assert time.monotonic() < deadline, response.text
            await asyncio.sleep(0.02)


class TestSuspensionReachesEveryProcess:
    @pytest.mark.parametrize("fresh_database_url", ["postgresql"], indirect=True)
    async def test_over_postgresql_listen_notify(self, fresh_database_url: str) -> None:
        await suspend_through_one_and_probe_the_other(fresh_database_url)

    @pytest.mark.parametrize("fresh_database_url", ["sqlite", "postgresql"], indirect=True)
    async def test_over_redis_pub_sub(self, fresh_database_url: str, redis_url: str) -> None:
        await suspend_through_one_and_probe_the_other(fresh_database_url, redis_url=redis_url)
