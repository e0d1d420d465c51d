"""Provisioning after payment, end to end: the HTTP API takes the money, the worker's
FulfillmentDispatcher calls the provisioner (a fake of the third party, written from its documented
API, behind an httpx.MockTransport), and the order is fulfilled — or needs a person."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
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
from paycore.outbox.models import OutboxChannel, OutboxMessage
from paycore.payments.providers.registry import ProviderRegistry
from tests.conftest import make_settings
from tests.flows.helpers import Shop, buy, confirm, deliver, open_shop, order
from tests.fulfillment.fakes import fake_http

PROVISION_URL = "https://provision.example/hook"
MAX_ATTEMPTS = 2


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The suite's settings (its database) and few attempts. Overriding `settings` here makes
    the `client` fixture's app use these too."""
    return make_settings(
        database_url=settings.database_url,
        fulfillment_max_attempts=MAX_ATTEMPTS,
    )


@pytest.fixture
async def shop(db: Database) -> Shop:
    return await open_shop(db)


@dataclass(frozen=True)
class Target:
    id: str
    secret: str

    @property
    def breaker_name(self) -> str:
        return f"provisioner:http:{self.id}"

    def breaker(self, shop: Shop) -> BreakerKey:
        """The shop's own breaker for this target (test mode): named by our id, not its host."""
        return BreakerKey.of_tenant("provisioner:http", shop.tenant_id, livemode=False, remote=self.id)


async def add_target(client: httpx.AsyncClient, shop: Shop, url: str = PROVISION_URL) -> Target:
    created = await client.post("/v1/provisioning_targets", json={"url": url}, headers=shop.secret)
    assert created.status_code == 201, created.text
    return Target(created.json()["id"], created.json()["secret"])


@pytest.fixture
async def target(client: httpx.AsyncClient, shop: Shop) -> Target:
    """The shop's provisioning target, with the secret it was shown once."""
    return await add_target(client, shop)


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


