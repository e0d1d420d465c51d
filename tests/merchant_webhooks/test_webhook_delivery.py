"""Merchant webhooks per Standard Webhooks, checked by the `standardwebhooks` reference verifier."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import delete, select, update
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from paycore.clock import utcnow
from paycore.config import Settings
from paycore.db import Database
from paycore.merchant_webhooks.delivery import MerchantWebhookChannel
from paycore.merchant_webhooks.models import WebhookAttempt, WebhookEndpoint
from paycore.merchant_webhooks.sealing import open_secrets, seal_secrets
from paycore.outbox.dispatch import OutboxDispatcher
from paycore.outbox.models import OutboxChannel, OutboxMessage, OutboxStatus
from paycore.sealing import secrets_box
from paycore.secrets_box import new_key_line
from tests.conftest import make_settings
from tests.flows.helpers import Shop, buy, confirm, create_product, deliver, open_shop

RECEIVER = "https://merchant.example/hooks"


@dataclass
class Receiver:
    """A merchant's endpoint: verifies with the reference library, answers what the test says."""

    secrets: list[str] = field(default_factory=list)
    answers: list[httpx.Response] = field(default_factory=list)
    received: list[dict[str, Any]] = field(default_factory=list)

    def handle(self, request: httpx.Request) -> httpx.Response:
        headers = dict(request.headers)
        verified_with = []
        for secret in self.secrets:
            try:
                Webhook(secret).verify(request.content, headers)
                verified_with.append(secret)
            except WebhookVerificationError:
                pass
        self.received.append(
            {
                "url": str(request.url),
                "id": headers["webhook-id"],
                "timestamp": headers["webhook-timestamp"],
                "signatures": headers["webhook-signature"].split(" "),
                "verified_with": verified_with,
                "body": json.loads(request.content),
            }
        )
        return self.answers.pop(0) if self.answers else httpx.Response(200, text="ok")


@pytest.fixture
def receiver() -> Receiver:
    return Receiver()


def worker(db: Database, settings: Settings, receiver: Receiver) -> OutboxDispatcher:
    client = httpx.AsyncClient(transport=httpx.MockTransport(receiver.handle))
    channel = MerchantWebhookChannel(settings, db, client)
    return OutboxDispatcher(db, {OutboxChannel.MERCHANT_WEBHOOK: channel}, settings, worker_id="w")


async def add_endpoint(client: httpx.AsyncClient, shop: Shop, **body: Any) -> dict[str, Any]:
    response = await client.post("/v1/webhook_endpoints", json={"url": RECEIVER, **body}, headers=shop.secret)
    assert response.status_code == 201, response.text
    endpoint: dict[str, Any] = response.json()
    return endpoint


async def paid_order(
    db: Database, settings: Settings, client: httpx.AsyncClient, shop: Shop
) -> dict[str, Any]:
    product = await create_product(client, shop)
    bought = await buy(client, shop, product["id"])
    await confirm(client, bought["payment"]["id"])
    await deliver(db, settings, client)
    return bought


async def drain(work: OutboxDispatcher, rounds: int = 5) -> None:
    for _ in range(rounds):
        if not await work.process_batch(asyncio.Event()):
            return


async def make_all_due(db: Database) -> None:
    async with db.session() as session:
        await session.execute(update(OutboxMessage).values(next_attempt_at=utcnow() - timedelta(seconds=1)))


class TestEndpointsApi:
    async def test_the_secret_is_shown_once(self, db: Database, client: httpx.AsyncClient) -> None:
        shop = await open_shop(db)
        created = await add_endpoint(client, shop, events=["order.paid", "order.refunded"])
        assert created["secret"].startswith("whsec_")
        assert created["events"] == ["order.paid", "order.refunded"]
        listed = (await client.get("/v1/webhook_endpoints", headers=shop.secret)).json()["data"]
        assert [(e["id"], e["secret"]) for e in listed] == [(created["id"], None)]
        assert created["secret"] not in json.dumps(listed)

    async def test_bad_input_is_refused(self, db: Database, client: httpx.AsyncClient) -> None:
        shop = await open_shop(db)
        unknown = await client.post(
            "/v1/webhook_endpoints", json={"url": RECEIVER, "events": ["order.exploded"]}, headers=shop.secret
        )
        assert (unknown.status_code, unknown.json()["error"]["param"]) == (422, "events")
        not_a_url = await client.post(
            "/v1/webhook_endpoints", json={"url": "ftp://x.example/y"}, headers=shop.secret
        )
        assert (not_a_url.status_code, not_a_url.json()["error"]["param"]) == (422, "url")

    async def test_delete_stops_deliveries(
        self, db: Database, settings: Settings, client: httpx.AsyncClient, receiver: Receiver
    ) -> None:
        shop = await open_shop(db)
        endpoint = await add_endpoint(client, shop)
        assert (
            await client.delete(f"/v1/webhook_endpoints/{endpoint['id']}", headers=shop.secret)
        ).status_code == 200
        await paid_order(db, settings, client, shop)
        await drain(worker(db, settings, receiver))
        assert receiver.received == []


