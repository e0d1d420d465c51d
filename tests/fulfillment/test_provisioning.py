"""Provisioning after payment, end to end: the HTTP API takes the money, the worker's
FulfillmentDispatcher calls the provisioner (a fake of the third party, written from its documented
API, behind an httpx.MockTransport), and the order is fulfilled — or needs a person."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from paycore.audit.service import Actor
from paycore.circuit import BreakerKey, Breakers
from paycore.clock import utcnow
from paycore.config import Settings
from paycore.db import Database
from paycore.errors import Conflict
from paycore.fulfillment.dispatch import FulfillmentDispatcher
from paycore.fulfillment.models import Fulfillment, FulfillmentKind, FulfillmentStatus
from paycore.fulfillment.provisioners.registry import build_provisioners
from paycore.fulfillment.service import retry_fulfillment
from paycore.merchant_webhooks.signing import new_secret
from paycore.outbox.models import OutboxChannel, OutboxMessage
from paycore.payments.providers.registry import ProviderRegistry
from tests.conftest import make_settings
from tests.flows.helpers import Shop, buy, confirm, deliver, open_shop, order
from tests.fulfillment.fakes import fake_http

PROVISION_URL = "https://provision.example/hook"
HTTP_TARGET = "provisioner:http:provision.example"
MAX_ATTEMPTS = 2


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The suite's settings (its database) plus a provisioner secret and few attempts.
    Overriding `settings` here makes the `client` fixture's app use these too."""
    return make_settings(
        database_url=settings.database_url,
        provisioner_secret=new_secret(),
        fulfillment_max_attempts=MAX_ATTEMPTS,
    )


@pytest.fixture
async def shop(db: Database) -> Shop:
    return await open_shop(db)


class FakeProvisioningEndpoint:
    """A merchant's provisioning hook as the HTTP provisioner's contract describes it: it verifies
    the Standard Webhooks signature, makes one thing per Idempotency-Key, answers its external_ref."""

    def __init__(self, secret: str, *, fail_with: int | None = None) -> None:
        self.webhook = Webhook(secret)
        self.fail_with = fail_with
        self.payloads: list[dict[str, Any]] = []
        self.headers: list[httpx.Headers] = []
        self.refused = 0
        self.made: dict[str, str] = {}

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if (request.method, str(request.url)) != ("POST", PROVISION_URL):
            return httpx.Response(404)
        try:
            payload = self.webhook.verify(request.content, dict(request.headers))
        except WebhookVerificationError as exc:
            self.refused += 1
            return httpx.Response(401, json={"error": str(exc)})
        self.payloads.append(payload)
        self.headers.append(request.headers)
        if self.fail_with is not None:
            return httpx.Response(self.fail_with, text="provisioning backend down")
        key = request.headers["idempotency-key"]
        ref = self.made.setdefault(key, f"srv_{123 + len(self.made)}")
        return httpx.Response(200, json={"external_ref": ref})


def http_breaker(shop: Shop) -> BreakerKey:
    """The shop's own breaker for its HTTP provisioner's host (test mode)."""
    return BreakerKey.of_tenant(
        "provisioner:http", shop.tenant_id, livemode=False, remote="provision.example"
    )


def dispatcher(
    db: Database, settings: Settings, http: httpx.AsyncClient, breakers: Breakers | None = None
) -> FulfillmentDispatcher:
    return FulfillmentDispatcher(
        db,
        build_provisioners(settings, http),
        breakers or Breakers(failure_threshold=5, reset_seconds=30),
        settings,
        # No payment providers: the HTTP provisioner calls the merchant's own endpoint, so the
        # dispatcher never asks one (the operator's panel is tested in test_operator_panel.py).
        providers=ProviderRegistry({}),
        worker_id="worker-test",
    )


async def run_batch(worker: FulfillmentDispatcher) -> int:
    return await worker.process_batch(asyncio.Event())