def dispatcher(
    db: Database, settings: Settings, http: httpx.AsyncClient, breakers: Breakers | None = None
) -> FulfillmentDispatcher:
    return FulfillmentDispatcher(
        db,
        build_provisioners(settings, db, http),
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


def http_config(target: Target, **extra: Any) -> dict[str, Any]:
    return {"provisioner": "http", "target": target.id, **extra}


class TestHttpProvisioner:
    async def test_paid_order_waits_for_its_provisioning(
        self, db: Database, settings: Settings, client: httpx.AsyncClient, shop: Shop, target: Target
    ) -> None:
        paid = await paid_order(client, db, settings, shop, http_config(target))
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
        self, db: Database, settings: Settings, client: httpx.AsyncClient, shop: Shop, target: Target
    ) -> None:
        paid = await paid_order(client, db, settings, shop, http_config(target, plan="large"), name="VPS")
        endpoint = FakeProvisioningEndpoint(target.secret)
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

    async def test_a_deleted_target_is_not_called(
        self, db: Database, settings: Settings, client: httpx.AsyncClient, shop: Shop, target: Target
    ) -> None:
        paid = await paid_order(client, db, settings, shop, http_config(target))
        deleted = await client.delete(f"/v1/provisioning_targets/{target.id}", headers=shop.secret)
        assert deleted.status_code == 200, deleted.text
        endpoint = FakeProvisioningEndpoint(target.secret)
        async with fake_http(endpoint) as http:
            assert await run_batch(dispatcher(db, settings, http)) == 1
        row = await fulfillment_of(db, paid["id"])
        assert endpoint.payloads == []
        assert endpoint.refused == 0
        assert row.status is FulfillmentStatus.RETRYING
        assert row.last_error is not None
        assert f"no provisioning target {target.id}" in row.last_error

    async def test_a_rotated_secret_signs_beside_the_old_one(
        self, db: Database, settings: Settings, client: httpx.AsyncClient, shop: Shop, target: Target
    ) -> None:
        paid = await paid_order(client, db, settings, shop, http_config(target))
        rotated = await client.post(
            f"/v1/provisioning_targets/{target.id}/rotate_secret",
            json={"previous_secret_valid_hours": 1},
            headers=shop.secret,
        )
        assert rotated.status_code == 200, rotated.text
        new = rotated.json()["secret"]
        assert new.startswith("whsec_") and new != target.secret
        old_holder, new_holder = FakeProvisioningEndpoint(target.secret), FakeProvisioningEndpoint(new)
        for endpoint in (old_holder, new_holder):
            async with fake_http(endpoint) as http:
                await run_batch(dispatcher(db, settings, http))
            await make_due(db, (await fulfillment_of(db, paid["id"])).id)
        assert (old_holder.refused, new_holder.refused) == (0, 0)
        assert len(old_holder.payloads) == 1  # the first call, verified with the old secret
        assert new_holder.payloads == []  # the fulfillment was done by then: not called again
        (headers,) = old_holder.headers
        assert len(headers["webhook-signature"].split(" ")) == 2  # both secrets sign meanwhile

    async def test_failures_back_off_then_need_attention(
        self, db: Database, settings: Settings, client: httpx.AsyncClient, shop: Shop, target: Target
    ) -> None:
        paid = await paid_order(client, db, settings, shop, http_config(target))
        endpoint = FakeProvisioningEndpoint(target.secret, fail_with=503)
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
        healthy = FakeProvisioningEndpoint(target.secret)
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
        self, db: Database, settings: Settings, client: httpx.AsyncClient, shop: Shop, target: Target
    ) -> None:
        paid = await paid_order(client, db, settings, shop, http_config(target))
        endpoint = FakeProvisioningEndpoint(target.secret)
        breakers = Breakers(failure_threshold=1, reset_seconds=60)
        breakers.get(target.breaker(shop)).record_failure()  # the provisioner's host is known to be down
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
        self, db: Database, settings: Settings, client: httpx.AsyncClient, shop: Shop, target: Target
    ) -> None:
        first = await paid_order(client, db, settings, shop, http_config(target))
        second = await paid_order(client, db, settings, shop, http_config(target))
        endpoint = FakeProvisioningEndpoint(target.secret, fail_with=502)
        breakers = Breakers(failure_threshold=1, reset_seconds=60)
        async with fake_http(endpoint) as http:
            assert await run_batch(dispatcher(db, settings, http, breakers)) == 2

        assert len(endpoint.payloads) == 1  # the second row never reached the failing host
        assert breakers.states_for(shop.tenant_id, livemode=False) == {
            "shared": {},
            "tenant": {target.breaker_name: "open"},
        }
        rows = await fulfillments_of(db, first["id"]) + await fulfillments_of(db, second["id"])
        assert sorted((row.status.value, row.attempts) for row in rows) == [("pending", 0), ("retrying", 1)]

    async def test_a_refusal_is_the_tenants_problem_not_the_hosts(
        self, db: Database, settings: Settings, client: httpx.AsyncClient, shop: Shop, target: Target
    ) -> None:
        paid = await paid_order(client, db, settings, shop, http_config(target))
        endpoint = FakeProvisioningEndpoint(target.secret, fail_with=400)
        breakers = Breakers(failure_threshold=1, reset_seconds=60)
        async with fake_http(endpoint) as http:
            assert await run_batch(dispatcher(db, settings, http, breakers)) == 1
        row = await fulfillment_of(db, paid["id"])
        assert (row.status, row.attempts) == (FulfillmentStatus.RETRYING, 1)
        # a 4xx says nothing about the host's health
        assert breakers.states_for(shop.tenant_id, livemode=False)["tenant"] == {
            target.breaker_name: "closed"
        }

    async def test_one_tenants_failing_calls_to_a_host_do_not_stop_anothers(
        self, db: Database, settings: Settings, client: httpx.AsyncClient, shop: Shop, target: Target
    ) -> None:
        """Two merchants use the same provisioning host; it fails for one of them (its account
        there, its config — or its own doing). The other's provisioning goes on."""
        neighbour = await open_shop(db)
        neighbours_target = await add_target(client, neighbour)
        endpoint = FakeProvisioningEndpoint(neighbours_target.secret)

        def failing_for_shop(request: httpx.Request) -> httpx.Response:
            if json.loads(request.content)["data"]["tenant"] == shop.tenant_id:
                return httpx.Response(502, text="this account is broken")
            return endpoint(request)

        breakers = Breakers(failure_threshold=1, reset_seconds=60)
        failing = await paid_order(client, db, settings, shop, http_config(target))
        async with fake_http(failing_for_shop) as http:
            assert await run_batch(dispatcher(db, settings, http, breakers)) == 1
            assert (await fulfillment_of(db, failing["id"])).status is FulfillmentStatus.RETRYING
            fine = await paid_order(client, db, settings, neighbour, http_config(neighbours_target))
            assert await run_batch(dispatcher(db, settings, http, breakers)) == 1

        assert (await fulfillment_of(db, fine["id"])).status is FulfillmentStatus.SUCCEEDED
        assert (await order(client, neighbour, fine["id"]))["status"] == "fulfilled"
        assert breakers.states_for(shop.tenant_id, livemode=False)["tenant"] == {target.breaker_name: "open"}
        assert breakers.states_for(neighbour.tenant_id, livemode=False)["tenant"] == {
            neighbours_target.breaker_name: "closed"
        }


class TestRefundStopsProvisioning:
    async def test_a_full_refund_cancels_what_was_not_made_yet(
        self, db: Database, settings: Settings, client: httpx.AsyncClient, shop: Shop, target: Target
    ) -> None:
        paid = await paid_order(client, db, settings, shop, http_config(target))
        refund = await client.post(f"/v1/orders/{paid['id']}/refunds", json={}, headers=shop.secret)
        assert refund.status_code == 201, refund.text
        row = await fulfillment_of(db, paid["id"])
        assert row.status is FulfillmentStatus.CANCELED
        endpoint = FakeProvisioningEndpoint(target.secret)
        async with fake_http(endpoint) as http:
            assert await run_batch(dispatcher(db, settings, http)) == 0
        assert endpoint.payloads == []
