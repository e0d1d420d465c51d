"""`paycore providers set midtrans …` against a real (committed) database, then a Midtrans
checkout on that database with the keys the CLI stored."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from paycore.app import create_app
from paycore.db import Database, create_engine
from paycore.payments.providers.registry import breakers_for, build_registry
from tests.backends import BACKENDS
from tests.cli.conftest import Cli
from tests.conftest import make_settings
from tests.flows.helpers import Shop, create_product
from tests.providers.midtrans.fake import CLIENT_KEY, SERVER_KEY, FakeMidtrans

pytestmark = pytest.mark.parametrize("fresh_database_url", BACKENDS, indirect=True)

# The CLI and the app must open the same sealed credentials: both derive the key from this.
SERVER_SECRET = make_settings().checkout_token_secret


@pytest.fixture
def cli(fresh_database_url: str, tmp_path: Path) -> Cli:
    return Cli(fresh_database_url, tmp_path)


def keys(cli: Cli, kind: str) -> dict[str, str]:
    created = cli.json("keys", "create", "--tenant", "cli-shop", "--mode", "test", "--kind", kind)
    return {"Authorization": f"Bearer {created['key']}"}


async def checkout_with_midtrans(database_url: str, shop: Shop, fake: FakeMidtrans) -> dict[str, Any]:
    settings = make_settings(database_url=database_url)
    database = Database(create_engine(settings))
    app = create_app(settings, database=database)
    registry = build_registry(settings, database, breakers_for(settings), http_transport=fake.transport())
    app.state.providers = registry
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://paycore.test"
        ) as client:
            product = await create_product(client, shop, price=9_900_000, currency="IDR")
            cart = await client.post(
                "/v1/carts",
                json={"items": [{"product_id": product["id"], "quantity": 1}]},
                headers=shop.publishable,
            )
            response = await client.post(
                "/v1/checkout",
                json={
                    "cart_id": cart.json()["id"],
                    "customer": {"email": "ada@example.com"},
                    "provider": "midtrans",
                },
                headers=shop.publishable,
            )
            assert response.status_code == 201, response.text
            body: dict[str, Any] = response.json()
            return body
    finally:
        await registry.aclose()
        await database.dispose()


class TestProvidersSetMidtrans:
    def test_keys_from_stdin_then_a_checkout_uses_them(self, cli: Cli, fresh_database_url: str) -> None:
        assert SERVER_SECRET is not None
        cli.env["PAYCORE_CHECKOUT_TOKEN_SECRET"] = SERVER_SECRET.get_secret_value()
        cli("db", "migrate")
        tenant = cli.json("tenants", "create", "--slug", "cli-shop", "--name", "CLI Shop")
        shop = Shop(
            tenant_id=str(tenant["id"]),
            slug="cli-shop",
            secret=keys(cli, "secret"),
            publishable=keys(cli, "publishable"),
        )

        output = cli(
            "providers",
            "set",
            "midtrans",
            "--tenant",
            "cli-shop",
            "--mode",
            "test",
            "--credentials-file",
            "-",
            "--json",
            input=json.dumps({"server_key": SERVER_KEY, "client_key": CLIENT_KEY}),
        )

        shown = json.loads([line for line in output.splitlines() if line.startswith("{")][-1])
        assert shown["credentials"] == {"server_key": "…TEST", "client_key": CLIENT_KEY}
        assert shown["webhook_url"] == "http://127.0.0.1:8000/webhooks/midtrans/cli-shop"
        fake = FakeMidtrans()
        bought = asyncio.run(checkout_with_midtrans(fresh_database_url, shop, fake))
        transaction = fake.transactions[bought["payment"]["id"]]
        assert bought["payment"]["client_data"] == {"snap_token": transaction.token, "client_key": CLIENT_KEY}
        assert transaction.gross_amount == 99_000

    def test_a_production_key_in_test_mode_is_refused_without_echoing_it(self, cli: Cli) -> None:
        cli("db", "migrate")
        cli("tenants", "create", "--slug", "cli-shop", "--name", "CLI Shop")
        output = cli(
            "providers",
            "set",
            "midtrans",
            "--tenant",
            "cli-shop",
            "--mode",
            "test",
            "--credentials-file",
            "-",
            input=json.dumps({"server_key": "Mid-server-SECRETLIVE", "client_key": CLIENT_KEY}),
            expect=1,
        )
        assert "credentials.server_key" in output
        assert "SECRETLIVE" not in output
