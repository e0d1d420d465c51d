"""`paycore db verify`: green on a healthy database of either kind, red and exit 1 where a promise
does not hold, and nothing left behind by the checks."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import func, select, text

from paycore.db import Database, create_engine
from paycore.tenancy.models import Tenant
from paycore.worker.models import Lease
from tests.backends import BACKENDS
from tests.cli.conftest import Cli
from tests.conftest import make_settings


async def leftovers(url: str) -> tuple[int, int]:
    database = Database(create_engine(make_settings(database_url=url)))
    try:
        async with database.session(write=False) as session:
            tenants = await session.scalar(
                select(func.count()).select_from(Tenant).where(Tenant.slug.like("verify-%"))
            )
            leases = await session.scalar(
                select(func.count()).select_from(Lease).where(Lease.name.like("verify-%"))
            )
        return int(tenants or 0), int(leases or 0)
    finally:
        await database.dispose()


@pytest.mark.parametrize("fresh_database_url", BACKENDS, indirect=True)
def test_green_on_a_migrated_database_and_leaves_nothing(cli: Cli, fresh_database_url: str) -> None:
    cli("db", "migrate")
    output = cli("db", "verify")
    if fresh_database_url.startswith("postgresql"):
        assert "8 passed, 0 failed" in output
        assert "a locked row is skipped" in output and "live payments may run" in output
    else:
        assert "6 passed, 0 failed (2 not applicable)" in output
    assert "FAIL" not in output
    assert asyncio.run(leftovers(fresh_database_url)) == (0, 0)


@pytest.mark.parametrize("fresh_database_url", BACKENDS, indirect=True)
def test_an_unmigrated_database_fails_without_a_crash(cli: Cli) -> None:
    output = cli("db", "verify", expect=1)
    assert "FAIL" in output and "migrations at head" in output
    assert "failed" in output.splitlines()[-1]


@pytest.mark.parametrize("fresh_database_url", ["postgresql"], indirect=True)
def test_a_missing_unique_constraint_is_named(cli: Cli, fresh_database_url: str) -> None:
    cli("db", "migrate")

    async def drop() -> None:
        database = Database(create_engine(make_settings(database_url=fresh_database_url)))
        try:
            async with database.engine.begin() as connection:
                await connection.execute(
                    text(
                        "ALTER TABLE payment_events DROP CONSTRAINT "
                        "uq_payment_events_tenant_id_provider_provider_event_id"
                    )
                )
        finally:
            await database.dispose()

    asyncio.run(drop())
    output = cli("db", "verify", expect=1, env={"COLUMNS": "200"})  # one line per check
    assert "accepted a duplicate in payment_events" in output
