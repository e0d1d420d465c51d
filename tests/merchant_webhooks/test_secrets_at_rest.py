"""A webhook endpoint's `whsec_…` secrets are sealed at rest and opened only to sign a delivery
(issue 11, finding 11). The rows are read with SQL, as someone holding a copy of the database
would read them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from paycore.app import create_app
from paycore.config import Settings
from paycore.db import Database
from paycore.merchant_webhooks.sealing import reseal_endpoints
from paycore.sealing import secrets_box
from paycore.secrets_box import new_key_line
from tests.conftest import make_settings
from tests.flows.helpers import Shop, open_shop
from tests.merchant_webhooks.test_webhook_delivery import Receiver, add_endpoint, drain, paid_order, worker

PRODUCTION_SECRET = "k3J9qL0vX2mN8pR4tY6wZ1aB5cD7eF9gH0iJ"


@pytest.fixture
async def shop(db: Database) -> Shop:
    return await open_shop(db)


async def stored_secrets(db: Database, endpoint_id: str) -> Any:
    async with db.session(write=False) as session:
        return (
            await session.execute(
                text("SELECT secret, previous_secret FROM webhook_endpoints WHERE id = :id"),
                {"id": endpoint_id},
            )
        ).one()


async def sealed_under(db: Database, endpoint_id: str) -> str | None:
    async with db.session(write=False) as session:
        kid: str | None = await session.scalar(
            text("SELECT secrets_key_id FROM webhook_endpoints WHERE id = :id"), {"id": endpoint_id}
        )
    return kid


async def rotate(client: httpx.AsyncClient, shop: Shop, endpoint_id: str) -> dict[str, Any]:
    response = await client.post(
        f"/v1/webhook_endpoints/{endpoint_id}/rotate_secret",
        json={"previous_secret_valid_hours": 24},
        headers=shop.secret,
    )
    assert response.status_code == 200, response.text
    rotated: dict[str, Any] = response.json()
    return rotated


@pytest.fixture
async def app_with(db: Database) -> AsyncIterator[Any]:
    clients: list[httpx.AsyncClient] = []

    def make(settings: Settings) -> httpx.AsyncClient:
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=create_app(settings, database=db)),
            base_url="http://paycore.test",
        )
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.aclose()


class TestSealedAtRest:
    async def test_the_endpoint_row_holds_no_secret_and_deliveries_are_still_signed(
        self, db: Database, settings: Settings, client: httpx.AsyncClient, shop: Shop
    ) -> None:
        endpoint = await add_endpoint(client, shop, events=["order.paid"])
        rotated = await rotate(client, shop, endpoint["id"])

        row = await stored_secrets(db, endpoint["id"])
        for value in (row.secret, row.previous_secret):
            assert "whsec_" not in value
            for shown in (endpoint["secret"], rotated["secret"]):
                assert shown.removeprefix("whsec_") not in value
        assert await sealed_under(db, endpoint["id"]) == "dev"

        receiver = Receiver(secrets=[endpoint["secret"], rotated["secret"]])
        await paid_order(db, settings, client, shop)
        await drain(worker(db, settings, receiver))
        (delivery,) = receiver.received
        assert delivery["verified_with"] == [endpoint["secret"], rotated["secret"]]

    async def test_a_sealed_secret_copied_to_another_endpoint_signs_nothing(
        self, db: Database, settings: Settings, client: httpx.AsyncClient, shop: Shop
    ) -> None:
        mine = await add_endpoint(client, shop, events=["order.paid"])
        other = await add_endpoint(client, shop, events=["order.paid"], url="https://other.example/hooks")
        async with db.session() as session:
            await session.execute(
                text(
                    "UPDATE webhook_endpoints SET secret = (SELECT secret FROM webhook_endpoints WHERE id = :a) WHERE id = :b"
                ),
                {"a": mine["id"], "b": other["id"]},
            )
        receiver = Receiver(secrets=[mine["secret"]])
        await paid_order(db, settings, client, shop)
        await drain(worker(db, settings, receiver))
        # Never sent unsigned or signed with a secret that is not its own: not sent at all.
        assert [d["url"] for d in receiver.received] == ["https://merchant.example/hooks"]
        attempts = (
            await client.get(f"/v1/webhook_endpoints/{other['id']}/attempts", headers=shop.secret)
        ).json()
        assert [(a["succeeded"], a["error"]) for a in attempts["data"]] == [
            (False, "signing secret unreadable")
        ]

    async def test_production_without_a_secrets_key_refuses_to_create_one(
        self, db: Database, shop: Shop, app_with: Any
    ) -> None:
        production = make_settings(
            env="production",
            checkout_token_secret=PRODUCTION_SECRET,
            database_url=db.engine.url.render_as_string(hide_password=False),
        )
        api = app_with(production)
        response = await api.post(
            "/v1/webhook_endpoints", json={"url": "https://merchant.example/hooks"}, headers=shop.secret
        )
        assert (response.status_code, response.json()["error"]["code"]) == (503, "secrets_key_missing")
        assert "whsec_" not in response.text
        async with db.session(write=False) as session:
            count = await session.scalar(
                text("SELECT count(*) FROM webhook_endpoints WHERE tenant_id = :t"), {"t": shop.tenant_id}
            )
        assert count == 0


class TestReseal:
    async def test_an_endpoint_stored_before_sealing_signs_then_is_sealed_by_reseal(
        self, db: Database, settings: Settings, client: httpx.AsyncClient, shop: Shop
    ) -> None:
        endpoint = await add_endpoint(client, shop, events=["order.paid"])
        async with db.session() as session:  # the row as revisions before 0012 wrote it
            await session.execute(
                text("UPDATE webhook_endpoints SET secret = :s, secrets_key_id = NULL WHERE id = :id"),
                {"s": endpoint["secret"], "id": endpoint["id"]},
            )
        receiver = Receiver(secrets=[endpoint["secret"]])
        await paid_order(db, settings, client, shop)
        await drain(worker(db, settings, receiver))
        assert [d["verified_with"] for d in receiver.received] == [[endpoint["secret"]]]

        async with db.session() as session:
            assert await reseal_endpoints(session, secrets_box(settings)) == 1
            assert await reseal_endpoints(session, secrets_box(settings)) == 0
        row = await stored_secrets(db, endpoint["id"])
        assert (await sealed_under(db, endpoint["id"]), "whsec_" in row.secret) == ("dev", False)
        rotated = await rotate(client, shop, endpoint["id"])
        assert rotated["secret"] != endpoint["secret"]

    async def test_secrets_sealed_under_an_old_key_sign_after_rotation_and_reseal(
        self, db: Database, shop: Shop, app_with: Any
    ) -> None:
        base = db.engine.url.render_as_string(hide_password=False)
        old_key, new_key = new_key_line("old"), new_key_line("new")
        before = make_settings(database_url=base, secrets_key=old_key)
        created = await app_with(before).post(
            "/v1/webhook_endpoints",
            json={"url": "https://merchant.example/hooks", "events": ["order.paid"]},
            headers=shop.secret,
        )
        secret = created.json()["secret"]

        async with db.session() as session:
            rotated = make_settings(database_url=base, secrets_key=f"{new_key},{old_key}")
            assert await reseal_endpoints(session, secrets_box(rotated)) == 1
        only_new = make_settings(database_url=base, secrets_key=new_key)
        assert await sealed_under(db, created.json()["id"]) == "new"
        receiver = Receiver(secrets=[secret])
        await paid_order(db, only_new, app_with(only_new), shop)
        await drain(worker(db, only_new, receiver))
        assert [d["verified_with"] for d in receiver.received] == [[secret]]
