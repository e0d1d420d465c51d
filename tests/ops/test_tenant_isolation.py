"""What one tenant's doings show to others: nothing. `/metrics` (unauthenticated) carries no
tenant id and no host a tenant chose, however many deliveries to such hosts fail; a tenant's
`/ops/summary` shows its own breakers beside the shared ones, never another tenant's; and a
key sees only its own mode's events.

The probes, as they were made: a tenant points its provisioner and its webhook endpoint at a host
of its own, makes deliveries to them fail, and then its neighbour — or anyone — looks."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client import REGISTRY

from paycore.app import create_app
from paycore.auth.models import KeyMode
from paycore.circuit import Breakers
from paycore.config import Settings
from paycore.db import Database
from paycore.fulfillment.dispatch import FulfillmentDispatcher
from paycore.fulfillment.provisioners.registry import build_provisioners
from paycore.merchant_webhooks.delivery import MerchantWebhookChannel
from paycore.outbox.dispatch import OutboxDispatcher
from paycore.outbox.models import OutboxChannel
from paycore.payments.models import EventResult, PaymentEvent
from paycore.tenancy.models import Tenant
from tests.conftest import make_settings
from tests.factories import make_api_key
from tests.flows.helpers import Shop, buy, confirm, deliver, open_shop

# The hostile tenant's own hosts: nothing with these letters may leave its own view.
HOST_MARK = "tenant-a-private-host"
PROVISION_URL = f"https://provision.{HOST_MARK}.example/hook"
HOOK_URL = f"https://hooks.{HOST_MARK}.example/in"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return make_settings(database_url=settings.database_url, circuit_failure_threshold=1)


@dataclass
class Paycore:
    db: Database
    settings: Settings
    app: FastAPI
    http: httpx.AsyncClient

    @property
    def breakers(self) -> Breakers:
        breakers: Breakers = self.app.state.breakers
        return breakers


@pytest.fixture
async def paycore(db: Database, settings: Settings) -> AsyncIterator[Paycore]:
    """One process: the API and the worker share the app's breakers, as in `paycore run`."""
    app = create_app(settings, database=db)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://paycore.test"
    ) as http:
        yield Paycore(db, settings, app, http)


def tenant_hosts_down(request: httpx.Request) -> httpx.Response:
    """The tenant's provisioner and webhook receiver: both failing, as their owner arranged."""
    return httpx.Response(502, text="bad gateway")


async def ops_key(db: Database, shop: Shop, *, mode: KeyMode = KeyMode.TEST) -> dict[str, str]:
    async with db.session() as session:
        tenant = await session.get(Tenant, shop.tenant_id)
        assert tenant is not None
        key = await make_api_key(session, tenant=tenant, mode=mode, scopes=["read", "ops"])
    return {"Authorization": f"Bearer {key.plaintext}"}


