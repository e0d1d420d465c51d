"""`paycore db backup` / `restore`: a database filled by the money path is backed up, restored into
a fresh database, and every row of every table is found there; the restored database verifies."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from paycore.app import create_app
from paycore.clock import utcnow
from paycore.db import Database, create_engine
from paycore.orders.expiry import expire_due_orders
from paycore.tables import metadata
from tests.backends import BACKENDS
from tests.cli.conftest import Cli
from tests.conftest import drop_database_url, make_settings, new_database_url
from tests.flows.helpers import buy, confirm, create_product, deliver, open_shop, order


async def fill(url: str) -> None:
    """Orders in every state the money path reaches — expired, pending, canceled, fulfilled,
    refunded — with their events, outbox rows and audit trail."""
    settings = make_settings(database_url=url)
    database = Database(create_engine(settings))
    try:
        app = create_app(settings, database=database)
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url=settings.public_url
        ) as client:
            shop = await open_shop(database)
            product = await create_product(client, shop, price=2500, stock=10)
            await buy(client, shop, product["id"])
            later = utcnow() + timedelta(minutes=settings.order_ttl_minutes + 1)
            assert (
                await expire_due_orders(database, now=later) >= 1
            )  # expired (and any earlier shop's unpaid)
            await buy(client, shop, product["id"])  # left unpaid
            canceled = await buy(client, shop, product["id"])
            response = await client.post(f"/v1/orders/{canceled['order']['id']}/cancel", headers=shop.secret)
            assert response.status_code == 200, response.text
            paid = await buy(client, shop, product["id"])
            refunded = await buy(client, shop, product["id"])
            for bought in (paid, refunded):
                await confirm(client, bought["payment"]["id"])
            await deliver(database, settings, client)
            response = await client.post(
                f"/v1/orders/{refunded['order']['id']}/refunds", json={}, headers=shop.secret
            )
            assert response.status_code == 201, response.text
            statuses = {
                (await order(client, shop, b["order"]["id"]))["status"] for b in (paid, refunded, canceled)
            }
            assert statuses == {"fulfilled", "refunded", "canceled"}
    finally:
        await database.dispose()


async def counts(url: str) -> dict[str, int]:
    database = Database(create_engine(make_settings(database_url=url)))
    try:
        async with database.session(write=False) as session:
            return {
                table.name: int(await session.scalar(select(func.count()).select_from(table)) or 0)
                for table in metadata.sorted_tables
            }
    finally:
        await database.dispose()


@pytest.mark.parametrize("fresh_database_url", BACKENDS, indirect=True)
def test_backup_then_restore_finds_every_row(cli: Cli, fresh_database_url: str, tmp_path: Path) -> None:
    cli("db", "migrate")
    asyncio.run(fill(fresh_database_url))
    before = asyncio.run(counts(fresh_database_url))
    assert before["orders"] == 5 and before["payment_events"] >= 2 and before["refunds"] == 1
    assert before["outbox"] > 0 and before["audit_log"] > 0

    output = cli("db", "backup", "--to", str(tmp_path / "backups"))
    (written,) = list((tmp_path / "backups").iterdir())
    assert str(written) in output.replace("\n", "")

    backend = "postgresql" if fresh_database_url.startswith("postgresql") else "sqlite"
    target = asyncio.run(new_database_url(backend, tmp_path / "restored"))
    try:
        cli("db", "restore", "--from", str(written), "--to", target)
        assert asyncio.run(counts(target)) == before
        assert "0 failed" in Cli(target, tmp_path)("db", "verify")
        refused = cli("db", "restore", "--from", str(written), "--to", target, expect=1)
        assert "already" in refused  # never over a database that holds data
    finally:
        asyncio.run(drop_database_url(target))