async def paid_order(
    client: httpx.AsyncClient,
    db: Database,
    settings: Settings,
    shop: Shop,
    config: dict[str, Any],
    *,
    name: str = "Game server",
) -> dict[str, Any]:
    """A provisioned product, bought and paid through the sandbox; returns the order."""
    created = await client.post(
        "/v1/products",
        json={
            "name": name,
            "price": 1500,
            "currency": "EUR",
            "kind": "service",
            "fulfillment": {"type": "provision", "config": config},
        },
        headers=shop.secret,
    )
    assert created.status_code == 201, created.text
    bought = await buy(client, shop, created.json()["id"])
    await confirm(client, bought["payment"]["id"])
    assert await deliver(db, settings, client) >= 1
    result: dict[str, Any] = bought["order"]
    return result


async def fulfillments_of(db: Database, order_id: str) -> list[Fulfillment]:
    async with db.session(write=False) as session:
        return list(await session.scalars(select(Fulfillment).where(Fulfillment.order_id == order_id)))


async def fulfillment_of(db: Database, order_id: str) -> Fulfillment:
    (row,) = await fulfillments_of(db, order_id)
    return row


async def make_due(db: Database, fulfillment_id: str) -> None:
    """Skip the backoff: the row's next attempt is now."""
    async with db.session(write=True) as session:
        await session.execute(
            update(Fulfillment)
            .where(Fulfillment.id == fulfillment_id)
            .values(next_attempt_at=utcnow() - timedelta(seconds=1))
            .execution_options(synchronize_session=False)
        )


async def outbox(db: Database, tenant_id: str, channel: OutboxChannel) -> list[OutboxMessage]:
    async with db.session(write=False) as session:
        rows = await session.scalars(
            select(OutboxMessage)
            .where(OutboxMessage.tenant_id == tenant_id, OutboxMessage.channel == channel)
            .order_by(OutboxMessage.created_at)
        )
        return list(rows)


async def topics(db: Database, tenant_id: str, channel: OutboxChannel) -> list[str]:
    return sorted(row.topic for row in await outbox(db, tenant_id, channel))


def http_config(**extra: Any) -> dict[str, Any]:
    return {"provisioner": "http", "url": PROVISION_URL, **extra}