class TestSigning:
    async def test_every_event_verifies_with_the_reference_library(
        self, db: Database, settings: Settings, client: httpx.AsyncClient, receiver: Receiver
    ) -> None:
        shop = await open_shop(db)
        endpoint = await add_endpoint(client, shop)
        receiver.secrets = [endpoint["secret"]]
        bought = await paid_order(db, settings, client, shop)
        await drain(worker(db, settings, receiver))
        types = [delivery["body"]["type"] for delivery in receiver.received]
        assert types == ["order.created", "order.paid", "order.fulfilled"]  # in order
        assert all(delivery["verified_with"] == [endpoint["secret"]] for delivery in receiver.received)
        paid = receiver.received[1]["body"]
        assert paid["data"]["object"]["id"] == bought["order"]["id"]
        assert paid["data"]["object"]["status"] == "paid"
        assert paid["data"]["object"]["version"] == 2
        assert receiver.received[1]["id"] == paid["id"]

    async def test_the_webhook_id_is_stable_across_retries(
        self, db: Database, settings: Settings, client: httpx.AsyncClient, receiver: Receiver
    ) -> None:
        shop = await open_shop(db)
        endpoint = await add_endpoint(client, shop, events=["order.paid"])
        receiver.secrets = [endpoint["secret"]]
        receiver.answers = [httpx.Response(500, text="try again")]
        await paid_order(db, settings, client, shop)
        work = worker(db, settings, receiver)
        await drain(work)
        async with db.session(write=False) as session:
            (message,) = await session.scalars(
                select(OutboxMessage).where(OutboxMessage.topic == "order.paid")
            )
        assert message.status is OutboxStatus.RETRYING
        await make_all_due(db)
        await asyncio.sleep(1.1)  # a later second, so the retry's timestamp differs
        await drain(work)
        first, second = receiver.received
        assert first["id"] == second["id"]
        assert first["timestamp"] != second["timestamp"]
        assert first["verified_with"] == second["verified_with"] == [endpoint["secret"]]
        attempts = (
            await client.get(f"/v1/webhook_endpoints/{endpoint['id']}/attempts", headers=shop.secret)
        ).json()["data"]
        assert [(a["succeeded"], a["status_code"]) for a in attempts] == [(True, 200), (False, 500)]
        assert attempts[1]["response_excerpt"] is None  # what the endpoint said is not kept
        assert "try again" not in json.dumps(attempts)
        assert all(a["latency_ms"] >= 0 for a in attempts)

    async def test_a_copy_sent_again_after_a_crash_has_the_same_id_and_a_valid_signature(
        self, db: Database, settings: Settings, client: httpx.AsyncClient, receiver: Receiver
    ) -> None:
        """Finding 16: the worker is killed after the merchant took the event but before it
        recorded that (the attempt and the row's `sent` are lost with it); the row's claim runs
        out and another worker sends the event again."""
        shop = await open_shop(db)
        endpoint = await add_endpoint(client, shop, events=["order.paid"])
        receiver.secrets = [endpoint["secret"]]
        await paid_order(db, settings, client, shop)
        await drain(worker(db, settings, receiver))
        async with db.session() as session:  # what the crash never wrote
            await session.execute(delete(WebhookAttempt))
            await session.execute(
                update(OutboxMessage)
                .where(OutboxMessage.topic == "order.paid")
                .values(
                    status=OutboxStatus.PENDING,
                    attempts=0,
                    sent_at=None,
                    next_attempt_at=utcnow() - timedelta(seconds=1),
                )
            )
        await drain(worker(db, settings, receiver))

        first, second = receiver.received
        assert first["id"] == second["id"] == first["body"]["id"]
        assert first["body"] == second["body"]
        assert first["verified_with"] == second["verified_with"] == [endpoint["secret"]]

    async def test_during_a_rotation_both_secrets_sign(
        self, db: Database, settings: Settings, client: httpx.AsyncClient, receiver: Receiver
    ) -> None:
        shop = await open_shop(db)
        endpoint = await add_endpoint(client, shop, events=["order.paid"])
        rotated = (
            await client.post(
                f"/v1/webhook_endpoints/{endpoint['id']}/rotate_secret",
                json={"previous_secret_valid_hours": 24},
                headers=shop.secret,
            )
        ).json()
        assert rotated["secret"] != endpoint["secret"]
        receiver.secrets = [endpoint["secret"], rotated["secret"]]
        await paid_order(db, settings, client, shop)
        await drain(worker(db, settings, receiver))
        (delivery,) = receiver.received
        assert len(delivery["signatures"]) == 2
        assert delivery["verified_with"] == [endpoint["secret"], rotated["secret"]]


