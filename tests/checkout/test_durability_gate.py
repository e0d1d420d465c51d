"""Live money only on a durable database: the gate in front of every live-mode checkout."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from paycore.app import create_app
from paycore.auth.models import KeyKind, KeyMode
from paycore.checkout.durability import require_durable_database
from paycore.db import Database, create_engine
from paycore.errors import ServiceUnavailable
from paycore.migrations import all_revisions, head_revision, upgrade_to_head
from paycore.orders.models import Order
from tests.backends import POSTGRES_ADMIN_URL
from tests.conftest import make_settings
from tests.factories import make_api_key, make_tenant
from tests.flows.helpers import Shop, cart_with, checkout, create_product


async def live_storefront(db: Database) -> dict[str, str]:
    async with db.session() as session:
        tenant = await make_tenant(session)
        key = await make_api_key(session, tenant=tenant, kind=KeyKind.PUBLISHABLE, mode=KeyMode.LIVE)
    return {"Authorization": f"Bearer {key.plaintext}"}


class TestDurabilityGate:
    async def test_gate_is_closed_on_sqlite_and_open_on_postgresql(self, db: Database) -> None:
        if db.dialect_name == "sqlite":
            with pytest.raises(ServiceUnavailable) as closed:
                await require_durable_database(db)
            assert closed.value.code == "live_payments_unavailable"
            assert "PostgreSQL" in closed.value.message
        else:
            await require_durable_database(db)  # at head and answering: open

    async def test_live_checkout_is_refused_before_anything_is_written(
        self, db: Database, client: httpx.AsyncClient
    ) -> None:
        headers = await live_storefront(db)
        response = await client.post(
            "/v1/checkout",
            json={"cart_id": "cart_missing", "customer": {"email": "live@example.com"}},
            headers=headers,
        )
        error = response.json()["error"]
        if db.dialect_name == "sqlite":
            assert (response.status_code, error["code"]) == (503, "live_payments_unavailable")
        else:
            # The gate is open on PostgreSQL, and the sandbox takes no live money.
            assert (response.status_code, error["code"]) == (400, "provider_test_mode_only")


async def admin_execute(*statements: str) -> None:
    admin = create_async_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as connection:
            for statement in statements:
                await connection.execute(text(statement))
    finally:
        await admin.dispose()


async def live_shop(database: Database) -> Shop:
    async with database.session() as session:
        tenant = await make_tenant(session)
        secret = await make_api_key(session, tenant=tenant, mode=KeyMode.LIVE)
        publishable = await make_api_key(session, tenant=tenant, kind=KeyKind.PUBLISHABLE, mode=KeyMode.LIVE)
    return Shop(
        tenant_id=tenant.id,
        slug=tenant.slug,
        secret={"Authorization": f"Bearer {secret.plaintext}"},
        publishable={"Authorization": f"Bearer {publishable.plaintext}"},
    )


async def orders_of(database: Database, tenant_id: str) -> int:
    async with database.session(write=False) as session:
        return int(await session.scalar(select(func.count()).where(Order.tenant_id == tenant_id)) or 0)


@pytest.mark.parametrize("fresh_database_url", ["postgresql"], indirect=True)
class TestGatePerCheckoutOnPostgreSQL:
    """Finding 17: the gate is decided at each live checkout on a real PostgreSQL database — it
    closes the moment the schema is behind or the probe fails, before any order exists, and
    opens again when that is mended, without a restart."""

    async def test_a_pending_migration_or_a_failing_probe_closes_it_and_mending_reopens_it(
        self, fresh_database_url: str
    ) -> None:
        settings = make_settings(database_url=fresh_database_url)
        database = Database(create_engine(settings))
        try:
            await upgrade_to_head(database.engine)
            shop = await live_shop(database)
            app = create_app(settings, database=database)
            async with httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://t"
            ) as client:
                product = await create_product(client, shop, price=1500)
                cart_id = await cart_with(client, shop, (product["id"], 1))

                async def live_checkout() -> tuple[int, str]:
                    response = await checkout(client, shop, cart_id)
                    return response.status_code, response.json()["error"]["code"]

                # Open: the request gets past the gate to the provider (the sandbox takes no live money).
                open_gate = (400, "provider_test_mode_only")
                assert await live_checkout() == open_gate

                previous = all_revisions()[-2]
                async with database.engine.begin() as connection:  # a deploy that has not migrated yet
                    await connection.execute(
                        text("UPDATE alembic_version SET version_num = :v"), {"v": previous}
                    )
                assert await live_checkout() == (503, "live_payments_unavailable")
                async with database.engine.begin() as connection:
                    await connection.execute(
                        text("UPDATE alembic_version SET version_num = :v"), {"v": head_revision()}
                    )
                assert await live_checkout() == open_gate

                # Two versions at once: Alembic cannot say where the schema is, so the probe fails.
                async with database.engine.begin() as connection:
                    await connection.execute(text("INSERT INTO alembic_version VALUES ('9999_unknown')"))
                assert await live_checkout() == (503, "live_payments_unavailable")
                async with database.engine.begin() as connection:
                    await connection.execute(
                        text("DELETE FROM alembic_version WHERE version_num = '9999_unknown'")
                    )
                assert await live_checkout() == open_gate

                assert await orders_of(database, shop.tenant_id) == 0
        finally:
            await database.dispose()

    async def test_a_database_that_stops_answering_closes_it_and_its_return_reopens_it(
        self, fresh_database_url: str
    ) -> None:
        name = make_url(fresh_database_url).database
        database = Database(create_engine(make_settings(database_url=fresh_database_url)))
        try:
            await upgrade_to_head(database.engine)
            await require_durable_database(database)  # open
            await admin_execute(
                f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'",
                f'ALTER DATABASE "{name}" RENAME TO "{name}_down"',
            )
            try:
                for _ in range(2):  # the pooled connection that died, then a new one that finds nothing
                    with pytest.raises(ServiceUnavailable) as closed:
                        await require_durable_database(database)
                    assert closed.value.code == "live_payments_unavailable"
            finally:
                await admin_execute(f'ALTER DATABASE "{name}_down" RENAME TO "{name}"')
            await require_durable_database(database)  # open again, no restart
        finally:
            await database.dispose()
