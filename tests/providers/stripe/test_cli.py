"""`paycore providers set stripe …` against a real database, then a checkout that uses those keys."""

from __future__ import annotations

import asyncio
import json

import pytest

from paycore.db import Database, create_engine
from tests.backends import BACKENDS
from tests.cli.conftest import Cli, cli  # noqa: F401 (the fixture)
from tests.conftest import make_settings
from tests.flows.helpers import Shop, open_shop
from tests.providers.stripe.conftest import CREDENTIALS, PUBLISHABLE_KEY, SECRET_KEY, WEBHOOK_SECRET
from tests.providers.stripe.fake import FakeStripe
from tests.providers.stripe.flows import intent_of, post_event, start_checkout
from tests.providers.support import HostRouter, api_client

pytestmark = pytest.mark.parametrize("fresh_database_url", BACKENDS, indirect=True)

# The CLI and the app must derive the same sealing key: give both the same server secret.
SERVER_SECRET = make_settings().checkout_token_secret


def on_database(url: str, work: object) -> object:
    async def run() -> object:
        database = Database(create_engine(make_settings(database_url=url)))
        try:
            return await work(database)  # type: ignore[operator]
        finally:
            await database.dispose()

    return asyncio.run(run())


def test_set_with_the_cli_then_pay_through_stripe(cli: Cli, fresh_database_url: str) -> None:  # noqa: F811
    assert SERVER_SECRET is not None
    env = {"PAYCORE_CHECKOUT_TOKEN_SECRET": SERVER_SECRET.get_secret_value()}
    cli("db", "migrate", env=env)
    shop = on_database(fresh_database_url, open_shop)
    assert isinstance(shop, Shop)

    output = cli(
        "providers", "set", "stripe", "--tenant", shop.slug, "--mode", "test", "--credentials-file", "-",
        "--webhook-secret", WEBHOOK_SECRET, "--json",
        env=env, input=json.dumps(CREDENTIALS),
    )  # fmt: skip
    assert SECRET_KEY not in output and WEBHOOK_SECRET not in output
    shown = json.loads([line for line in output.splitlines() if line.startswith("{")][-1])
    assert shown["credentials"] == {
        "secret_key": f"sk_test_…{SECRET_KEY[-4:]}",
        "publishable_key": PUBLISHABLE_KEY,
    }

    refused = cli(
        "providers", "set", "stripe", "--tenant", shop.slug, "--mode", "live", "--credentials-file", "-",
        env=env, input=json.dumps(CREDENTIALS), expect=1,
    )  # fmt: skip
    assert "secret_key" in refused and SECRET_KEY not in refused

    fake = FakeStripe(secret_key=SECRET_KEY)

    async def pay(database: Database) -> str:
        settings = make_settings(database_url=fresh_database_url)
        async with api_client(database, settings, HostRouter({"api.stripe.com": fake.app})) as (client, _):
            started = await start_checkout(client, shop)
            paid = fake.pay(intent_of(fake, started)["id"])
            response = await post_event(client, shop, fake.event("payment_intent.succeeded", paid))
            assert response.status_code == 200, response.text
            result: str = response.json()["result"]
            return result

    assert on_database(fresh_database_url, pay) == "applied"