class TestReceiverAnswers:
    async def test_410_disables_the_endpoint(
        self, db: Database, settings: Settings, client: httpx.AsyncClient, receiver: Receiver
    ) -> None:
        shop = await open_shop(db)
        endpoint = await add_endpoint(client, shop)
        receiver.answers = [httpx.Response(410)]
        await paid_order(db, settings, client, shop)
        await drain(worker(db, settings, receiver))
        assert len(receiver.received) == 1  # nothing more after the 410
        shown = (await client.get(f"/v1/webhook_endpoints/{endpoint['id']}", headers=shop.secret)).json()
        assert shown["enabled"] is False
        assert "410" in shown["disabled_reason"]

    async def test_retry_after_is_honoured(
        self, db: Database, settings: Settings, client: httpx.AsyncClient, receiver: Receiver
    ) -> None:
        shop = await open_shop(db)
        await add_endpoint(client, shop, events=["order.paid"])
        receiver.answers = [httpx.Response(429, headers={"Retry-After": "3600"})]
        await paid_order(db, settings, client, shop)
        await drain(worker(db, settings, receiver))
        async with db.session(write=False) as session:
            (message,) = await session.scalars(
                select(OutboxMessage).where(OutboxMessage.topic == "order.paid")
            )
        assert message.next_attempt_at >= utcnow() + timedelta(minutes=59)

    async def test_redirects_are_not_followed(
        self, db: Database, settings: Settings, client: httpx.AsyncClient, receiver: Receiver
    ) -> None:
        shop = await open_shop(db)
        await add_endpoint(client, shop, events=["order.paid"])
        receiver.answers = [httpx.Response(302, headers={"Location": "http://169.254.169.254/latest"})]
        await paid_order(db, settings, client, shop)
        await drain(worker(db, settings, receiver))
        assert [d["url"] for d in receiver.received] == [RECEIVER]
        async with db.session(write=False) as session:
            (message,) = await session.scalars(
                select(OutboxMessage).where(OutboxMessage.topic == "order.paid")
            )
        assert message.status is OutboxStatus.RETRYING

    async def test_an_endpoint_failing_for_five_days_is_disabled_and_alerted(
        self, db: Database, settings: Settings, client: httpx.AsyncClient, receiver: Receiver
    ) -> None:
        shop = await open_shop(db)
        endpoint = await add_endpoint(client, shop, events=["order.paid"])
        async with db.session() as session:
            await session.execute(
                update(WebhookEndpoint)
                .where(WebhookEndpoint.id == endpoint["id"])
                .values(failing_since=utcnow() - timedelta(days=5, minutes=1))
            )
        receiver.answers = [httpx.Response(503)]
        await paid_order(db, settings, client, shop)
        await drain(worker(db, settings, receiver))
        shown = (await client.get(f"/v1/webhook_endpoints/{endpoint['id']}", headers=shop.secret)).json()
        assert (shown["enabled"], shown["disabled_reason"]) == (False, "failing for 5 days")
        async with db.session(write=False) as session:
            alerts = list(
                await session.scalars(
                    select(OutboxMessage.topic).where(OutboxMessage.channel == OutboxChannel.OPS_ALERT)
                )
            )
        assert alerts == ["webhook_endpoint_disabled"]

    async def test_only_subscribed_events_are_sent(
        self, db: Database, settings: Settings, client: httpx.AsyncClient, receiver: Receiver
    ) -> None:
        shop = await open_shop(db)
        await add_endpoint(client, shop, events=["order.fulfilled"])
        await paid_order(db, settings, client, shop)
        await drain(worker(db, settings, receiver))
        assert [d["body"]["type"] for d in receiver.received] == ["order.fulfilled"]