async def summary(paycore: Paycore, headers: dict[str, str]) -> dict[str, Any]:
    response = await paycore.http.get("/ops/summary", headers=headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def provisioned_order_paid(paycore: Paycore, shop: Shop) -> None:
    target = await paycore.http.post(
        "/v1/provisioning_targets", json={"url": PROVISION_URL}, headers=shop.secret
    )
    assert target.status_code == 201, target.text
    created = await paycore.http.post(
        "/v1/products",
        json={
            "name": "Server",
            "price": 1500,
            "currency": "EUR",
            "kind": "service",
            "fulfillment": {
                "type": "provision",
                "config": {"provisioner": "http", "target": target.json()["id"]},
            },
        },
        headers=shop.secret,
    )
    assert created.status_code == 201, created.text
    bought = await buy(paycore.http, shop, created.json()["id"])
    await confirm(paycore.http, bought["payment"]["id"])
    assert await deliver(paycore.db, paycore.settings, paycore.http) >= 1


async def fail_deliveries_to_own_hosts(paycore: Paycore, shop: Shop) -> None:
    """The hostile tenant's probe: a webhook endpoint and a provisioner on hosts it chose, a paid
    order, and the worker delivering to both while they fail."""
    endpoint = await paycore.http.post("/v1/webhook_endpoints", json={"url": HOOK_URL}, headers=shop.secret)
    assert endpoint.status_code == 201, endpoint.text
    await provisioned_order_paid(paycore, shop)
    async with httpx.AsyncClient(transport=httpx.MockTransport(tenant_hosts_down)) as outbound:
        provisioning = FulfillmentDispatcher(
            paycore.db,
            build_provisioners(paycore.settings, paycore.db, outbound),
            paycore.breakers,
            paycore.settings,
            providers=paycore.app.state.providers,
            worker_id="worker-test",
        )
        assert await provisioning.process_batch(asyncio.Event()) == 1
        webhooks = OutboxDispatcher(
            paycore.db,
            {OutboxChannel.MERCHANT_WEBHOOK: MerchantWebhookChannel(paycore.settings, paycore.db, outbound)},
            paycore.settings,
            worker_id="worker-test",
        )
        assert await webhooks.process_batch(asyncio.Event()) >= 1


class TestMetricsCarryNoTenantValues:
    async def test_failed_deliveries_to_a_tenants_hosts_leave_no_host_or_tenant_on_metrics(
        self, paycore: Paycore
    ) -> None:
        hostile = await open_shop(paycore.db)
        open_before = (
            REGISTRY.get_sample_value(
                "paycore_circuit_open_breakers", {"target": "provisioner:http", "scope": "tenant"}
            )
            or 0.0
        )
        await fail_deliveries_to_own_hosts(paycore, hostile)

        exposed = (await paycore.http.get("/metrics")).text
        assert HOST_MARK not in exposed
        assert hostile.tenant_id not in exposed
        assert hostile.slug not in exposed
        # The breaker did open; the metric says so by kind and scope only.
        assert 'paycore_circuit_open_breakers{scope="tenant",target="provisioner:http"}' in exposed
        assert (
            REGISTRY.get_sample_value(
                "paycore_circuit_open_breakers", {"target": "provisioner:http", "scope": "tenant"}
            )
            == open_before + 1
        )


class TestOpsSummaryIsTheCallersOwn:
    async def test_another_tenants_breakers_are_not_shown(self, paycore: Paycore) -> None:
        hostile, neighbour = await open_shop(paycore.db), await open_shop(paycore.db)
        await fail_deliveries_to_own_hosts(paycore, hostile)

        seen = await summary(paycore, await ops_key(paycore.db, neighbour))
        assert HOST_MARK not in str(seen)
        assert hostile.tenant_id not in str(seen)
        assert seen["circuit_breakers"]["tenant"] == {}

        own = await summary(paycore, await ops_key(paycore.db, hostile))
        provisioners = {
            name: state
            for name, state in own["circuit_breakers"]["tenant"].items()
            if name.startswith("provisioner:http")
        }
        ((name, state),) = provisioners.items()
        assert name.startswith("provisioner:http:pvt_")  # named by its target id, not the host it chose
        assert state == "open"
        live = await summary(paycore, await ops_key(paycore.db, hostile, mode=KeyMode.LIVE))
        assert live["circuit_breakers"]["tenant"] == {}  # a test-mode breaker, not the live one

    async def test_a_test_key_counts_no_live_payment_events(self, paycore: Paycore) -> None:
        shop = await open_shop(paycore.db)
        async with paycore.db.session() as session:
            session.add_all(
                PaymentEvent(
                    tenant_id=shop.tenant_id,
                    livemode=livemode,
                    provider=provider,
                    provider_event_id=f"evt_{provider}_{result.value}_{number}",
                    type="payment_intent.succeeded",
                    payload={},
                    result=result,
                )
                for livemode, provider, result, copies in (
                    (True, "stripe", EventResult.APPLIED, 3),
                    (True, "stripe", EventResult.MISMATCH, 1),
                    (False, "sandbox", EventResult.APPLIED, 1),
                )
                for number in range(copies)
            )

        test = await summary(paycore, await ops_key(paycore.db, shop))
        assert test["livemode"] is False
        assert test["webhook_events_by_result"] == {"applied": 1}
        assert set(test["last_webhook_received"]) == {"sandbox"}

        live = await summary(paycore, await ops_key(paycore.db, shop, mode=KeyMode.LIVE))
        assert live["livemode"] is True
        assert live["webhook_events_by_result"] == {"applied": 3, "mismatch": 1}
        assert set(live["last_webhook_received"]) == {"stripe"}
