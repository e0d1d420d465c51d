"""A sandbox webhook that paycore refuses means a test payment never lands: the sender says so,
as a warning with the reason, where a developer looks (issue 12: a port or a secret that changed
used to leave only an info line)."""

from __future__ import annotations

import httpx
import structlog

from paycore.config import Settings
from paycore.db import Database
from tests.conftest import make_settings
from tests.flows.helpers import buy, confirm, create_product, deliver, open_shop, order


def refusals(logs: list[dict[str, object]]) -> list[dict[str, object]]:
    return [entry for entry in logs if entry["event"] == "sandbox_webhook_refused"]


class TestARefusedSandboxWebhookIsAWarning:
    async def test_a_webhook_signed_by_another_servers_secret_is_warned_about_with_the_reason(
        self, db: Database, settings: Settings, client: httpx.AsyncClient
    ) -> None:
        shop = await open_shop(db)
        bought = await buy(client, shop, (await create_product(client, shop))["id"])
        await confirm(client, bought["payment"]["id"])
        # The sender's secret is another server's: what a PAYCORE_PUBLIC_URL pointing at another
        # paycore (or a changed server secret) looks like from here.
        elsewhere = make_settings(
            database_url=settings.database_url, checkout_token_secret="another-server-7Qm2xV9pL4kR8tW1zN6b"
        )
        with structlog.testing.capture_logs() as logs:
            assert await deliver(db, elsewhere, client) == 0
        refused = refusals(logs)
        assert refused  # one warning per refused delivery
        for entry in refused:
            assert entry["log_level"] == "warning"
            assert entry["status"] == 400
            assert entry["reason"] == "webhook_signature_invalid"
            assert entry["chaos_bad_signature"] is False
        assert (await order(client, shop, bought["order"]["id"]))["status"] == "pending_payment"

    async def test_a_webhook_the_server_accepts_is_not_warned_about(
        self, db: Database, settings: Settings, client: httpx.AsyncClient
    ) -> None:
        shop = await open_shop(db)
        bought = await buy(client, shop, (await create_product(client, shop))["id"])
        await confirm(client, bought["payment"]["id"])
        with structlog.testing.capture_logs() as logs:
            assert await deliver(db, settings, client) >= 1
        assert refusals(logs) == []