class TestTargets:
    async def test_internal_targets_are_refused_in_production_unless_allowed(
        self, db: Database, client: httpx.AsyncClient, receiver: Receiver
    ) -> None:
        base = db.engine.url.render_as_string(hide_password=False)
        production = {
            "env": "production",
            "checkout_token_secret": "k3J9qL0vX2mN8pR4tY6wZ1aB5cD7eF9gH0iJ",
            "database_url": base,
            "secrets_key": new_key_line("prod"),
        }
        shop = await open_shop(db)
        await add_endpoint(client, shop, events=["order.paid"])
        async with db.session() as session:
            await session.execute(update(WebhookEndpoint).values(url="https://127.0.0.1:9/hooks"))
            # Production opens secrets with PAYCORE_SECRETS_KEY only: seal the endpoint's under it.
            (endpoint,) = await session.scalars(select(WebhookEndpoint))
            opened = open_secrets(secrets_box(make_settings()), endpoint)
            seal_secrets(secrets_box(make_settings(**production)), endpoint, opened)
        await paid_order(db, make_settings(database_url=base), client, shop)

        await drain(worker(db, make_settings(**production), receiver))
        assert receiver.received == []
        async with db.session(write=False) as session:
            (message,) = await session.scalars(
                select(OutboxMessage).where(OutboxMessage.topic == "order.paid")
            )
        assert "internal address" in (message.last_error or "")

        await make_all_due(db)
        allowed = make_settings(**production, webhook_target_allowlist="127.0.0.0/8")
        await drain(worker(db, allowed, receiver))
        assert [d["url"] for d in receiver.received] == ["https://127.0.0.1:9/hooks"]


class TestMalformedEndpoints:
    @pytest.mark.parametrize("url", ["http://example.com:abc/x", "http://[::1/x", "https://"])
    async def test_urls_nothing_could_send_to_are_refused_at_creation(
        self, db: Database, client: httpx.AsyncClient, url: str
    ) -> None:
        shop = await open_shop(db)
        response = await client.post("/v1/webhook_endpoints", json={"url": url}, headers=shop.secret)
        assert (response.status_code, response.json()["error"]["param"]) == (422, "url")

    async def test_one_broken_endpoint_does_not_hold_up_the_others(
        self, db: Database, settings: Settings, client: httpx.AsyncClient, receiver: Receiver
    ) -> None:
        shop = await open_shop(db)
        healthy = await add_endpoint(client, shop, events=["order.paid"])
        broken = await add_endpoint(client, shop, events=["order.paid"])
        async with db.session() as session:  # as if stored before URLs were checked
            await session.execute(
                update(WebhookEndpoint)
                .where(WebhookEndpoint.id == broken["id"])
                .values(url="http://example.com:abc/x")
            )
        await paid_order(db, settings, client, shop)
        await drain(worker(db, settings, receiver))
        assert [d["url"] for d in receiver.received] == [RECEIVER]
        healthy_attempts = (
            await client.get(f"/v1/webhook_endpoints/{healthy['id']}/attempts", headers=shop.secret)
        ).json()
        broken_attempts = (
            await client.get(f"/v1/webhook_endpoints/{broken['id']}/attempts", headers=shop.secret)
        ).json()
        assert [a["succeeded"] for a in healthy_attempts["data"]] == [True]
        assert [a["succeeded"] for a in broken_attempts["data"]] == [False]
        shown = (await client.get(f"/v1/webhook_endpoints/{broken['id']}", headers=shop.secret)).json()
        assert shown["failing_since"] is not None
