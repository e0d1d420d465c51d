from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from paycore.clock import utcnow
from paycore.db import Database, create_engine
from paycore.migrations import upgrade_to_head
from paycore.worker.leases import lease_expiry, release_lease, try_acquire_lease
from tests.backends import BACKENDS
from tests.conftest import make_settings

MINUTE = timedelta(minutes=1)


class TestLeaseRules:
    async def test_one_holder_at_a_time_until_expiry(self, db: Database) -> None:
        now = utcnow()
        async with db.session() as session:
            assert await try_acquire_lease(session, name="job:a", holder="w1", ttl=MINUTE, now=now)
            assert not await try_acquire_lease(session, name="job:a", holder="w2", ttl=MINUTE, now=now)
            assert await lease_expiry(session, name="job:a") == now + MINUTE
            # Its holder may renew; after expiry anyone may take it.
            assert await try_acquire_lease(session, name="job:a", holder="w1", ttl=MINUTE, now=now)
            later = now + MINUTE + timedelta(seconds=1)
            assert await try_acquire_lease(session, name="job:a", holder="w2", ttl=MINUTE, now=later)
            assert not await try_acquire_lease(session, name="job:a", holder="w1", ttl=MINUTE, now=later)

    async def test_release_frees_only_your_own_lease(self, db: Database) -> None:
        now = utcnow()
        async with db.session() as session:
            await try_acquire_lease(session, name="job:b", holder="w1", ttl=MINUTE, now=now)
            await release_lease(session, name="job:b", holder="w2")
            assert not await try_acquire_lease(session, name="job:b", holder="w2", ttl=MINUTE, now=now)
            await release_lease(session, name="job:b", holder="w1")
            assert await try_acquire_lease(session, name="job:b", holder="w2", ttl=MINUTE, now=now)


@pytest.mark.parametrize("fresh_database_url", BACKENDS, indirect=True)
class TestLeaseRace:
    async def test_many_processes_racing_get_one_winner(self, fresh_database_url: str) -> None:
        # Separate engines stand for separate processes: no shared asyncio lock between them.
        settings = make_settings(database_url=fresh_database_url)
        databases = [Database(create_engine(settings)) for _ in range(6)]
        await upgrade_to_head(databases[0].engine)
        now = utcnow()

        async def contend(index: int) -> bool:
            async with databases[index].session() as session:
                return await try_acquire_lease(
                    session, name="job:race", holder=f"w{index}", ttl=MINUTE, now=now
                )

        try:
            results = await asyncio.gather(*(contend(index) for index in range(len(databases))))
        finally:
            for database in databases:
                await database.dispose()
        assert sum(results) == 1
