"""A key revoked by another process (`paycore keys revoke`) is refused by a serving process that
has it cached within a second, not when its cache entry expires."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from sqlalchemy import select

from paycore.auth.models import ApiKey, KeyKind
from paycore.auth.service import revoke_api_key
from paycore.db import Database, create_engine
from paycore.invalidation import CacheKind, publish_from_outside
from paycore.migrations import upgrade_to_head
from paycore.tenancy.service import get_tenant_by_slug
from tests.conftest import make_settings
from tests.factories import TEST_ACTOR
from tests.flows.helpers import open_shop
from tests.platform.test_suspension_across_processes import DEADLINE_SECONDS, api_process


async def revoke_and_refuse_within(url: str, seconds: float, **settings: Any) -> None:
    configured = make_settings(database_url=url, **settings)
    engine = create_engine(configured)
    try:
        await upgrade_to_head(engine)
        database = Database(engine)
        shop = await open_shop(database)
        async with api_process(database_url=url, **settings) as serving:
            # Cached by the serving process, trusted for a minute while its listener is up.
            assert (await serving.get("/v1/orders", headers=shop.secret)).status_code == 200
            assert (await serving.get("/v1/orders", headers=shop.secret)).status_code == 200

            # What `paycore keys revoke` does, from a process of its own.
            async with database.session() as session:
                tenant = await get_tenant_by_slug(session, shop.slug)
                key_id = await session.scalar(
                    select(ApiKey.id).where(ApiKey.tenant_id == tenant.id, ApiKey.kind == KeyKind.SECRET)
                )
                assert key_id is not None
                await revoke_api_key(session, tenant_id=tenant.id, key_id=key_id, actor=TEST_ACTOR)
            await publish_from_outside(configured, database, CacheKind.API_KEY, key_id)

            deadline = time.monotonic() + seconds
            while (response := await serving.get("/v1/orders", headers=shop.secret)).status_code == 200:
                assert time.monotonic() < deadline, f"a revoked key was still served after {seconds} s"
                await asyncio.sleep(0.02)
            assert (response.status_code, response.json()["error"]["code"]) == (401, "api_key_revoked")
    finally:
        await engine.dispose()


class TestRevocationReachesEveryProcess:
    @pytest.mark.parametrize("fresh_database_url", ["postgresql"], indirect=True)
    async def test_over_postgresql_listen_notify(self, fresh_database_url: str) -> None:
        await revoke_and_refuse_within(fresh_database_url, DEADLINE_SECONDS)

    @pytest.mark.parametrize("fresh_database_url", ["sqlite", "postgresql"], indirect=True)
    async def test_over_redis_pub_sub(self, fresh_database_url: str, redis_url: str) -> None:
        await revoke_and_refuse_within(fresh_database_url, DEADLINE_SECONDS, redis_url=redis_url)

    @pytest.mark.parametrize("fresh_database_url", ["sqlite"], indirect=True)
    async def test_without_a_shared_channel_within_the_unconfirmed_bound(
        self, fresh_database_url: str
    ) -> None:
        """SQLite without Redis: nobody can tell the server; it trusts a key only 1 s."""
        await revoke_and_refuse_within(fresh_database_url, 1.0 + 0.5, cache_unconfirmed_seconds=1.0)
