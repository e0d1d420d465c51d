"""`paycore providers set razorpay …` against a real database, then a checkout that uses it."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from paycore.db import Database, create_engine
from tests.backends import BACKENDS
from tests.cli.conftest import Cli
from tests.conftest import make_settings
from tests.flows.helpers import Shop, cart_with, checkout, create_product
from tests.providers.razorpay.fake import HOST, FakeRazorpay
from tests.providers.support import HostRouter, api_client

pytestmark = pytest.mark.parametrize("fresh_database_url", BACKENDS, indirect=True)


@pytest.fixture
def cli(fresh_database_url: str, tmp_path: Path) -> Cli:
    return Cli(fresh_database_url, tmp_path)


async def checkout_with_razorpay(database_url: str, shop: Shop, fake: FakeRazorpay) -> dict[str, object]:
    settings = make_settings(database_url=database_url)
    database = Database(create_engine(settings))
    try:
        async with api_client(database, settings, HostRouter({HOST: fake.app})) as (http, _):
            product = await create_product(http, shop, price=49900, currency="INR")
            response = await checkout(
                http, shop, await cart_with(http, shop, (product["id"], 1)), provider="razorpay"
            )
            assert response.status_code == 201, response.text
            client_data: dict[str, object] = response.json()["payment"]["client_data"]
            return client_data
    finally:
        await database.dispose()


def test_cli_set_then_checkout(cli: Cli, fresh_database_url: str) -> None:
    # The app in this test reads what the CLI sealed: both derive the key from the same secret.
    env = {"PAYCORE_CHECKOUT_TOKEN_SECRET": make_settings().checkout_token_secret.get_secret_value()}  # type: ignore[union-attr]
    fake = FakeRazorpay()
    cli("db", "migrate")
    cli("tenants", "create", "--slug", "rzp-cli", "--name", "Razorpay CLI")
    secret = cli.json("keys", "create", "--tenant", "rzp-cli", "--mode", "test", "--kind", "secret")
    publishable = cli.json("keys", "create", "--tenant", "rzp-cli", "--mode", "test", "--kind", "publishable")

    credentials = json.dumps({"key_id": fake.key_id, "key_secret": fake.key_secret})
    output = cli(
        "providers",
        "set",
        "razorpay",
        "--tenant",
        "rzp-cli",
        "--mode",
        "test",
        "--credentials-file",
        "-",
        "--webhook-secret",
        "whsec_rzp_cli_0123456789",
        "--json",
        input=credentials,
        env=env,
    )
    shown = json.loads([line for line in output.splitlines() if line.startswith("{")][-1])
    assert shown["credentials"]["key_id"] == fake.key_id
    assert fake.key_secret not in output
    assert "0123456789" not in output
    assert shown["webhook_url"].endswith("/webhooks/razorpay/rzp-cli")

    refused = cli(
        "providers", "set", "razorpay", "--tenant", "rzp-cli", "--mode", "test",
        "--credential", "key_id=rzp_live_WrongMode01", "--credential", "key_secret=whatever_secret",
        expect=1, env=env,
    )  # fmt: skip
    assert "rzp_test_" in refused
    assert "WrongMode01" not in refused

    shop = Shop(
        tenant_id="",
        slug="rzp-cli",
        secret={"Authorization": f"Bearer {secret['key']}"},
        publishable={"Authorization": f"Bearer {publishable['key']}"},
    )
    client_data = asyncio.run(checkout_with_razorpay(fresh_database_url, shop, fake))
    assert client_data["key_id"] == fake.key_id
    (order,) = fake.orders.values()
    assert client_data["razorpay_order_id"] == order["id"]
    assert (order["amount"], order["currency"]) == (49900, "INR")
