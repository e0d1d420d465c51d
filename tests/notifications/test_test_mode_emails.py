"""A free test order is no email relay: test-mode customer emails reach only addresses the shop
vouches for (its console users, its verified test recipients); the rest are written, suppressed
and shown to the merchant. Names that reach an email carry no control or formatting characters."""

from __future__ import annotations

import asyncio
from email.message import Message

import httpx
import pytest

from paycore.auth.service import create_owner
from paycore.db import Database
from paycore.outbox.channels.email import EmailChannel
from paycore.outbox.dispatch import OutboxDispatcher
from paycore.outbox.models import OutboxChannel
from paycore.tenancy.models import Tenant
from tests.conftest import make_settings
from tests.factories import TEST_ACTOR
from tests.flows.helpers import (
    Shop,
    cart_with,
    confirm,
    create_product,
    deliver,
    open_shop,
    verify_test_recipient,
)


async def pay_in_test_mode_and_run_the_worker(
    db: Database, client: httpx.AsyncClient, shop: Shop, smtp_port: int, *, email: str, name: str = "Ada"
) -> dict[str, object]:
    """What the probe did: pk_test checkout, pay on the sandbox page, one worker batch."""
    product = await create_product(client, shop)
    cart_id = await cart_with(client, shop, (product["id"], 1))
    response = await client.post(
        "/v1/checkout",
        json={"cart_id": cart_id, "customer": {"email": email, "name": name}},
        headers=shop.publishable,
    )
    assert response.status_code == 201, response.text
    bought: dict[str, object] = response.json()
    payment = bought["payment"]
    assert isinstance(payment, dict)
    assert (await confirm(client, payment["id"])).status_code == 200
    settings = make_settings(
        database_url=db.engine.url.render_as_string(hide_password=False),
        smtp_host="127.0.0.1",
        smtp_port=smtp_port,
        smtp_security="none",
    )
    await deliver(db, make_settings(database_url=settings.database_url), client)
    channels = {OutboxChannel.EMAIL: EmailChannel(settings, db)}
    await OutboxDispatcher(db, channels, settings, worker_id="w").process_batch(asyncio.Event())
    return bought


class TestTestModeRecipients:
    async def test_a_strangers_address_gets_nothing_and_the_merchant_sees_why(
        self, db: Database, client: httpx.AsyncClient, smtp_server: tuple[int, list[Message]]
    ) -> None:
        port, received = smtp_server
        shop = await open_shop(db)
        await pay_in_test_mode_and_run_the_worker(
            db, client, shop, port, email="victim@elsewhere.example", name="Click evil.example now " * 4
        )
        assert received == []
        emails = await client.get("/v1/emails", params={"status": "suppressed"}, headers=shop.secret)
        assert emails.status_code == 200, emails.text
        (email,) = emails.json()["data"]
        assert (email["to"], email["template"], email["status"]) == (
            "victim@elsewhere.example",
            "order_paid",
            "suppressed",
        )
        assert "verified test recipients" in email["detail"]
        assert email["sent_at"] is None

    async def test_a_verified_test_recipient_gets_the_email(
        self, db: Database, client: httpx.AsyncClient, smtp_server: tuple[int, list[Message]]
    ) -> None:
        port, received = smtp_server
        shop = await open_shop(db)
        await verify_test_recipient(client, shop, "QA@Shop.example")
        await pay_in_test_mode_and_run_the_worker(db, client, shop, port, email="qa@shop.example")
        (mail,) = received
        assert mail["To"] == "qa@shop.example"
        emails = await client.get("/v1/emails", headers=shop.secret)
        assert [email["status"] for email in emails.json()["data"]] == ["sent"]

    async def test_a_console_users_address_gets_the_email(
        self, db: Database, client: httpx.AsyncClient, smtp_server: tuple[int, list[Message]]
    ) -> None:
        port, received = smtp_server
        shop = await open_shop(db)
        async with db.session() as session:
            tenant = await session.get(Tenant, shop.tenant_id)
            assert tenant is not None
            await create_owner(
                session,
                tenant=tenant,
                email="owner@shop.example",
                password="violet-orbit-tundra-42",
                actor=TEST_ACTOR,
            )
        await pay_in_test_mode_and_run_the_worker(db, client, shop, port, email="owner@shop.example")
        assert [mail["To"] for mail in received] == ["owner@shop.example"]

    async def test_recipients_are_listed_refused_twice_and_removed_per_tenant(
        self, db: Database, client: httpx.AsyncClient
    ) -> None:
        shop, other = await open_shop(db), await open_shop(db)
        added = await client.post(
            "/v1/test_email_recipients", json={"email": "qa@shop.example"}, headers=shop.secret
        )
        assert added.status_code == 201
        again = await client.post(
            "/v1/test_email_recipients", json={"email": "QA@shop.example"}, headers=shop.secret
        )
        assert (again.status_code, again.json()["error"]["code"]) == (409, "test_recipient_exists")
        theirs = await client.get("/v1/test_email_recipients", headers=other.secret)
        assert theirs.json()["data"] == []
        stolen = await client.delete(f"/v1/test_email_recipients/{added.json()['id']}", headers=other.secret)
        assert stolen.status_code == 404
        removed = await client.delete(f"/v1/test_email_recipients/{added.json()['id']}", headers=shop.secret)
        assert removed.status_code == 200
        listed = await client.get("/v1/test_email_recipients", headers=shop.secret)
        assert listed.json()["data"] == []

    async def test_the_storefront_key_cannot_add_a_recipient(
        self, db: Database, client: httpx.AsyncClient
    ) -> None:
        shop = await open_shop(db)
        response = await client.post(
            "/v1/test_email_recipients", json={"email": "me@attacker.example"}, headers=shop.publishable
        )
        assert response.status_code in (401, 403)


class TestNamesThatReachEmails:
    @pytest.mark.parametrize("name", ["Ada\x07", "Ada \u202egnp.exe", "Ada\u2028Line", "x" * 101])
    async def test_a_customer_name_with_hidden_characters_or_too_long_is_422(
        self, db: Database, client: httpx.AsyncClient, name: str
    ) -> None:
        shop = await open_shop(db)
        product = await create_product(client, shop)
        cart_id = await cart_with(client, shop, (product["id"], 1))
        response = await client.post(
            "/v1/checkout",
            json={"cart_id": cart_id, "customer": {"email": "ada@example.com", "name": name}},
            headers=shop.publishable,
        )
        assert response.status_code == 422, response.text
        error = response.json()["error"]
        assert (error["code"], error["param"]) == ("validation_error", "customer.name")

    async def test_names_of_every_script_still_pass(self, db: Database, client: httpx.AsyncClient) -> None:
        shop = await open_shop(db)
        product = await create_product(client, shop)
        cart_id = await cart_with(client, shop, (product["id"], 1))
        response = await client.post(
            "/v1/checkout",
            # Persian needs the zero-width non-joiner; Arabic, Han and accents are ordinary letters.
            json={
                "cart_id": cart_id,
                "customer": {"email": "ada@example.com", "name": "مهسا\u200cرضایی 李 Zoë"},
            },
            headers=shop.publishable,
        )
        assert response.status_code == 201, response.text

    async def test_a_product_name_with_a_direction_override_is_422(
        self, db: Database, client: httpx.AsyncClient
    ) -> None:
        shop = await open_shop(db)
        response = await client.post(
            "/v1/products",
            json={"name": "Gift\u202eexe.card", "price": 100, "currency": "EUR", "kind": "physical"},
            headers=shop.secret,
        )
        assert response.status_code == 422
        assert response.json()["error"]["param"] == "name"