class TestHttpProvisioner:
    async def test_paid_order_waits_for_its_provisioning(
        self, db: Database, settings: Settings, client: httpx.AsyncClient, shop: Shop
    ) -> None:
        paid = await paid_order(client, db, settings, shop, http_config())
        assert (await order(client, shop, paid["id"]))["status"] == "paid"
        row = await fulfillment_of(db, paid["id"])
        assert (row.kind, row.status, row.attempts) == (
            FulfillmentKind.PROVISION,
            FulfillmentStatus.PENDING,
            0,
        )
        assert row.external_ref == row.id
        assert row.next_attempt_at is not None
        assert row.next_attempt_at <= utcnow()
        assert "order.fulfilled" not in await topics(db, shop.tenant_id, OutboxChannel.MERCHANT_WEBHOOK)

    async def test_signed_call_fulfills_the_order(
        self, db: Database, settings: Settings, client: httpx.AsyncClient, shop: Shop
    ) -> None:
        paid = await paid_order(client, db, settings, shop, http_config(plan="large"), name="VPS")
        assert settings.provisioner_secret is not None
        endpoint = FakeProvisioningEndpoint(settings.provisioner_secret.get_secret_value())
        async with fake_http(endpoint) as http:
            worker = dispatcher(db, settings, http)
            assert await run_batch(worker) == 1
            assert await run_batch(worker) == 0  # done: nothing is claimed again

        row = await fulfillment_of(db, paid["id"])
        assert endpoint.refused == 0
        (payload,) = endpoint.payloads
        (headers,) = endpoint.headers
        assert headers["idempotency-key"] == headers["webhook-id"] == row.id
        assert payload["id"] == row.id
        assert payload["type"] == "fulfillment.provision"
        data = payload["data"]
        assert (data["fulfillment"], data["order"], data["order_number"]) == (
            row.id,
            paid["id"],
            paid["number"],
        )
        assert (data["product_name"], data["quantity"]) == ("VPS", 1)
        assert data["customer"] == {"email": "ada@example.com", "name": "Ada"}
        assert data["config"] == {"provisioner": "http", "plan": "large"}  # the url is ours, not theirs

        assert (row.status, row.result_ref, row.attempts) == (FulfillmentStatus.SUCCEEDED, "srv_123", 1)
        assert row.completed_at is not None
        assert (row.locked_by, row.locked_until, row.last_error) == (None, None, None)
        detail = await order(client, shop, paid["id"])
        assert detail["status"] == "fulfilled"
        assert detail["fulfilled_at"] is not None
        fulfilled = [
            message
            for message in await outbox(db, shop.tenant_id, OutboxChannel.MERCHANT_WEBHOOK)
            if message.topic == "order.fulfilled"
        ]
        assert len(fulfilled) == 1
        assert fulfilled[0].payload["data"]["object"]["id"] == paid["id"]
        assert fulfilled[0].payload["data"]["object"]["status"] == "fulfilled"

    async def test_without_a_secret_nothing_unsigned_is_sent(
        self, db: Database, settings: Settings, client: httpx.AsyncClient, shop: Shop
    ) -> None:
        paid = await paid_order(client, db, settings, shop, http_config())
        unsigned = settings.model_copy(update={"provisioner_secret": None})
        endpoint = FakeProvisioningEndpoint(new_secret())
        async with fake_http(endpoint) as http:
            assert await run_batch(dispatcher(db, unsigned, http)) == 1
        row = await fulfillment_of(db, paid["id"])
        assert endpoint.payloads == []
        assert endpoint.refused == 0
        assert row.status is FulfillmentStatus.RETRYING
        assert row.last_error is not None
        assert "PAYCORE_PROVISIONER_SECRET" in row.last_error

    async def test_failures_back_off_then_need_attention(
        self, db: Database, settings: Settings, client: httpx.AsyncClient, shop: Shop
    ) -> None:
        paid = await paid_order(client, db, settings, shop, http_config())
        assert settings.provisioner_secret is not None
        endpoint = FakeProvisioningEndpoint(settings.provisioner_secret.get_secret_value(), fail_with=503)
        async with fake_http(endpoint) as http:
            worker = dispatcher(db, settings, http)
            before = utcnow()
            assert await run_batch(worker) == 1
            after = utcnow()
            row = await fulfillment_of(db, paid["id"])
            assert (row.status, row.attempts) == (FulfillmentStatus.RETRYING, 1)
            assert row.last_error is not None
            assert "HTTP 503" in row.last_error
            assert row.next_attempt_at is not None
            # the first backoff is 30 s ± 10 %
            assert before + timedelta(seconds=27) <= row.next_attempt_at <= after + timedelta(seconds=33)
            assert (row.locked_by, row.locked_until) == (None, None)
            assert await run_batch(worker) == 0  # not due yet
            assert await topics(db, shop.tenant_id, OutboxChannel.OPS_ALERT) == []

            await make_due(db, row.id)
            assert await run_batch(worker) == 1
            row = await fulfillment_of(db, paid["id"])
            assert (row.status, row.attempts, row.next_attempt_at) == (
                FulfillmentStatus.NEEDS_ATTENTION,
                MAX_ATTEMPTS,
                None,
            )

            await make_due(db, row.id)
            assert await run_batch(worker) == 0  # nothing retries it until a person does

        assert len(endpoint.payloads) == MAX_ATTEMPTS
        assert {headers["webhook-id"] for headers in endpoint.headers} == {row.id}  # same id each try
        (alert,) = await outbox(db, shop.tenant_id, OutboxChannel.OPS_ALERT)
        assert alert.topic == "fulfillment_needs_attention"
        assert alert.payload["details"] == {"fulfillment": row.id, "order": paid["id"]}
        assert paid["number"] in alert.payload["message"]
        events = await outbox(db, shop.tenant_id, OutboxChannel.MERCHANT_WEBHOOK)
        failed = [event for event in events if event.topic == "fulfillment.failed"]
        assert len(failed) == 1
        assert failed[0].payload["data"]["object"]["id"] == row.id
        assert failed[0].payload["data"]["object"]["status"] == "needs_attention"
        assert "order.fulfilled" not in {event.topic for event in events}
        assert (await order(client, shop, paid["id"]))["status"] == "paid"

        # The cause fixed, a person puts it back in line (`paycore fulfillments retry`).
        async with db.session() as session:
            await retry_fulfillment(
                session, fulfillment_id=row.id, actor=Actor(name="test:ops"), now=utcnow()
            )
        healthy = FakeProvisioningEndpoint(settings.provisioner_secret.get_secret_value())
        async with fake_http(healthy) as http:
            assert await run_batch(dispatcher(db, settings, http)) == 1
        assert (await fulfillment_of(db, paid["id"])).status is FulfillmentStatus.SUCCEEDED
        assert {headers["webhook-id"] for headers in healthy.headers} == {row.id}  # the same id again
        assert (await order(client, shop, paid["id"]))["status"] == "fulfilled"
        async with db.session() as session:
            with pytest.raises(Conflict):  # only a stuck one is retried
                await retry_fulfillment(
                    session, fulfillment_id=row.id, actor=Actor(name="test:ops"), now=utcnow()
                )


