"""`paycore providers set paypal …` against a real database, then a PayPal checkout that uses it."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from paycore.config import Settings
from paycore.db import Database, create_engine
from tests.backends import BACKENDS
from tests.cli.conftest import Cli
from tests.flows.helpers import Shop, cart_with, checkout, create_product, open_shop, order
from tests.providers.paypal.conftest import paypal_settings
from tests.providers.paypal.fake import CLIENT_ID, CLIENT_SECRET, WEBHOOK_ID, FakePayPal
from tests.providers.support import HostRouter, api_client

pytestmark = pytest.mark.parametrize("fresh_database_url", BACKENDS, indirect=True)


async def new_shop(settings: Settings) -> Shop:
    database = Database(create_engine(settings))
    try:
        return await open_shop(database)
    finally:
        await database.dispose()


async def pay_with_paypal(settings: Settings, shop: Shop, router: HostRouter, fake: FakePayPal) -> None:
    database = Database(create_engine(settings))
    try:
        async with api_client(database, settings, router) as (client, _registry):
            product = await create_product(client, shop, price=1999)
            bought = await checkout(
                client, shop, await cart_with(client, shop, (product["id"], 1)), provider="paypal"
            )
            assert bought.status_code == 201, bought.text
            paypal_order = bought.json()["payment"]["client_data"]["paypal_order_id"]
            assert fake.orders[paypal_order]["purchase_units"][0]["amount"]["value"] == "19.99"
            fake.approve(paypal_order)
            fake.capture_elsewhere(paypal_order)
            body, headers = fake.signed(fake.capture_event("PAYMENT.CAPTURE.COMPLETED", paypal_order))
            delivered = await client.post(f"/webhooks/paypal/{shop.slug}", content=body, headers=headers)
            assert delivered.json()["result"] == "applied", (
                delivered.text
            )  # verified with the CLI's webhook id
            detail = await order(client, shop, bought.json()["order"]["id"])
            assert (detail["status"], detail["amount_paid"]) == ("fulfilled", 1999)
    finally:
        await database.dispose()


def test_set_paypal_with_the_cli_then_check_out(
    fresh_database_url: str, tmp_path: Path, router: HostRouter, fake: FakePayPal, trust_roots: str
) -> None:
    settings = paypal_settings(trust_roots, database_url=fresh_database_url)
    assert settings.checkout_token_secret is not None
    # The CLI seals with a key derived from the server secret: the same one the app opens with.
    cli = Cli(fresh_database_url, tmp_path)
    cli.env["PAYCORE_CHECKOUT_TOKEN_SECRET"] = settings.checkout_token_secret.get_secret_value()
    cli("db", "migrate")
    shop = asyncio.run(new_shop(settings))

    output = cli(
        "providers",
        "set",
        "paypal",
        "--tenant",
        shop.slug,
        "--mode",
        "test",
        "--credentials-file",
        "-",
        "--webhook-secret",
        WEBHOOK_ID,
        input=json.dumps({"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}),
    )
    assert f"client_id={CLIENT_ID}" in output
    assert CLIENT_SECRET not in output
    assert WEBHOOK_ID not in output
    assert f"/webhooks/paypal/{shop.slug}" in output

    refused = cli(
        "providers",
        "set",
        "paypal",
        "--tenant",
        shop.slug,
        "--mode",
        "live",
        "--credentials-file",
        "-",
        input=json.dumps({"client_id": CLIENT_ID, "client_secret": "short"}),
        expect=1,
    )
    assert "client_secret" in refused
    assert "short" not in refused

    asyncio.run(pay_with_paypal(settings, shop, router, fake))