class TestCircuitBreaker:
    async def test_open_breaker_postpones_without_spending_attempts(
        self, db: Database, settings: Settings, client: httpx.AsyncClient, shop: Shop
    ) -> None:
        paid = await paid_order(client, db, settings, shop, http_config())
        assert settings.provisioner_secret is not None
        endpoint = FakeProvisioningEndpoint(settings.provisioner_secret.get_secret_value())
        breakers = Breakers(failure_threshold=1, reset_seconds=60)
        breakers.get(http_breaker(shop)).record_failure()  # the provisioner's host is known to be down
        async with fake_http(endpoint) as http:
            worker = dispatcher(db, settings, http, breakers)
            for _ in range(MAX_ATTEMPTS + 1):  # more postponements than attempts allowed
                before = utcnow()
                assert await run_batch(worker) == 1
                row = await fulfillment_of(db, paid["id"])
                assert (row.status, row.attempts, row.last_error) == (FulfillmentStatus.PENDING, 0, None)
                assert (row.locked_by, row.locked_until) == (None, None)
                assert row.next_attempt_at is not None
                # postponed until the breaker lets a probe through, about a minute from now
                assert (
                    before + timedelta(seconds=50) <= row.next_attempt_at <= utcnow() + timedelta(seconds=60)
                )
                await make_due(db, row.id)

        assert endpoint.payloads == []
        assert await topics(db, shop.tenant_id, OutboxChannel.OPS_ALERT) == []
        assert (await order(client, shop, paid["id"]))["status"] == "paid"

    async def test_a_failure_opens_the_breaker_for_the_rest_of_the_batch(
        self, db: Database, settings: Settings, client: httpx.AsyncClient, shop: Shop
    ) -> None:
        first = await paid_order(client, db, settings, shop, http_config())
        second = await paid_order(client, db, settings, shop, http_config())
        assert settings.provisioner_secret is not None
        endpoint = FakeProvisioningEndpoint(settings.provisioner_secret.get_secret_value(), fail_with=502)
        breakers = Breakers(failure_threshold=1, reset_seconds=60)
        async with fake_http(endpoint) as http:
            assert await run_batch(dispatcher(db, settings, http, breakers)) == 2

        assert len(endpoint.payloads) == 1  # the second row never reached the failing host
        assert breakers.states_for(shop.tenant_id, livemode=False) == {
            "shared": {},
            "tenant": {HTTP_TARGET: "open"},
        }
        rows = await fulfillments_of(db, first["id"]) + await fulfillments_of(db, second["id"])
        assert sorted((row.status.value, row.attempts) for row in rows) == [("pending", 0), ("retrying", 1)]

    async def test_a_refusal_is_the_tenants_problem_not_the_hosts(
        self, db: Database, settings: Settings, client: httpx.AsyncClient, shop: Shop
    ) -> None:
        paid = await paid_order(client, db, settings, shop, http_config())
        assert settings.provisioner_secret is not None
        endpoint = FakeProvisioningEndpoint(settings.provisioner_secret.get_secret_value(), fail_with=400)
        breakers = Breakers(failure_threshold=1, reset_seconds=60)
        async with fake_http(endpoint) as http:
            assert await run_batch(dispatcher(db, settings, http, breakers)) == 1
        row = await fulfillment_of(db, paid["id"])
        assert (row.status, row.attempts) == (FulfillmentStatus.RETRYING, 1)
        # a 4xx says nothing about the host's health
        assert breakers.states_for(shop.tenant_id, livemode=False)["tenant"] == {HTTP_TARGET: "closed"}

    async def test_one_tenants_failing_calls_to_a_host_do_not_stop_anothers(
        self, db: Database, settings: Settings, client: httpx.AsyncClient, shop: Shop
    ) -> None:
        """Two merchants use the same provisioning host; it fails for one of them (its account
        there, its config — or its own doing). The other's provisioning goes on."""
        neighbour = await open_shop(db)
        assert settings.provisioner_secret is not None
        endpoint = FakeProvisioningEndpoint(settings.provisioner_secret.get_secret_value())

        def failing_for_shop(request: httpx.Request) -> httpx.Response:
            if json.loads(request.content)["data"]["tenant"] == shop.tenant_id:
                return httpx.Response(502, text="this account is broken")
            return endpoint(request)

        breakers = Breakers(failure_threshold=1, reset_seconds=60)
        failing = await paid_order(client, db, settings, shop, http_config())
        async with fake_http(failing_for_shop) as http:
            assert await run_batch(dispatcher(db, settings, http, breakers)) == 1
            assert (await fulfillment_of(db, failing["id"])).status is FulfillmentStatus.RETRYING
            fine = await paid_order(client, db, settings, neighbour, http_config())
            assert await run_batch(dispatcher(db, settings, http, breakers)) == 1

        assert (await fulfillment_of(db, fine["id"])).status is FulfillmentStatus.SUCCEEDED
        assert (await order(client, neighbour, fine["id"]))["status"] == "fulfilled"
        assert breakers.states_for(shop.tenant_id, livemode=False)["tenant"] == {HTTP_TARGET: "open"}
        assert breakers.states_for(neighbour.tenant_id, livemode=False)["tenant"] == {HTTP_TARGET: "closed"}


class TestRefundStopsProvisioning:
    async def test_a_full_refund_cancels_what_was_not_made_yet(
        self, db: Database, settings: Settings, client: httpx.AsyncClient, shop: Shop
    ) -> None:
        paid = await paid_order(client, db, settings, shop, http_config())
        refund = await client.post(f"/v1/orders/{paid['id']}/refunds", json={}, headers=shop.secret)
        assert refund.status_code == 201, refund.text
        row = await fulfillment_of(db, paid["id"])
        assert row.status is FulfillmentStatus.CANCELED
        assert settings.provisioner_secret is not None
        endpoint = FakeProvisioningEndpoint(settings.provisioner_secret.get_secret_value())
        async with fake_http(endpoint) as http:
            assert await run_batch(dispatcher(db, settings, http)) == 0
        assert endpoint.payloads == []
